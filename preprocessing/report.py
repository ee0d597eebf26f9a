"""What preparation tells the user: the train.py command and a picture of the poses with the fitted distribution."""

import math
import shlex

import numpy as np
from PIL import Image, ImageDraw, ImageFont

import curriculums
from preprocessing.camera_fit import marginal_density
from settings import Settings

CAMERA_KEYS = ('h_mean', 'v_mean', 'h_stddev', 'v_stddev', 'sample_dist')
# Below this many images the printed command comes with a warning. A rule of thumb, not a measurement here:
# the paper's sets held thousands (cats) to 200,000 (CelebA) images, and a GAN's discriminator soon learns a
# few hundred by heart (Karras et al. 2020, "Training GANs with limited data").
USEFUL_SIZE = 1000


def default_curriculum(mode, gpu):
    """The curriculum of the printed command: the paper's on a GPU; for faces on a CPU, CelebA_CPU (32x32)."""
    if mode == 'center':
        return 'CATS'
    return 'CelebA' if gpu else 'CelebA_CPU'


def fitted_batch_size(curriculum, num_images):
    """A batch_size for every stage that the set can fill (train.py stops when a batch cannot be drawn), or
    None when the curriculum's own batches fit. No stage's batch grows: a larger one might not fit in memory."""
    schedule = curriculums.get(curriculum)
    batches = [Settings.at_step(schedule, step).optimisation.batch_size for step in curriculums.stage_steps(schedule)]
    return None if num_images >= max(batches) else max(1, min(num_images, *batches))


def train_command(dataset_dir, curriculum, fit, flip, output_dir, num_images):
    """The train.py command line for a prepared folder of num_images images (camera keys from the fit when
    there is one, a batch the set can fill)."""
    words = ['python', 'train.py', '--curriculum', curriculum, '--dataset_path', str(dataset_dir),
             '--output_dir', output_dir, '--set', 'dataset=ImageFolder', '--set', f'random_flip={flip}']
    batch_size = fitted_batch_size(curriculum, num_images)
    if batch_size is not None:
        words += ['--set', f'batch_size={batch_size}']
    for key in CAMERA_KEYS if fit else ():
        words += ['--set', f'{key}={fit[key]}']
    return ' '.join(shlex.quote(word) for word in words)


def command_notes(curriculum, gpu, num_images, poses):
    """Lines printed above the command: which machine it is for, a warning for a small set, and (poses: the
    images have estimated poses) how training can use them."""
    notes = []
    if curriculum == 'CelebA_CPU' and not gpu:
        notes.append('no GPU: the command uses CelebA_CPU, a CPU-sized face curriculum (16x16, then 32x32 images '
                     'from step 2000; narrow networks, batch 8); --train_on gpu prints the CelebA one (64x64)')
    batch_size = fitted_batch_size(curriculum, num_images)
    if batch_size is not None:
        notes.append(f'batch_size {batch_size}: {curriculum} draws more images per step than the set holds')
    if num_images < USEFUL_SIZE:
        notes.append(f'warning: {num_images} images is few for a GAN: the discriminator will learn them by heart '
                     f'and the generator stop improving; the paper trained on thousands (cats) to 200,000 (CelebA), '
                     f'aim for {USEFUL_SIZE} at least')
    if poses and num_images:
        notes.append("the images' estimated poses train the discriminator's pose head too with "
                     "--set use_real_poses=True (off by default, as in the original)")
    return notes


def _font(size):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow built without FreeType
        return ImageFont.load_default()


def _panel(draw, box, values, mean, std, sample_dist, label, font):
    """One histogram (degrees from frontal/level) with the fitted density on top, inside box (x0, y0, x1, y1)."""
    x0, y0, x1, y1 = box
    degrees = np.degrees(np.asarray(values, np.float64) - math.pi / 2)
    centre, spread = math.degrees(mean - math.pi / 2), math.degrees(std)
    low = min(degrees.min(initial=centre), centre - 3 * spread) - 5
    high = max(degrees.max(initial=centre), centre + 3 * spread) + 5
    bins = max(10, min(40, len(degrees) // 3))
    counts, edges = np.histogram(degrees, bins=bins, range=(low, high))
    width = edges[1] - edges[0]
    curve_x = np.linspace(low, high, 400)
    curve = marginal_density(sample_dist, np.radians(curve_x - centre), 0.0, std) * math.radians(1) * len(degrees) * width
    top = max(counts.max(initial=1), curve.max()) * 1.1

    def to_screen(x, y):
        return x0 + (x - low) / (high - low) * (x1 - x0), y1 - y / top * (y1 - y0)

    for count, left in zip(counts, edges[:-1]):
        (a, b), (c, d) = to_screen(left, count), to_screen(left + width, 0)
        draw.rectangle([a + 1, b, c - 1, d], fill=(120, 160, 210))
    draw.line([to_screen(x, y) for x, y in zip(curve_x, curve)], fill=(200, 40, 40), width=3)
    draw.line([(x0, y1), (x1, y1)], fill='black', width=1)
    step = next(step for step in (5, 10, 20, 30, 45, 90) if (high - low) / step <= 10)
    for tick in range(int(math.ceil(low / step)) * step, int(high) + 1, step):
        x, _ = to_screen(tick, 0)
        draw.line([(x, y1), (x, y1 + 5)], fill='black')
        draw.text((x, y1 + 8), str(tick), fill='black', font=font, anchor='ma')
    draw.text(((x0 + x1) / 2, y1 + 28), label, fill='black', font=font, anchor='ma')


def save_pose_histogram(path, yaw, pitch, fit, what):
    """PNG: histograms of yaw and pitch (degrees from pi/2) with the fitted marginal densities in red.

    what: the title's account of the poses shown, e.g. '120 faces and their mirror images'.
    """
    image = Image.new('RGB', (1000, 420), 'white')
    draw = ImageDraw.Draw(image)
    font, title_font = _font(15), _font(18)
    title = (f"{what}; red: fitted {fit['sample_dist']}, h_stddev {fit['h_stddev']:.3f}, "
             f"v_stddev {fit['v_stddev']:.3f} rad")
    draw.text((500, 12), title, fill='black', font=title_font, anchor='ma')
    _panel(draw, (40, 50, 480, 350), yaw, fit['h_mean'], fit['h_stddev'], fit['sample_dist'],
           f"yaw - pi/2, degrees (mean {math.degrees(fit['h_mean'] - math.pi / 2):+.1f})", font)
    _panel(draw, (540, 50, 980, 350), pitch, fit['v_mean'], fit['v_stddev'], fit['sample_dist'],
           f"pitch - pi/2, degrees (mean {math.degrees(fit['v_mean'] - math.pi / 2):+.1f})", font)
    image.save(path)
