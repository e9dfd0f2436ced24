"""Following a training run: reload its newest checkpoint's EMA generator; `train --view` runs the viewer beside it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from pathlib import Path


def file_stamp(path: Path) -> tuple[int, int] | None:
    """(mtime_ns, size) of a file, None when absent (checkpoints are replaced atomically, so a new stamp is a whole
    new file)."""
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


class CheckpointFollower:
    """Polls the viewed checkpoint (one stat() every `every_s` seconds: nothing else touches the training) and swaps
    in its EMA generator when a new one is written. Loading happens in this thread, outside the render lock."""

    def __init__(self, viewer, every_s: float = 2.0) -> None:
        self.viewer, self.every_s = viewer, every_s
        self.path = Path(viewer.source.checkpoint)
        self.stamp = file_stamp(self.path)
        self.reloads = 0
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self.loop, name="view-follow", daemon=True)
        self.thread.start()

    def loop(self) -> None:
        from .sources import from_generator

        while not self._stop.wait(self.every_s):
            stamp = file_stamp(self.path)
            if stamp is None or stamp == self.stamp:
                continue
            try:
                source = from_generator(self.path, self.viewer.frames.device, kind=self.viewer.source.kind)
            except Exception as exc:  # noqa: BLE001 - e.g. NaN weights refused: keep showing the last good one
                self.viewer.report(f"newest checkpoint not shown: {exc}")
                self.stamp = stamp
                continue
            self.stamp = stamp
            self.reloads += 1
            self.viewer.swap(source)

    def stop(self) -> None:
        self._stop.set()
        self.thread.join(timeout=10)


def free_port(host: str, port: int, tries: int = 100) -> int:
    """The first port from `port` on that can be bound on `host`."""
    for candidate in range(port, port + tries):
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
            try:
                s.bind((host, candidate))
            except OSError:
                continue
            return candidate
    raise OSError(f"no free port in {port}-{port + tries - 1} on {host}")


class ViewerProcess:
    """`gan3dkit view RUN_DIR` in a child process beside a training (`train --view`), at lower CPU priority.

    The child renders only while a browser moves the camera or changes a setting, polls the checkpoint with one
    stat() per interval, stops when this process ends (it watches its parent), and is stopped on `close()`.
    """

    def __init__(self, run_dir: Path, host: str = "127.0.0.1", port: int = 8080, nice: int = 10) -> None:
        import importlib.util

        from ..utils.errors import UsageError

        if importlib.util.find_spec("viser") is None:
            raise UsageError("--view needs viser: pip install 'gan3dkit[view]'")
        self.port = free_port(host, port)
        self.url = f"http://{'localhost' if host in ('127.0.0.1', '::1') else host}:{self.port}"
        self.log = Path(run_dir) / "view.log"
        self.log.parent.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "gan3dkit", "view", str(run_dir), "--host", host, "--port", str(self.port),
               "--wait", "--parent-pid", str(os.getpid()), "--out", str(Path(run_dir) / "view")]  # fmt: skip
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                         preexec_fn=(lambda: os.nice(nice)) if hasattr(os, "nice") else None)  # noqa: PLW1509

    def close(self, timeout: float = 10.0) -> int | None:
        """Stop the viewer (SIGTERM, then SIGKILL after `timeout` s); returns its exit code."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def __enter__(self) -> ViewerProcess:  # noqa: PYI034
        return self

    def __exit__(self, *exc) -> None:
        self.close()
