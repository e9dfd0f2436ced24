"""`gan3dkit view`: a browser viewer for a generator, a training run, an encoded tri-plane file or an inversion."""

from __future__ import annotations

from pathlib import Path

import typer

from .common import console, emit_json, err_console, handle_errors


@handle_errors
def view(
    source: Path = typer.Argument(..., help="Generator checkpoint, training run folder (followed), `encode` "
                                  "tri-plane file (.safetensors) or `invert` output folder."),
    port: int = typer.Option(8080, min=1, max=65535, help="Port; the next free one is used (and said) when taken."),
    host: str = typer.Option("127.0.0.1", help="Address to listen on; 0.0.0.0 shows the model to the whole network."),
    ckpt: Path | None = typer.Option(None, help="Generator (or encoder) checkpoint of a tri-plane file, or the base "
                                     "generator of an invert folder without generator_delta.safetensors."),
    ganspace: Path | None = typer.Option(None, help="GANSpace components (`gan3dkit edit`'s .safetensors): one "
                                         "slider per component, with its layer range."),
    components: int = typer.Option(8, min=1, max=512, help="GANSpace sliders to show."),
    out: Path = typer.Option(Path("view"), "--out", help="Folder for exports (PNG, depth .npy, mesh PLY, video)."),
    follow: float = typer.Option(2.0, min=0.2, help="Seconds between checks for a newer checkpoint (run folders)."),
    wait: bool = typer.Option(False, help="Wait for a run folder's first checkpoint instead of failing."),
    parent_pid: int | None = typer.Option(None, hidden=True, help="Stop when this process is gone (train --view)."),
    device: str = typer.Option("cpu", help="cpu | cuda | cuda:N."),
    json_out: bool = typer.Option(False, "--json", help="Print {url, port, source} as JSON once serving."),
) -> None:
    """Turn a model around in the browser: free orbit (coarse while moving, refined when still), seed, ψ,
    conditioning camera, rgb/raw/depth/normals, samples per ray, GANSpace sliders, and exports.

    Example: gan3dkit view runs/heads/checkpoint.safetensors

    Example: gan3dkit view runs/heads --port 8090   (follows the run: shows each new checkpoint)

    Example: gan3dkit view me_3d --ganspace heads_ganspace.safetensors   (an `invert` folder: before/after tuning)

    Over SSH: keep the default host and forward the port (ssh -L 8080:localhost:8080 server).
    """
    import signal

    from ..view.entry import ViewOptions, open_viewer

    opts = ViewOptions(source=source, port=port, host=host, ckpt=ckpt, ganspace=ganspace, components=components,
                       out=out, follow=follow, wait=wait, parent_pid=parent_pid, device=device)
    viewer = open_viewer(opts, lambda message: err_console.print(f"[bold yellow]warning:[/] {message}",
                                                                 highlight=False))
    if viewer is None:  # train --view stopped before its first checkpoint
        return
    c = console(json_out)
    for sig in (signal.SIGINT, signal.SIGTERM):  # Ctrl-C and `kill` stop it cleanly (exit 0), whenever they come
        signal.signal(sig, lambda *_: viewer.stopping.set())
    if viewer.port != port:
        err_console.print(f"port {port} is in use; serving on {viewer.port} instead", highlight=False)
    if json_out:
        emit_json({"url": viewer.url, "port": viewer.port, "requested_port": port, "source": str(source),
                   "kind": viewer.source.kind})  # fmt: skip
    else:
        c.print(f"viewing {viewer.source.kind} {source} at [bold]{viewer.url}[/] (Ctrl-C stops)", highlight=False)
    viewer.serve_forever()
    c.print("viewer stopped", highlight=False)
