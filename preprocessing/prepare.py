"""A folder of photos to a training folder: images/, dataset.json, pose_histogram.png, and the train.py command.

Photos are processed by CPU worker processes; every result is appended to
progress.jsonl as it comes, so an interrupted run resumes where it stopped
(files already done, unchanged in size and time, are skipped).
"""

import hashlib
import itertools
import json
import multiprocessing
import os
from collections import Counter
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

import curriculums
from preprocessing.alignment import celeba_targets
from preprocessing.camera_fit import fit_camera_distribution
from preprocessing.camera_labels import EG3D_LABELS_FILE, EG3D_RADIUS, METADATA_FILE, PREPARED_FORMAT, eg3d_labels
from preprocessing.images import PhotoError
from preprocessing.photos import Settings, file_signature, prepare_photo
from preprocessing.report import command_notes, default_curriculum, save_pose_histogram, train_command
from settings import Settings as RunSettings  # a training run's; Settings here is the photos'
from utils.media import save_image
from utils.errors import UserError
from utils.files import atomic_write

IMAGES_DIR, PROGRESS_FILE, HISTOGRAM_FILE = 'images', 'progress.jsonl', 'pose_histogram.png'


class PreparationError(UserError):
    """The command cannot run as given; the message says what to change."""


def list_photos(input_dir, output_dir):
    """(every file under input_dir, relative and sorted; what was left out and why, as records).

    Hidden files and folders, the output folder and links to folders (not followed) are left out,
    each recorded, so every entry of the input folder is accounted for in dataset.json.
    """
    input_dir, output_dir = Path(input_dir).resolve(), Path(output_dir).resolve()
    files, skipped = [], []

    def skip(root, name, reason, is_folder=False):
        source = Path(root, name).relative_to(input_dir).as_posix() + ('/' if is_folder else '')
        skipped.append({'source': source, 'reason': reason})

    for root, folders, names in os.walk(input_dir):
        kept = []
        for folder in sorted(folders):
            if folder.startswith('.'):
                skip(root, folder, 'hidden folder', is_folder=True)
            elif Path(root, folder).resolve() == output_dir:
                skip(root, folder, 'the output folder', is_folder=True)
            elif Path(root, folder).is_symlink():
                skip(root, folder, 'link to a folder (not followed)', is_folder=True)
            else:
                kept.append(folder)
        folders[:] = kept
        for name in names:
            if name.startswith('.'):
                skip(root, name, 'hidden file')
            else:
                files.append(Path(root, name).relative_to(input_dir).as_posix())
    return sorted(files), sorted(skipped, key=lambda record: record['source'])


def output_names(sources, kept=None):
    """Source path -> PNG name in images/, no two alike, compared without case (macOS and Windows folders
    ignore it).

    The name is the path with '/' as '__'; when another source flattens to the same name, the extension
    is added, then a hash of the whole path, until the name is free. kept: source -> name already
    written in an earlier run (a resume); those stay, and new sources avoid them.
    """
    names = dict(kept or {})
    taken = {name.lower() for name in names.values()}
    new = [source for source in sources if source not in names]
    flat = {source: os.path.splitext(source)[0].replace('/', '__') for source in new}
    sharing = Counter(stem.lower() for stem in flat.values())
    for source in new:
        stem, extension = flat[source], os.path.splitext(source)[1].lstrip('.')
        digest = hashlib.sha1(source.encode()).hexdigest()
        candidates = ([stem] if sharing[stem.lower()] == 1 else []) + ([f'{stem}_{extension}'] if extension else [])
        candidates = itertools.chain(candidates, [f'{stem}_{digest[:8]}'],
                                     (f'{stem}_{digest}_{count}' for count in itertools.count()))
        names[source] = next(name + '.png' for name in candidates if name.lower() + '.png' not in taken)
        taken.add(names[source].lower())
    return {source: names[source] for source in sources}


_worker = {}


def _start_worker(settings):
    import torch
    torch.set_num_threads(1)  # one process per core does better than threads inside MTCNN's small convolutions
    _worker['settings'] = settings
    _worker['detector'] = None
    if settings.mode == 'faces':
        from preprocessing.faces import FaceDetector
        _worker['detector'] = FaceDetector(settings.min_score, settings.detect_side)


def _process(task):
    """One photo: writes images/NAME atomically and returns its record (or its rejection)."""
    source, path, target, signature = task
    try:
        image, record = prepare_photo(path, _worker['settings'], _worker['detector'])
    except PhotoError as error:
        return {'source': source, 'reason': error.reason, 'detail': str(error), **signature}
    except Exception as error:  # noqa: BLE001 - one odd file must not end a long run; it is reported
        return {'source': source, 'reason': 'unreadable', **signature,
                'detail': f'failed while processing: {type(error).__name__}: {error}'}
    save_image(np.asarray(image), target)
    return {'source': source, 'file': os.path.basename(target), **record, **signature}


