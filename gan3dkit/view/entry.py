"""`view` as one call: typed options -> the source opened (after waiting for a run's first checkpoint), a Viewer."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .app import Viewer


@dataclass
class ViewOptions:
    """What `gan3dkit view` was asked (one field per option; see its --help)."""

    source: Path
    port: int = 8080
    host: str = "127.0.0.1"
    ckpt: Path | None = None
    ganspace: Path | None = None
    components: int = 8
    out: Path = Path("view")
    follow: float = 2.0
    wait: bool = False
    parent_pid: int | None = None
    device: str = "cpu"


def open_viewer(opts: ViewOptions, warn: Callable[[str], None] = lambda message: None) -> Viewer | None:
    """Open the source (a run folder's first checkpoint waited for with --wait), load GANSpace components, bind the
    server (`warn` hears about a host other than loopback first). None when the parent process went away while
    waiting (train --view stopped before its first checkpoint)."""
    import importlib.util

    from ..utils.device import resolve_device
    from ..utils.errors import UsageError

    if importlib.util.find_spec("viser") is None:
        raise UsageError("`gan3dkit view` needs viser: pip install 'gan3dkit[view]'")
    from .sources import RUN_CHECKPOINT, open_source

    source, parent_pid = opts.source, opts.parent_pid
    # wait for a training run's first checkpoint: started by `train --view` (parent_pid), or a run folder by hand
    if opts.wait and source.is_dir() and (parent_pid is not None or (source / "config.json").is_file()):
        while not (source / RUN_CHECKPOINT).is_file():
            if parent_pid is not None and os.getppid() != parent_pid:
                return None
            time.sleep(1.0)
    src = open_source(source, opts.ckpt, resolve_device(opts.device))
    gs = None
    if opts.ganspace is not None:
        if src.kind == "run" or src.planes is not None:
            raise UsageError("--ganspace works with a checkpoint file or an invert folder (components belong to one "
                             "generator; a followed run changes it, a tri-plane file has no latent)")
        from ..edit.ganspace import load_ganspace

        gs = load_ganspace(opts.ganspace, src.G)
    if opts.host not in ("127.0.0.1", "localhost", "::1"):
        warn(f"listening on {opts.host}: anyone who can reach this machine on port {opts.port} can see and export "
             "the model")
    return Viewer(src, host=opts.host, port=opts.port, out=opts.out, ganspace=gs, components=opts.components,
                  follow_s=opts.follow if src.kind == "run" else None, parent_pid=parent_pid)  # fmt: skip
