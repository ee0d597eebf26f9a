#!/usr/bin/env bash
# Every GPU measurement issue 6 asks for, in one run of under 10 minutes on one GPU:
#   bash bench/gpu_checks.sh OUT_DIR [PEAK_TFLOPS]
# 1. bench_speed.py at the CelebA stage-0 iteration and the 256x256 48+48 render, both paths, bf16 and fp16;
# 2. short CUDA trainings (CelebA stage-0 settings on synthetic heads), fp16 and bf16: s/step and peak memory.
# PEAK_TFLOPS: the GPU's dense bf16/fp16 peak (989 for an H100/H200 SXM).
set -uo pipefail
out=${1:?usage: bash bench/gpu_checks.sh OUT_DIR [PEAK_TFLOPS]}
peak=${2:-989}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
python=${PYTHON:-python3}

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/device.txt"
"$python" -c "import torch; print('torch', torch.__version__)" | tee -a "$out/device.txt"

"$python" bench/bench_speed.py --device cuda --config celeba,render256 --amp bf16 --peak_tflops "$peak" \
    2>&1 | tee "$out/bench_bf16.txt"
"$python" bench/bench_speed.py --device cuda --config celeba --amp fp16 --peak_tflops "$peak" \
    2>&1 | tee "$out/bench_fp16.txt"

"$python" synthetic_dataset.py --output_dir "$out/synthetic" --num_images 2000 --img_size 64 \
    > "$out/synthetic.txt" 2>&1
for precision in fp16 bf16; do
    "$python" train.py --curriculum CelebA --set dataset=Synthetic --dataset_path "$out/synthetic" \
        --output_dir "$out/train_$precision" --precision "$precision" --max_steps 40 --log_every 10 \
        --sample_interval 40 --model_save_interval 100000 > "$out/train_$precision.txt" 2>&1
    echo "training, $precision (CelebA stage 0 on synthetic heads): step, s/step, peak GiB, d_loss, g_loss"
    "$python" - "$out/train_$precision/stats.jsonl" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    print(f"  {r['step']:4d} {r['sec_per_step']:7.3f} {r['peak_mem_gib']:7.2f} {r['d_loss']:8.4f} {r['g_loss']:8.4f}")
PY
done 2>&1 | tee "$out/training.txt"
