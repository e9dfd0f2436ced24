"""`gan3dkit view` as a command: one-line errors before any server, the port and host messages, a clean stop, and
`train --view` leaving nothing behind."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from .conftest import write_generator

ENV = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2]), "GAN3DKIT_NO_EXTENSION": "1",
       "OMP_NUM_THREADS": "1"}  # fmt: skip


def gan3dkit(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gan3dkit", *args], capture_output=True, text=True, env=ENV,
                          check=False, timeout=timeout)  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def nothing_listens(port: int) -> bool:
    """No server accepts connections on the port (binding may still wait for TIME_WAIT connections to expire)."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except OSError:
        return True
    return False


def bad_sources(tmp_path: Path, tiny_ckpt: Path, inversion_dir: Path) -> list[tuple[list[str], int, str]]:
    (tmp_path / "empty").mkdir()
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.json").write_text("{}")
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "junk.safetensors").write_bytes(b"\x00" * 64)
    import torch
    from safetensors.torch import save_file

    save_file({"x": torch.zeros(2)}, str(tmp_path / "other.safetensors"))
    write_generator(tmp_path / "run2" / "checkpoint.safetensors")
    return [
        ([str(tmp_path / "missing.safetensors")], 2, "not found"),
        ([str(tmp_path / "empty")], 2, "neither a training run"),
        ([str(tmp_path / "run")], 2, "has no checkpoint.safetensors yet"),
        ([str(tmp_path / "notes.txt")], 2, "SOURCE must be"),
        ([str(tmp_path / "junk.safetensors")], 1, "not a readable safetensors file"),
        ([str(tmp_path / "other.safetensors")], 1, "holds no tri-planes"),
        ([str(inversion_dir / "generator_delta.safetensors")], 2, "tuned-generator delta"),
        ([str(tiny_ckpt), "--ckpt", str(tmp_path / "nope.safetensors")], 2, "--ckpt"),
        ([str(tmp_path / "run2"), "--ganspace", str(tmp_path / "other.safetensors")], 2, "--ganspace works with"),
    ]


def test_bad_source_is_one_line_before_any_server(tmp_path, tiny_ckpt, inversion_dir):
    port = free_port()
    for args, code, words in bad_sources(tmp_path, tiny_ckpt, inversion_dir):
        res = gan3dkit("view", *args, "--port", str(port))
        lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
        assert res.returncode == code, (args, res.stderr)
        assert len(lines) == 1 and lines[0].startswith("error:") and words in lines[0], (args, res.stderr)
        assert "Traceback" not in res.stderr and res.stdout == ""
        assert port_is_free(port)  # nothing was served


def start_view(*args: str) -> tuple[subprocess.Popen, dict]:
    proc = subprocess.Popen([sys.executable, "-m", "gan3dkit", "view", *args, "--json"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=ENV)  # fmt: skip
    lines = []
    while True:  # the JSON document is printed once the server listens
        line = proc.stdout.readline()
        if not line:
            raise AssertionError(f"viewer exited: {proc.wait()} {proc.stderr.read()}")
        lines.append(line)
        if line.startswith("}"):
            return proc, json.loads("".join(lines))


def children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                out.append(int(entry.name))
    return out


def test_serves_then_stops_cleanly_with_taken_port_and_open_host(tiny_ckpt, tmp_path):
    """Port taken -> the next one, said; --host 0.0.0.0 -> a warning; the page is served; SIGTERM (and Ctrl-C)
    stop it with exit 0, the port free again and no process left."""
    blocker = socket.socket()
    blocker.bind(("0.0.0.0", 0))
    blocker.listen()
    taken = blocker.getsockname()[1]
    try:
        proc, info = start_view(str(tiny_ckpt), "--port", str(taken), "--host", "0.0.0.0", "--out", str(tmp_path))
        try:
            assert info["requested_port"] == taken and info["port"] > taken and info["kind"] == "generator"
            html = urllib.request.urlopen(f"http://127.0.0.1:{info['port']}/", timeout=10).read()
            assert b"<html" in html.lower()  # viser's client, served from inside its wheel
            assert children(proc.pid) == []  # everything runs in threads of the one process
        finally:
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=30)
        err = proc.stderr.read()
        assert code == 0, err
        assert f"port {taken} is in use; serving on {info['port']} instead" in err
        assert "warning:" in err and "anyone who can reach this machine" in err
        assert nothing_listens(info["port"])
    finally:
        blocker.close()
    proc, info = start_view(str(tiny_ckpt), "--port", str(free_port()))
    proc.send_signal(signal.SIGINT)  # Ctrl-C
    assert proc.wait(timeout=30) == 0 and nothing_listens(info["port"])
    assert "warning:" not in proc.stderr.read()  # localhost: no warning


