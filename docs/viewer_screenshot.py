"""Takes the README's screenshot of viewer.py in headless Chromium.

    python docs/viewer_screenshot.py RUN/generator.pth [viewer flags] --screenshot docs/viewer.png

Starts the viewer on a free port, opens it at 1100x740, waits until the view
is rendered at full resolution, and saves the page as a PNG.
"""

import argparse
import io
import socket
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PIL import Image  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402

import viewer  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--screenshot', default='docs/viewer.png', help="PNG to write")
    parser.add_argument('--chromium', default='/usr/bin/chromium', help="the browser (Debian's chromium)")
    args, viewer_args = parser.parse_known_args()
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        port = probe.getsockname()[1]
    server = viewer.main(viewer_args + ['--port', str(port)], serve_forever=False)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=args.chromium,
                                                 args=['--use-angle=swiftshader', '--enable-unsafe-swiftshader'])
            page = browser.new_page(viewport={'width': 1100, 'height': 740})
            page.goto(f'http://localhost:{port}')
            page.get_by_text('(full)').wait_for(timeout=600_000)
            for close in page.locator('.mantine-Notification-closeButton').all():
                close.click()  # the note that WebGL runs in software: true here, not the viewer's business
            page.wait_for_timeout(3000)
            Image.open(io.BytesIO(page.screenshot())).quantize(256).save(args.screenshot, optimize=True)  # small PNG
            browser.close()
    finally:
        server.stop()
    print(f"wrote {args.screenshot}")


if __name__ == '__main__':
    main()
