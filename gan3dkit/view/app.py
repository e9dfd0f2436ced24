"""The viewer server: one viser server, a render thread per browser tab (coarse while moving, refined when still)."""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from .camera import (
    BrowserView,
    Pose,
    cameras_from_view,
    eg3d_pose,
    pad_to_aspect,
    pose_from_label,
    yaw_pitch_radius,
)
from .exports import run_export
from .gui import Controls, describe
from .render import FrameRenderer, ViewSettings
from .sources import ViewSource

#: Seconds without a camera message after which the view counts as still and is refined.
SETTLE_S = 0.25


@dataclass
class TabStats:
    """Per-tab timings: when it connected, when its first frame was sent, every frame (time, nrr, moving, secs)."""

    connected: float
    first_frame: float | None = None
    frames: list[tuple[float, int, bool, float]] = field(default_factory=list)


class Tab:
    """One browser tab: its camera, its render thread and its statistics."""

    def __init__(self, viewer: Viewer, client) -> None:
        self.viewer, self.client = viewer, client
        self.stats = TabStats(time.time())
        self.moved_at = 0.0
        self.dirty = True  # a new camera or new settings: render a (preview) frame
        self.refined = False
        self.wake = threading.Event()
        self.closed = threading.Event()
        self.readout = client.gui.add_markdown("")  # this tab's camera, as `generate --yaws/--pitch` takes it
        client.camera.on_update(lambda _cam: self.camera_moved())
        self.thread = threading.Thread(target=self.loop, name=f"view-tab-{client.client_id}", daemon=True)
        self.thread.start()
        self.wake.set()  # the first frame right away

    def camera_moved(self) -> None:
        self.moved_at = time.time()
        self.invalidate()

    def invalidate(self) -> None:
        self.dirty, self.refined = True, False
        self.wake.set()

    def view(self) -> BrowserView:
        cam = self.client.camera
        return BrowserView(tuple(cam.wxyz), tuple(cam.position), float(cam.fov), int(cam.image_width),
                           int(cam.image_height))  # fmt: skip

    def loop(self) -> None:
        while not self.closed.is_set() and not self.viewer.stopping.is_set():
            self.wake.wait(timeout=0.05)
            self.wake.clear()
            moving = time.time() - self.moved_at < SETTLE_S
            if not self.dirty and (self.refined or moving):
                continue
            self.dirty = False
            try:
                self.draw(moving)
            except Exception as exc:  # noqa: BLE001 - a frame that fails is reported on the page; the server goes on
                self.viewer.report(f"render failed: {type(exc).__name__}: {exc}")
                self.refined = True

    def draw(self, moving: bool) -> None:
        view = self.view()
        preview, full = self.viewer.controls.resolutions()
        nrr = preview if moving else full
        frame = self.viewer.frames.render(self.viewer.controls.settings(), cameras_from_view(view), nrr)
        image = pad_to_aspect(frame.image, view.aspect)
        if self.closed.is_set():
            return
        self.client.scene.set_background_image(image, format="jpeg" if moving else "png", jpeg_quality=90)
        self.client.flush()  # send now, not at the end of viser's batching window
        now = time.time()
        self.stats.first_frame = self.stats.first_frame or now
        self.stats.frames.append((now, nrr, moving, frame.seconds))
        self.refined = not moving
        if not moving:
            yaw, pitch, radius = yaw_pitch_radius(view, self.viewer.frames.source.pivot)
            self.readout.content = (f"camera: yaw {yaw:+.2f}, pitch {pitch:+.2f} rad, radius {radius:.2f}; "
                                    f"{nrr}² in {1000 * frame.seconds:.0f} ms")  # fmt: skip


