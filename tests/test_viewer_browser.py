"""viewer.py in a real headless browser (Debian's Chromium driven by Playwright).

The viewer runs as its own process on a tiny run; the test reads back what the
page's canvas shows, texel by texel, and compares it with renders made here.
"""

import io
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import render_multiview_images
from checkpoints import load_generator
from generators.camera_utils import Cameras
from inference.rendering import inference_rendering, latent_from_seed, render_view
from inference.viewer import fit_to_canvas
from tiny_checkpoint import make_tiny_run
from utils.media import to_uint8

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which('chromium') or shutil.which('chromium-browser')
SIZE = 16  # the viewer's resolution at rest

if CHROMIUM is None and not os.environ.get('CI'):
    pytest.skip("Chromium is not installed: apt-get install -y chromium chromium-driver (see README)",
                allow_module_level=True)
if CHROMIUM is None:
    raise RuntimeError("CI: Chromium is missing although .ci/run installs it")
from playwright.sync_api import sync_playwright  # noqa: E402  (only once we know the test runs)


def free_port():
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        return probe.getsockname()[1]


def wait_for(condition, what, timeout=180):
    """condition()'s first truthy value, polled until timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.2)


@pytest.fixture(scope='module')
def run(tmp_path_factory):
    return make_tiny_run(tmp_path_factory.mktemp('tiny_run'), colour_gain=30)


@pytest.fixture(scope='module')
def viewer(run, tmp_path_factory):
    """(url, output_dir, log path, process) of a viewer.py serving the tiny run."""
    folder = tmp_path_factory.mktemp('viewer')
    port = free_port()
    log = folder / 'viewer.log'
    with open(log, 'w') as out:
        process = subprocess.Popen(
            [sys.executable, str(ROOT / 'viewer.py'), str(run), '--port', str(port), '--device', 'cpu',
             '--image_size', str(SIZE), '--preview_size', '8', '--output_dir', str(folder / 'saved')],
            cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, 'OMP_NUM_THREADS': '1'})
    try:
        wait_for(lambda: 'viewer: open' in log.read_text() or process.poll() is not None, "the viewer to start",
                 timeout=300)
        assert process.poll() is None, log.read_text()
        yield f'http://localhost:{port}', folder / 'saved', log, process
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture(scope='module')
def browser():
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, args=['--use-angle=swiftshader', '--enable-unsafe-swiftshader'])
        yield chromium
        chromium.close()


@pytest.fixture(scope='module')
def expected(run):
    """expected(seed): the front view at SIZE as the render scripts draw it, uint8 [S, S, 3]."""
    generator, settings = load_generator(run)
    rendering = inference_rendering(settings, SIZE)
    camera = Cameras(yaw=settings.camera.h_mean, pitch=settings.camera.v_mean, fov=settings.camera.fov)

    def front_view(seed):
        pixels, _ = render_view(generator, latent_from_seed(generator, seed, 0.7), camera, rendering, 100000, seed)
        return to_uint8(pixels).astype(int)
    return front_view


def shown_view(page):
    """What the page's canvas shows of the render: one canvas pixel at the centre of each texel, [S, S, 3]."""
    box = page.locator('canvas').first.bounding_box()
    png = page.screenshot(clip=box, timeout=120_000)  # not the element's: that waits for it to hold still
    shot = np.asarray(Image.open(io.BytesIO(png)).convert('RGB'))
    height, width = shot.shape[:2]
    fitted, left, top, scale = fit_to_canvas(np.zeros((SIZE, SIZE, 3), np.uint8), width, height)
    centres = (np.arange(SIZE) + 0.5) * scale
    columns = ((left + centres) * width / fitted.shape[1]).astype(int)
    rows = ((top + centres) * height / fitted.shape[0]).astype(int)
    return shot[rows][:, columns].astype(int)


def matches(page, image):
    """True once the canvas shows image (up to texture filtering)."""
    return np.abs(shown_view(page) - image).mean() < 4


def open_tab(browser, url):
    # Wide enough that the render, centred on the canvas and as tall as it, stays clear of
    # the notifications (top left), which a screenshot would show over it.
    page = browser.new_page(viewport={'width': 1400, 'height': 400})
    page.set_default_timeout(120_000)  # software WebGL on a shared 2-core machine is slow
    page.goto(url)
    return page


def set_number(page, label, value):
    field = page.get_by_label(label, exact=True)
    field.fill(str(value))
    field.press('Enter')


def test_the_page_shows_the_render_follows_seed_and_camera_saves_it_and_survives_a_closed_tab(
        viewer, browser, expected, run, tmp_path):
    # One test, one viewer, one browser: each page load costs seconds in software WebGL.
    url, saved, log, process = viewer
    page = open_tab(browser, url)
    seed0 = expected(0)
    wait_for(lambda: matches(page, seed0), "the front view of seed 0 on the canvas")

    # The saved PNG is the render script's front view, bit for bit.
    page.get_by_role('button', name='save PNG').click()
    wait_for(lambda: 'saved ' in log.read_text(), "the viewer to save the PNG")
    render_multiview_images.main([str(run), '--seeds', '0', '--image_size', str(SIZE), '--ray_step_multiplier', '1',
                                  '--psi', '0.7', '--output_dir', str(tmp_path)])
    with Image.open(saved / 'seed0000_000.png') as image, Image.open(tmp_path / 'seed0000.png') as row:
        front = np.asarray(row)[:, 2 * SIZE:3 * SIZE]  # the middle of five yaws is the mean camera
        assert np.array_equal(np.asarray(image), front)

    # Another seed: the picture changes to that seed's render.
    set_number(page, 'seed', 1)
    seed1 = expected(1)
    assert np.abs(seed1 - seed0).mean() > 20
    wait_for(lambda: matches(page, seed1), "the front view of seed 1")

    # Dragging orbits the camera: the picture moves away from the front view, and 'front view' brings it back.
    page.mouse.move(300, 350)
    page.mouse.down()
    page.mouse.move(360, 330, steps=6)
    page.mouse.up()
    wait_for(lambda: np.abs(shown_view(page) - seed1).mean() > 15, "a new view after dragging")
    page.get_by_role('button', name='front view').click()
    wait_for(lambda: matches(page, seed1), "the front view again")

    # A second tab has its own panel; closing the first leaves the server serving it.
    other = open_tab(browser, url)
    wait_for(lambda: matches(other, seed0), "the new tab to show seed 0")
    page.close()
    wait_for(lambda: '(1 still open); the server keeps running' in log.read_text(),
             "the server to notice the closed tab")
    set_number(other, 'seed', 2)
    seed2 = expected(2)
    wait_for(lambda: matches(other, seed2), "the remaining tab to render seed 2")
    assert process.poll() is None
    assert 'render failed' not in log.read_text()
