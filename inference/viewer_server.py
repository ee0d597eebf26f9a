"""The viewer's web server: a viser page per browser tab, each with its own panel and camera.

Each tab renders in its own thread: while the camera or a control keeps
changing it shows previews at low resolution, and once things rest for
`settle` seconds it refines the view at full resolution. A closed tab only
ends its own thread; the server keeps serving the others.
"""

import socket
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import viser

from inference.rendering import front_camera, view_dependence_locked
from inference.viewer import DISPLAYS, camera_from_browser, fit_to_canvas, position_from_camera
from utils.errors import UserError


class PortInUseError(UserError):
    pass


def check_port_free(host, port):
    """Raises PortInUseError unless a server can listen on host:port (viser would silently take the next one)."""
    with socket.socket(socket.AF_INET6 if ':' in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the web server binds
        try:
            probe.bind((host, port))
        except OSError as error:
            raise PortInUseError(f"cannot listen on {host}:{port} ({error.strerror}); "
                                 f"stop what uses it or pick another port with --port") from None


@dataclass
class ViewerConfig:
    image_size: int = 128          # pixels per side at rest
    preview_size: int = 32         # while the view changes
    output_dir: Path = Path('viewer_output')
    settle: float = 0.3            # seconds without change before the full-size render
    turntable_frames: int = 48
    voxel_resolution: int = 128


class RenderSchedule:
    """What a tab renders next: a preview after every change, the full size once changes rest.

    Changes (camera moves, panel edits) bump a version; the render thread asks next_job()
    for (version, size) and reports back with shown(). Thread-safe.
    """

    def __init__(self, settle):
        self.settle = settle
        self.closed = False
        self._condition = threading.Condition()
        self._version = 0
        self._changed_at = time.monotonic()
        self._shown = (-1, False)  # (version, at full size) of the picture on screen

    def changed(self):
        with self._condition:
            self._version += 1
            self._changed_at = time.monotonic()
            self._condition.notify_all()

    def next_job(self, preview_size, full_size):
        """Blocks until there is something to render: (version, size); None once closed."""
        with self._condition:
            while not self.closed:
                version, full = self._shown
                if version != self._version:
                    return self._version, min(preview_size, full_size)
                if not full:
                    wait = self.settle - (time.monotonic() - self._changed_at)
                    if wait <= 0:
                        return self._version, full_size
                    self._condition.wait(wait)
                else:
                    self._condition.wait()
            return None

    def shown(self, version, full):
        with self._condition:
            self._shown = (version, full)

    def close(self):
        with self._condition:
            self.closed = True
            self._condition.notify_all()


class Tab:
    """One browser tab: its panel, its settings, and the thread that renders what it shows."""

    def __init__(self, client, renderer, config, settings, log=print):
        self.client = client
        self.renderer = renderer
        self.config = config
        self.log = log
        self.schedule = RenderSchedule(config.settle)
        self._build_panel(settings)
        self._placed = front_camera(renderer.run_settings.camera)  # where the server's initial camera put the browser
        client.camera.min_orbit_distance, client.camera.max_orbit_distance = 0.25, 4.0
        client.camera.on_update(self._on_camera)
        self._thread = threading.Thread(target=self._render_loop, name=f'viewer-tab-{client.client_id}', daemon=True)
        self._thread.start()

    # --- panel ---

    def _build_panel(self, settings):
        gui = self.client.gui
        with gui.add_folder('Scene'):
            self.seed = gui.add_number('seed', settings.seed, min=0, step=1)
            self.psi = gui.add_slider('psi', 0.0, 1.0, 0.05, settings.psi, hint="truncation: 1 none, lower safer")
            self.seed_b = gui.add_number('seed B', settings.seed_b, min=0, step=1,
                                         hint="second seed of the W-space interpolation")
            self.mix = gui.add_slider('mix to B', 0.0, 1.0, 0.05, settings.mix,
                                      hint="0: seed alone; 1: seed B alone (interpolated in W space)")
        with gui.add_folder('Rendering'):
            self.fov = gui.add_slider('fov', 1.0, 60.0, 0.5, settings.fov, hint="field of view in degrees")
            self.steps = gui.add_slider('steps per ray ×', 0.25, 4.0, 0.25, settings.ray_step_multiplier,
                                        hint="samples per ray = the curriculum's num_steps times this")
            trained_locked = view_dependence_locked(self.renderer.run_settings.rendering)
            self.lock = gui.add_checkbox('lock view dependence', settings.lock_view_dependence, disabled=trained_locked,
                                         hint="trained locked: always on" if trained_locked else None)
            self.display = gui.add_dropdown('display', DISPLAYS, initial_value=settings.display)
            self.resolution = gui.add_number('resolution', self.config.image_size, min=8, max=1024, step=8,
                                             hint="pixels per side at rest (moving: a preview)")
            self.front = gui.add_button('front view', hint="back to the curriculum's mean camera")
            self.status = gui.add_markdown('waiting for the first render')
        with gui.add_folder('Save'):
            self.save_png = gui.add_button('save PNG', hint=f"current view, into {self.config.output_dir}/")
            self.frames = gui.add_number('turntable frames', self.config.turntable_frames, min=2, step=1)
            self.save_video = gui.add_button('save turntable MP4', hint="a full turn of yaw from the current view")
            self.voxels = gui.add_number('mesh voxels', self.config.voxel_resolution, min=16, max=512, step=16)
            self.level = gui.add_number('mesh level', 10.0, step=0.5, hint="density of the surface")
            self.save_ply = gui.add_button('save mesh PLY', hint="marching cubes, coloured from the current view")

        for control in (self.seed, self.psi, self.seed_b, self.mix, self.fov, self.steps, self.lock, self.display,
                        self.resolution):
            control.on_update(lambda _: self._changed())
        self.front.on_click(lambda _: self._place_camera(front_camera(self.renderer.run_settings.camera)))
        self.save_png.on_click(lambda _: self._export(self.save_png, 'PNG', lambda settings, camera: (
            self.renderer.save_png(settings, camera, self._full_size(), self.config.output_dir))))
        self.save_video.on_click(lambda _: self._export(self.save_video, 'turntable', lambda settings, camera: (
            self.renderer.save_turntable(settings, camera, self._full_size(), self.config.output_dir,
                                         int(self.frames.value)))))
        self.save_ply.on_click(lambda _: self._export(self.save_ply, 'mesh', lambda settings, camera: (
            self.renderer.save_mesh(settings, camera, self.config.output_dir, int(self.voxels.value),
                                    float(self.level.value)))))

    def settings(self):
        return self.renderer.default_settings(
            seed=int(self.seed.value), psi=float(self.psi.value), fov=float(self.fov.value),
            ray_step_multiplier=float(self.steps.value), lock_view_dependence=bool(self.lock.value),
            display=self.display.value, seed_b=int(self.seed_b.value), mix=float(self.mix.value))

    def camera(self):
        """The π-GAN camera of the browser's current view."""
        return camera_from_browser(self.client.camera.position, float(self.fov.value), self._placed)

    def _full_size(self):
        return max(8, int(self.resolution.value))

    # --- camera: orbit around the origin, as π-GAN's camera does ---

    def _place_camera(self, placed):
        """Puts the browser's camera at placed (Cameras of one)."""
        self._placed = placed
        camera = self.client.camera
        camera.up_direction = (0.0, 1.0, 0.0)
        camera.look_at = (0.0, 0.0, 0.0)
        camera.position = position_from_camera(placed)
        self._changed()

    def _on_camera(self, camera):
        if not np.allclose(camera.look_at, 0.0):  # panning would leave π-GAN's orbit: pull it back
            camera.look_at = (0.0, 0.0, 0.0)
        self._changed()

    # --- rendering ---

    def _changed(self):
        self.schedule.changed()

    def _render_loop(self):
        while (job := self.schedule.next_job(self.config.preview_size, self._full_size())) is not None:
            version, size = job
            try:
                settings, camera = self.settings(), self.camera()
                frame = self.renderer.render(settings, camera, size)
                self._show(frame, camera)
            except Exception as error:  # keep the tab alive: say what failed, try again on the next change
                if self.schedule.closed:
                    return
                self.log(f"tab {self.client.client_id}: render failed: {error}")
                traceback.print_exc()
            self.schedule.shown(version, size >= self._full_size())

    def _show(self, frame, camera):
        camera_state = self.client.camera
        fitted, _, _, _ = fit_to_canvas(frame.image, camera_state.image_width, camera_state.image_height)
        self.client.scene.set_background_image(fitted, format='png')
        stage = 'full' if frame.size >= self._full_size() else 'preview'
        self.status.content = (f"**{frame.size}²** in **{frame.seconds:.2f} s** ({stage})  \n"
                               f"yaw {float(camera.yaw):.2f}, pitch {float(camera.pitch):.2f}, "
                               f"fov {float(camera.fov):.1f}°")

    # --- exports ---

    def _export(self, button, what, save):
        """Runs save(settings, camera) -> path with the button disabled, and tells the tab what it wrote."""
        button.disabled = True
        note = self.client.add_notification(f"saving {what}…", "", loading=True, with_close_button=False)
        try:
            path = save(self.settings(), self.camera())
        except ValueError as error:
            note.title, note.body, note.color = f"no {what} saved", str(error), 'red'
        except Exception as error:
            self.log(f"tab {self.client.client_id}: saving {what} failed: {error}")
            traceback.print_exc()
            note.title, note.body, note.color = f"saving {what} failed", str(error), 'red'
        else:
            self.log(f"saved {path}")
            note.title, note.body = f"saved {what}", str(path)
            self.client.send_file_download(path.name, path.read_bytes())
        finally:
            note.loading, note.with_close_button, note.auto_close_seconds = False, True, 10.0
            button.disabled = False

    def close(self):
        self.schedule.close()


class Viewer:
    """The web server: one Tab per connected browser tab."""

    def __init__(self, renderer, config, settings=None, log=print):
        self.renderer = renderer
        self.config = config
        self.settings = settings or renderer.default_settings()
        self.log = log
        self.tabs = {}
        self.server = None

    def start(self, host='127.0.0.1', port=8080):
        check_port_free(host, port)
        self.server = viser.ViserServer(host=host, port=port, label='π-GAN viewer', verbose=False)
        if port and self.server.get_port() != port:  # taken between the check and the start (0: any port)
            self.server.stop()
            raise PortInUseError(f"port {port} was taken while the viewer started; pick another with --port")
        self.server.scene.set_up_direction('+y')
        self.server.scene.world_axes.visible = False
        # The panel docked beside the canvas, not floating over the picture; no share button (it
        # would route the page through viser's public relay).
        self.server.gui.configure_theme(show_share_button=False)
        self.server.gui.main_panel.dock_right()
        # Where every new tab starts.
        self.server.initial_camera.position = position_from_camera(front_camera(self.renderer.run_settings.camera))
        self.server.initial_camera.look_at = (0.0, 0.0, 0.0)
        self.server.initial_camera.up = (0.0, 1.0, 0.0)
        self.server.on_client_connect(self._connect)
        self.server.on_client_disconnect(self._disconnect)
        return f"http://{'localhost' if host in ('127.0.0.1', '0.0.0.0', '::1', '::') else host}:{self.server.get_port()}"

    def _connect(self, client):
        self.tabs[client.client_id] = Tab(client, self.renderer, self.config, self.settings, self.log)
        self.log(f"tab {client.client_id} opened ({len(self.tabs)} open)")

    def _disconnect(self, client):
        tab = self.tabs.pop(client.client_id, None)
        if tab is not None:
            tab.close()
            self.log(f"tab {client.client_id} closed ({len(self.tabs)} still open); the server keeps running")

    def stop(self):
        for tab in list(self.tabs.values()):
            tab.close()
        if self.server is not None:
            self.server.stop()