def load_progress(output_dir, input_dir, sources, settings):
    """Records of files already done in an earlier run with the same settings and unchanged since (by source)."""
    done = {}
    path = Path(output_dir, PROGRESS_FILE)
    lines = path.read_text().splitlines() if path.exists() else []
    if not lines or lines[0] != settings_line(settings):
        if lines:
            print(f'settings differ from the earlier run in {output_dir}: preparing every file again')
        path.write_text(settings_line(settings) + '\n')
        return done
    for line in lines[1:]:
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut short by an interruption
        source = record.get('source')
        if source not in sources or file_signature(Path(input_dir, source)) != {
                'bytes': record.get('bytes'), 'mtime': record.get('mtime')}:
            continue
        if 'file' in record and not Path(output_dir, IMAGES_DIR, record['file']).exists():
            continue
        done[source] = record
    return done


def settings_line(settings):
    """progress.jsonl's first line: what the images were made with, so a resume never mixes two settings."""
    return json.dumps({'settings': asdict(settings)}, sort_keys=True)


def run_workers(tasks, settings, workers, progress_file, done_count, total):
    """Records of the tasks, in completion order, each also appended to progress_file."""
    records = []
    bar = tqdm(total=total, initial=done_count, unit='photo', desc='preparing')
    if workers > 0:
        pool = multiprocessing.get_context('spawn').Pool(workers, _start_worker, (settings,))
        results = pool.imap_unordered(_process, tasks, chunksize=1)
    else:
        pool = None
        _start_worker(settings)
        results = map(_process, tasks)
    try:
        with open(progress_file, 'a') as log:
            for record in results:
                log.write(json.dumps(record) + '\n')
                log.flush()
                records.append(record)
                if 'reason' in record:
                    tqdm.write(f"rejected {record['source']}: {record['reason']} ({record['detail']})")
                bar.update(1)
    finally:
        bar.close()
        if pool is not None:
            pool.terminate()
    return records


def write_json(path, content):
    with atomic_write(path, 'w') as file:
        json.dump(content, file, indent=1)


