"""kill -9 in the middle of a checkpoint write (`invert DIR`, `distill-encoder`, `train`), rerun: the rerun finishes
and the run folder holds no temp file of any name, ours or a library's."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from .conftest import micro_distill, png_bytes
from .test_corpus_models import FAST

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "250", "GAN3DKIT_NO_EXTENSION": "1"}

#: Runs the CLI with its Nth safetensors write (a checkpoint, a generator delta; N = sys.argv[1]) stopping halfway:
#: half the bytes are written and flushed to the project's temp file, then the process sleeps until it is killed.
STALL = """
import sys, time
import gan3dkit.utils.files as files
real, seen, nth = files._write_all, [], int(sys.argv.pop(1))
def stalled(f, data):
    if len(data) > 8 and data[8:9] == b"{" and b'"__metadata__"' in data[:4096]:
        seen.append(1)
        if len(seen) == nth:
            f.write(data[: len(data) // 2]); f.flush()
            print("STALLED", flush=True)
            time.sleep(600)
    real(f, data)
files._write_all = stalled
from gan3dkit.cli.main import main
sys.argv = ["gan3dkit", *sys.argv[1:]]
main()
"""

#: Any temp name: the project's `.<name>.<pid>.<random>.tmp[.ext]` / `.<name>.tmp<pid>`, safetensors' `.tmpXXXXXX`.
LITTER = re.compile(r"(^\..*\.tmp(\d+|\.[A-Za-z0-9]+)?$)|(^\.tmp[A-Za-z0-9]{6}$)|\.tmp$")


def litter(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if LITTER.search(p.name))


def run_stalled(args: list[str], temp_glob: str, folder: Path, timeout: float = 300.0, nth: int = 1,
                env: dict[str, str] = ENV) -> str:
    """Start the CLI with the stall hook, wait until it sits inside its `nth` safetensors write, kill -9 it; return
    the temp file it left (which must be one of the project's names)."""
    proc = subprocess.Popen([sys.executable, "-c", STALL, str(nth), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env)
    start = time.time()
    while True:
        line = proc.stdout.readline()
        if "STALLED" in line:
            break
        assert line or proc.poll() is None, f"finished before the write: {proc.stdout.read()}"
        assert time.time() - start < timeout, "never reached a checkpoint write"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    left = [p for p in folder.rglob(temp_glob)]
    assert len(left) == 1 and left[0].stat().st_size > 0, litter(folder)  # killed inside the write
    assert re.fullmatch(rf"\..+\.{proc.pid}\.[A-Za-z0-9_]+\.tmp", left[0].name), left[0].name
    return str(left[0])


def gan3dkit(*args: str) -> str:
    res = subprocess.run([sys.executable, "-m", "gan3dkit", *args], capture_output=True, text=True, env=ENV,
                         check=False, timeout=600)
    assert res.returncode == 0, res.stdout + res.stderr
    return res.stdout + res.stderr


def test_invert_dir_killed_inside_a_delta_write_leaves_nothing_after_the_rerun(models, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    rng = np.random.default_rng(0)
    for name in ("a.png", "b.png"):
        (src / name).write_bytes(png_bytes(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)))
    out = tmp_path / "out"
    args = ["invert", str(src), "--ckpt", str(models.gen), "--out", str(out), *FAST]
    run_stalled(args, ".generator_delta.safetensors.*", out)
    assert not (out / "a.png" / "metrics.json").exists()  # the item was not done
    gan3dkit(*args)
    assert (out / "a.png" / "metrics.json").is_file() and (out / "b.png" / "metrics.json").is_file()
    assert litter(tmp_path) == []


def test_distill_encoder_killed_inside_a_checkpoint_write_leaves_nothing_after_the_resume(models, tmp_path):
    out = tmp_path / "run"
    cfg = micro_distill("lp3d-lt", models.gen, out, steps=2)
    sets = [f"--set={k}={v}" for k, v in (("model", '{"input_resolution": 32}'), ("optim.batch", 2),
                                           ("run.tick_steps", 1), ("run.snapshot_ticks", 1), ("run.val_samples", 2),
                                           ("run.cpu_threads", 1))]
    args = ["distill-encoder", "--arch", cfg.arch, "--ckpt", str(models.gen), "--out", str(out), "--preset", "tiny",
            "--steps", "2", "--device", "cpu", "--random-init", *sets]
    run_stalled(args, ".checkpoint.safetensors.*", out)
    assert not (out / "checkpoint.safetensors").exists()  # the first checkpoint never landed
    gan3dkit(*args)
    from gan3dkit.train.checkpoint import read_header

    assert read_header(out / "checkpoint.safetensors")["progress"]["step"] == 2
    assert litter(tmp_path) == []


def test_a_killed_checkpoint_write_is_removed_by_the_next_write(tmp_path):
    """The writer every checkpoint goes through (train, distill-encoder, convert, edit's components, invert's deltas):
    its temp carries the writer's pid, so the next write beside it removes it once that process is gone."""
    import torch

    from gan3dkit.train.checkpoint import load_tensors, save_checkpoint

    path = tmp_path / "c.safetensors"
    code = STALL.split("from gan3dkit.cli.main")[0] + (
        "import torch\nfrom gan3dkit.train.checkpoint import save_checkpoint\n"
        f"save_checkpoint({str(path)!r}, {{'G': torch.nn.Linear(64, 64)}}, {{}}, {{}}, {{'step': 1}})\n")
    proc = subprocess.Popen([sys.executable, "-c", code, "1"], stdout=subprocess.PIPE, text=True, env=ENV)
    assert "STALLED" in proc.stdout.readline()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert len(litter(tmp_path)) == 1 and not path.exists()
    save_checkpoint(path, {"G": torch.nn.Linear(2, 2)}, {}, {}, {"step": 2})
    assert litter(tmp_path) == [] and set(load_tensors(path)) >= {"G.weight", "G.bias"}