def test_follows_a_run_and_swaps_in_a_new_checkpoint(tmp_path):
    """A run folder is followed: a new checkpoint (written atomically, as training does) is shown without restart."""
    import numpy as np

    from gan3dkit.generate.views import view_cameras
    from gan3dkit.view.app import Viewer
    from gan3dkit.view.render import ViewSettings
    from gan3dkit.view.sources import open_source

    run = tmp_path / "run"
    write_generator(run / "checkpoint.safetensors", seed=0)
    viewer = Viewer(open_source(run), port=free_port(), follow_s=0.2, out=tmp_path / "exports")
    try:
        label = view_cameras(viewer.source.G, [0.0], 0.0, viewer.frames.device).to_label()
        before = viewer.frames.render(ViewSettings(), label).image
        tmp = run / "next.safetensors"
        write_generator(tmp, seed=1)
        os.replace(tmp, run / "checkpoint.safetensors")
        deadline = time.time() + 30
        while viewer.frames.version == 0 and time.time() < deadline:
            time.sleep(0.1)
        assert viewer.frames.version == 1 and viewer.frames.source.progress["step"] == 1
        assert not np.array_equal(before, viewer.frames.render(ViewSettings(), label).image)
        assert "step 1" in viewer.controls.status.content
    finally:
        viewer.stop()


@pytest.mark.slow
def test_train_view_leaves_nothing_running(tmp_path):
    """`train --view` starts the viewer beside the training and stops it with the training."""
    from gan3dkit.prepare.synthetic import build_synthetic

    data = build_synthetic(tmp_path / "heads.lmdb", family="heads", num=8, resolution=64, ssaa=1, resume=False)
    out = tmp_path / "run"
    res = gan3dkit("train", "--data", str(data), "--out", str(out), "--max-steps", "2", "--view", "--view-port",
                   str(free_port()), "--set", "optim.batch=4", "--set", "run.workers=0", "--set", "run.tick_kimg=0.004",
                   "--set", "generator.rendering.depth_resolution=6",
                   "--set", "generator.rendering.depth_resolution_importance=6", timeout=600)  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "viewer: http://localhost:" in res.stderr
    assert (out / "view.log").is_file()
    left = [p for p in Path("/proc").iterdir() if p.name.isdigit() and str(out).encode() in _cmdline(p)]
    assert left == []


def _cmdline(proc_dir: Path) -> bytes:
    try:
        return (proc_dir / "cmdline").read_bytes()
    except OSError:
        return b""


def test_help_lists_view_with_an_example():
    from typer.testing import CliRunner

    from gan3dkit.cli.main import app

    runner = CliRunner()
    assert " view " in runner.invoke(app, ["--help"]).output
    assert "Example: gan3dkit view" in runner.invoke(app, ["view", "--help"]).output
    assert "--view" in runner.invoke(app, ["train", "--help"]).output


def test_panel_for_an_inversion_and_for_ganspace(tiny_ckpt, inversion_dir, tmp_path):
    """An inversion opens at its estimated camera with its photo in the scene and the before/after choice; GANSpace
    adds a strength and a layer-range slider per component, which become the frame's edits."""
    from gan3dkit.edit import GanSpaceConfig, compute_ganspace
    from gan3dkit.view.app import Viewer
    from gan3dkit.view.sources import open_source

    viewer = Viewer(open_source(inversion_dir), port=free_port(), out=tmp_path)
    try:
        assert viewer.controls.panel.visible and viewer.controls.estimated.visible
        assert viewer.server.initial_camera.position == pytest.approx(viewer.estimated.position)
        viewer.controls.panel.value = "before | after"
        assert viewer.controls.settings().panel == "both"
    finally:
        viewer.stop()
    src = open_source(tiny_ckpt)
    gs = compute_ganspace(src.G, GanSpaceConfig(num_samples=128, batch=128))
    viewer = Viewer(src, port=free_port(), out=tmp_path, ganspace=gs, components=3)
    try:
        assert len(viewer.controls.edits) == 3 and not viewer.controls.panel.visible
        strength, layers = viewer.controls.edits[1]
        strength.value, layers.value = 2.0, (1, 4)
        assert viewer.controls.settings().edits == ((1, 2.0, 1, 4),)
    finally:
        viewer.stop()