def prepare_dataset(input_dir, output_dir, settings=Settings(), workers=2, flip=True, curriculum=None,
                    train_output_dir=None, gpu=None):
    """Prepares output_dir from the photos under input_dir; returns the content of dataset.json.

    gpu: whether the printed command is for a machine with a GPU (None: whether this one has one).
    """
    gpu = torch.cuda.is_available() if gpu is None else gpu
    curriculum = curriculum or default_curriculum(settings.mode, gpu)
    if curriculum not in curriculums.CURRICULA:
        raise PreparationError(f"unknown curriculum {curriculum!r} for the printed command; choose one of "
                               f"{', '.join(curriculums.CURRICULA)}")
    if not Path(input_dir).is_dir():
        raise PreparationError(f'{input_dir} is not a folder; give the folder that holds the photos')
    output_dir = Path(output_dir)
    if output_dir.resolve() == Path(input_dir).resolve():
        raise PreparationError('the output folder is the photo folder; give a new folder for the prepared dataset')
    images_dir = Path(output_dir, IMAGES_DIR)
    if images_dir.is_dir() and any(images_dir.iterdir()) and not Path(output_dir, PROGRESS_FILE).exists():
        raise PreparationError(f'{images_dir} holds files that prepare_dataset.py did not write; '
                               f'give a new output folder')
    images_dir.mkdir(parents=True, exist_ok=True)
    sources, skipped = list_photos(input_dir, output_dir)
    if not sources:
        raise PreparationError(f'{input_dir} holds no files; put the photos there')
    done = load_progress(output_dir, input_dir, set(sources), settings)
    # Versions before output_names made names unique could give two sources one image: redo both.
    sharing = Counter(record['file'].lower() for record in done.values() if 'file' in record)
    done = {source: record for source, record in done.items() if sharing[record.get('file', '').lower()] < 2}
    names = output_names(sources, {source: record['file'] for source, record in done.items() if 'file' in record})
    if done:
        print(f'resuming: {len(done)} of {len(sources)} files already done')
    tasks = [(source, str(Path(input_dir, source)), str(Path(output_dir, IMAGES_DIR, names[source])),
              file_signature(Path(input_dir, source))) for source in sources if source not in done]
    new = run_workers(tasks, settings, workers, Path(output_dir, PROGRESS_FILE), len(done), len(sources))
    records = sorted([*done.values(), *new], key=lambda record: record['source'])
    images = [record for record in records if 'file' in record]
    rejected = [record for record in records if 'reason' in record]
    remove_stale_images(output_dir, {record['file'] for record in images})
    fov = RunSettings.at_step(curriculums.get(curriculum), 0).camera.fov
    if settings.mode == 'faces' and images:
        write_json(Path(images_dir, EG3D_LABELS_FILE),
                   eg3d_labels({record['file']: (record['yaw'], record['pitch']) for record in images}, fov))

    camera = None
    dataset_path = str(Path(output_dir, IMAGES_DIR))
    if settings.mode == 'faces' and len(images) >= 2:
        yaw, pitch = (np.array([record[key] for record in images]) for key in ('yaw', 'pitch'))
        camera = fit_camera_distribution(yaw, pitch, flip)
        shown_yaw = np.concatenate([yaw, np.pi - yaw]) if flip else yaw
        what = f'{len(images)} faces' + (' and their mirror images' if flip else '')
        save_pose_histogram(Path(output_dir, HISTOGRAM_FILE), shown_yaw, np.tile(pitch, 1 + flip), camera, what)
    command = train_command(dataset_path, curriculum, camera, flip,
                            train_output_dir or f'output/{output_dir.resolve().name}', len(images))
    content = {
        'format': PREPARED_FORMAT, 'version': 1, 'source_dir': str(Path(input_dir).resolve()), 'mode': settings.mode,
        'settings': asdict(settings), 'flip': flip, 'images_dir': IMAGES_DIR,
        'alignment': alignment_note(settings), 'camera': camera,
        'eg3d_labels': None if settings.mode != 'faces' or not images else {
            'file': f'{IMAGES_DIR}/{EG3D_LABELS_FILE}', 'fov_degrees': fov, 'radius': EG3D_RADIUS,
            'convention': "EG3D's: OpenCV cameras (x right, y down, looking along +z) in our world (y up, the "
                          "face looking along +z); focal = 0.5 / tan(fov / 2) in image widths "
                          "(preprocessing/camera_labels.py)"},
        'train_command': command,
        'train_notes': command_notes(curriculum, gpu, len(images), settings.mode == 'faces'),
        'summary': {'files': len(records), 'accepted': len(images),
                    'rejected': dict(sorted(Counter(record['reason'] for record in rejected).items())),
                    'skipped': dict(sorted(Counter(record['reason'] for record in skipped).items()))},
        'images': images, 'rejected': rejected, 'skipped': skipped}
    write_json(Path(output_dir, METADATA_FILE), content)
    print_summary(content, output_dir, settings.mode == 'faces' and camera is None)
    return content


def remove_stale_images(output_dir, kept):
    """Images of files no longer in the input, or now rejected, go: the folder trains as it is."""
    for path in Path(output_dir, IMAGES_DIR).iterdir():
        if path.name not in kept:
            path.unlink()


def alignment_note(settings):
    if settings.mode == 'center':
        return {'description': 'centre square of each photo, resized; no face detection, no pose'}
    return {'description': 'similarity transform: eye line level (roll removed), the 5 landmarks fitted by '
                           'least squares to where datasets.CelebA puts them in aligned CelebA '
                           '(resize 320, centre crop 256), scaled to size',
            'target_landmarks': np.round(celeba_targets(settings.size), 2).tolist(),
            'pose_convention': "pi-GAN's: yaw, pitch in radians, (pi/2, pi/2) frontal and level; larger yaw "
                               "shows more of the person's right cheek, smaller pitch looks down on the face"}


def print_summary(content, output_dir, no_fit):
    summary = content['summary']
    reasons = ', '.join(f'{count} {reason}' for reason, count in summary['rejected'].items()) or 'none'
    print(f"done: {summary['files']} files, {summary['accepted']} images written to "
          f"{Path(output_dir, IMAGES_DIR)}, rejected: {reasons} (details in {Path(output_dir, METADATA_FILE)})")
    if summary['skipped']:
        print('not read: ' + ', '.join(f'{count} {reason}' for reason, count in summary['skipped'].items())
              + ' (listed in dataset.json under "skipped")')
    camera = content['camera']
    if camera:
        print(f"camera fit: {camera['sample_dist']} (log-likelihood gaussian {camera['log_likelihood']['gaussian']}, "
              f"hybrid {camera['log_likelihood']['hybrid']}), h_mean {camera['h_mean']}, v_mean {camera['v_mean']}, "
              f"h_stddev {camera['h_stddev']}, v_stddev {camera['v_stddev']}; "
              f"histogram: {Path(output_dir, HISTOGRAM_FILE)}")
    elif no_fit:
        print('too few faces to fit a camera distribution; the command keeps the curriculum\'s camera settings')
    for note in content['train_notes']:
        print(note)
    print('train with:\n  ' + content['train_command'])