class Viewer:
    """`gan3dkit view`: serve SOURCE at http://host:port until `stop()` (or Ctrl-C in `serve_forever`)."""

    def __init__(self, source: ViewSource, host: str = "127.0.0.1", port: int = 8080, out: Path = Path("view"),
                 ganspace=None, components: int = 8, follow_s: float | None = None,
                 parent_pid: int | None = None) -> None:  # fmt: skip
        import viser

        self.source, self.out = source, Path(out)
        self.frames = FrameRenderer(source, ganspace)
        self.stopping = threading.Event()
        self.tabs: dict[int, Tab] = {}
        self.requested_port = port
        self.home = eg3d_pose(source.G)
        self.estimated = pose_from_label(source.camera, source.pivot) if source.camera is not None else None
        self.warm_up()  # before the server: a page that connects gets its first frame at once
        with contextlib.redirect_stdout(sys.stderr):  # viser prints a banner: keep stdout for --json
            self.server = viser.ViserServer(host=host, port=port, label="gan3dkit view", verbose=False)
        try:
            self.port = self.server.get_port()
            self.url = f"http://{'localhost' if host in ('127.0.0.1', '::1') else host}:{self.port}"
            self.server.scene.set_up_direction("+y")  # EG3D's world is y-up (camera y points down, OpenCV)
            start = self.estimated or self.home  # an inversion or an encoding opens at its photo's camera
            cam = self.server.initial_camera
            cam.position, cam.look_at, cam.up, cam.fov = start.position, start.look_at, start.up, start.fov
            self.controls = Controls(self.server, source, ganspace, components, on_change=self.invalidate_all,
                                     on_export=self.export, on_camera=self.go_to)  # fmt: skip
            if source.photo is not None and self.estimated is not None:
                self.add_photo(source)
            self.server.on_client_connect(self.connect)
            self.server.on_client_disconnect(self.disconnect)
        except BaseException:
            with contextlib.redirect_stdout(sys.stderr):
                self.server.stop()
            raise
        self.watchers = []
        if follow_s is not None and source.checkpoint is not None:
            from .follow import CheckpointFollower

            self.watchers.append(CheckpointFollower(self, follow_s))
        if parent_pid is not None:
            threading.Thread(target=self.watch_parent, args=(parent_pid,), daemon=True, name="view-parent").start()

    def warm_up(self) -> None:
        """Render the first view once before anyone connects (first calls are slow), so the first frame is quick."""
        from ..generate.views import view_cameras

        cams = view_cameras(self.source.G, [0.0], 0.0, self.frames.device)
        for nrr in {max(8, self.source.nrr // 2), self.source.nrr}:
            self.frames.render(ViewSettings(), cams, nrr)

    # ------------------------------------------------------------------------------------------------- tabs
    def connect(self, client) -> None:
        self.tabs[client.client_id] = Tab(self, client)

    def disconnect(self, client) -> None:
        tab = self.tabs.pop(client.client_id, None)
        if tab is not None:
            tab.closed.set()
            tab.wake.set()

    def invalidate_all(self) -> None:
        for tab in list(self.tabs.values()):
            tab.invalidate()

    def report(self, text: str) -> None:
        self.controls.status.content = describe(self.frames.source, text)

    def swap(self, source: ViewSource) -> None:
        """Show a newer checkpoint of the followed run."""
        self.frames.swap(source)
        self.report("")
        self.invalidate_all()

    # ------------------------------------------------------------------------------------------------- buttons
    def set_pose(self, client, pose: Pose) -> None:
        with client.atomic():
            client.camera.fov = pose.fov
            client.camera.position = pose.position
            client.camera.look_at = pose.look_at
            client.camera.up_direction = pose.up

    def go_to(self, name: str, client) -> None:
        if client is not None:
            self.set_pose(client, self.estimated if name == "estimated" and self.estimated else self.home)

    def export(self, kind: str, client) -> None:
        tab = self.tabs.get(client.client_id) if client is not None else None
        if tab is None:
            return
        try:
            paths = run_export(kind, self.frames, self.controls.settings(), cameras_from_view(tab.view()), self.out)
        except (ValueError, OSError) as exc:
            client.add_notification("Export failed", str(exc), color="red", auto_close_seconds=8.0)
            return
        for path in paths:
            client.send_file_download(path.name, path.read_bytes())
        client.add_notification("Exported", ", ".join(str(p) for p in paths), auto_close_seconds=8.0)

    def add_photo(self, source: ViewSource) -> None:
        """The input photo as a picture frame at its estimated camera, and in the panel."""
        from viser import transforms as tf

        from ..cameras.camera import Cameras

        camera, photo, estimated = source.camera, source.photo, self.estimated
        if camera is None or photo is None or estimated is None:
            raise ValueError("add_photo needs a source with a photo and an estimated camera")
        cams = Cameras.from_label(camera.double())
        rot = tf.SO3.from_matrix(cams.rotations[0].numpy())
        frustum = self.server.scene.add_camera_frustum(
            "/input_photo", fov=estimated.fov, aspect=1.0, scale=0.15, image=photo, wxyz=rot.wxyz,
            position=cams.origins[0].numpy(), visible=False)  # fmt: skip
        with self.server.gui.add_folder("Input photo"):
            self.server.gui.add_image(photo, label="the photo that was inverted")
            # Off by default: seen from (near) its own camera the photo covers the rendered picture.
            shown = self.server.gui.add_checkbox("Show at its estimated camera", initial_value=False,
                                                 hint="A picture frame in the scene; orbit away to see it")

            @shown.on_update
            def _(_event) -> None:
                frustum.visible = shown.value

        self.photo_toggle = shown

    # ------------------------------------------------------------------------------------------------- lifetime
    def watch_parent(self, pid: int) -> None:
        """Stop when the process that started this viewer (`train --view`) is gone."""
        while not self.stopping.wait(1.0):
            if os.getppid() != pid:
                self.stopping.set()

    def serve_forever(self) -> None:
        try:
            while not self.stopping.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    def stop(self) -> None:
        """Stop the render threads, the followers and the server; returns when they are gone."""
        self.stopping.set()
        for w in self.watchers:
            w.stop()
        for tab in list(self.tabs.values()):
            tab.closed.set()
            tab.wake.set()
            tab.thread.join(timeout=10)
        with contextlib.redirect_stdout(sys.stderr):
            self.server.stop()

    def stats(self) -> dict:
        return {cid: tab.stats for cid, tab in self.tabs.items()}

