"""Session fixtures of the metric tests: a tiny checkpoint, synthetic datasets with truth, probes, isolated cache."""

from __future__ import annotations

import contextlib
import json

import pytest
import torch
from typer.testing import CliRunner

from gan3dkit.prepare.synthetic import build_synthetic


@contextlib.contextmanager
def single_thread():
    """Metric tests run torch single-threaded: on shared 2-core runners, OpenMP spinning under contention made
    Inception 3-5x slower with 2 threads than with 1 (measured here); restored afterwards for other test folders."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(old)


@pytest.fixture(autouse=True)
def _one_thread():
    with single_thread():
        yield


@pytest.fixture(scope="session", autouse=True)
def isolated_cache(tmp_path_factory):
    """Weights/feature caches go to a temporary folder (never ~/.cache) for the whole session."""
    with pytest.MonkeyPatch.context() as mp:
        path = tmp_path_factory.mktemp("gan3dkit-cache")
        mp.setenv("GAN3DKIT_CACHE", str(path))
        yield path


@pytest.fixture(scope="session")
def heads16(tmp_path_factory):
    """16 synthetic heads at 64^2 with true camera, ypr, depth and mask (the checkpoint's training data)."""
    return build_synthetic(tmp_path_factory.mktemp("data") / "heads16.lmdb", family="heads", num=16, resolution=64,
                           ssaa=1, resume=False)


@pytest.fixture(scope="session")
def heads_probe_data(tmp_path_factory):
    """512 synthetic heads at 32^2 for training and holding out the probes."""
    return build_synthetic(tmp_path_factory.mktemp("data") / "heads512.lmdb", family="heads", num=512, resolution=32,
                           ssaa=1, resume=False, seed=1)


@pytest.fixture(scope="session")
def tiny_ckpt(heads16, tmp_path_factory):
    """A one-step tiny-preset checkpoint (about 10 s on CPU)."""
    from gan3dkit.train.config import train_preset
    from gan3dkit.train.loop import train
    from gan3dkit.utils.config import apply_overrides

    out = tmp_path_factory.mktemp("run")
    cfg = apply_overrides(train_preset("tiny"), [
        f'data="{heads16}"', f'out="{out}"', "run.max_steps=1", "run.workers=0", "run.grid_size=4",
        "generator.rendering.depth_resolution=6", "generator.rendering.depth_resolution_importance=6",
        "loss.density_reg_points=64"])
    with single_thread():
        return train(cfg, resume=False)["checkpoint"]


@pytest.fixture(scope="session")
def cli_app():
    """A Typer app with the two commands (the lead registers them in gan3dkit.cli.main)."""
    import typer

    from gan3dkit.cli.evaluate import evaluate, train_probe

    app = typer.Typer(pretty_exceptions_enable=False)
    app.command("evaluate")(evaluate)
    app.command("train-probe")(train_probe)
    return app


@pytest.fixture(scope="session")
def probes(cli_app, heads_probe_data, tmp_path_factory):
    """Pose and depth probes trained through `gan3dkit train-probe` (400 steps each at 32^2): {target: (path, json)}."""
    out = tmp_path_factory.mktemp("probes")
    runner = CliRunner()
    result = {}
    for target in ("pose", "depth"):
        path = out / f"{target}.safetensors"
        res = runner.invoke(cli_app, ["train-probe", "--target", target, "--data", str(heads_probe_data), "--out",
                                      str(path), "--steps", "400", "--lr", "4e-3", "--resolution", "32", "--width",
                                      "16", "--threads", "1", "--json"])
        assert res.exit_code == 0, res.output
        result[target] = (path, json.loads(res.stdout))
    return result
