"""LP3D supplement A2: the SR latent a constant 1, and the whole-EG3D fine-tune as a resumable `train` stage."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from gan3dkit.cli.main import app
from gan3dkit.networks import TriPlaneGenerator
from gan3dkit.train.checkpoint import load_tensors
from gan3dkit.train.config import train_preset
from gan3dkit.utils.config import apply_overrides

CHEAP = [
    "--set", "run.workers=0", "--set", "run.cpu_threads=1", "--set", "run.tick_kimg=0.004",
    "--set", "run.grid_size=4", "--set", "optim.g_reg_interval=2", "--set", "optim.d_reg_interval=3",
    "--set", "generator.rendering.depth_resolution=6", "--set", "generator.rendering.depth_resolution_importance=6",
    "--set", "loss.density_reg_points=64",
]


def test_sr_latent_one_ignores_w():
    cfg = apply_overrides(train_preset("tiny"), ["generator.superres.latent=one"])
    torch.manual_seed(0)
    G = TriPlaneGenerator(cfg.generator).eval()
    sr = G.superresolution
    rgb, feat = torch.randn(2, 3, 16, 16), torch.randn(2, G.superresolution.block0.conv0.weight.shape[1], 16, 16)
    a = sr(rgb, feat, torch.randn(2, G.num_ws, G.w_dim))
    b = sr(rgb, feat, torch.randn(2, G.num_ws, G.w_dim))
    assert torch.equal(a, b)  # the styles come from the constant, not from w
    sr.latent = "w"
    assert torch.equal(sr(rgb, feat, torch.ones(2, G.num_ws, G.w_dim)), a)  # ... and the constant is 1
    assert not torch.equal(sr(rgb, feat, torch.randn(2, G.num_ws, G.w_dim)), a)
    with pytest.raises(ValueError, match="latent"):
        apply_overrides(train_preset("tiny"), ["generator.superres.latent=two"])


def test_lp3d_sr_stage_fine_tunes_from_the_checkpoint_and_resumes_exactly(heads_lmdb, tmp_path, same_training_state):
    run = CliRunner()
    base = tmp_path / "base"
    res = run.invoke(app, ["train", "--data", str(heads_lmdb), "--out", str(base), "--max-steps", "1", *CHEAP])
    assert res.exit_code == 0, res.output
    ckpt = base / "checkpoint.safetensors"
    res = run.invoke(app, ["train", "--stage", "lp3d-sr", "--data", str(heads_lmdb), "--out", str(tmp_path / "x")])
    assert res.exit_code == 2 and "--init" in res.output

    def stage(out, steps):
        return run.invoke(app, ["train", "--stage", "lp3d-sr", "--init", str(ckpt), "--data", str(heads_lmdb),
                                "--out", str(out), "--max-steps", str(steps), *CHEAP])

    # the fine-tune starts from the base run's weights (G, D, G_ema), with fresh optimisers and kimg 0
    from gan3dkit.train.config import TrainConfig
    from gan3dkit.train.loop import GanTask
    from gan3dkit.train.task import RunContext

    cfg = TrainConfig.from_dict(json.loads((base / "config.json").read_text()))
    cfg = apply_overrides(cfg, [f'out="{tmp_path / "probe"}"', f'run.init="{ckpt}"', "generator.superres.latent=one"])
    trainer = GanTask(cfg, RunContext.single(cfg.out))  # no checkpoint in probe/: a fresh fine-tune
    start = load_tensors(ckpt)
    for name, module in (("G", trainer.G), ("D", trainer.D), ("G_ema", trainer.G_ema)):
        for k, v in module.state_dict().items():
            assert torch.equal(v, start[f"{name}.{k}"]), (name, k)
    assert trainer.nimg == 0

    assert stage(tmp_path / "ft", 2).exit_code == 0
    conf = json.loads((tmp_path / "ft" / "config.json").read_text())
    assert conf["generator"]["superres"]["latent"] == "one" and conf["run"]["kimg"] == 6800.0
    assert conf["run"]["init"] == str(ckpt) and conf["method"] == {"name": "eg3d"}
    assert stage(tmp_path / "ft", 4).exit_code == 0  # resumes its own checkpoint (init is ignored then)
    assert stage(tmp_path / "straight", 4).exit_code == 0
    a = same_training_state(tmp_path / "ft", tmp_path / "straight")
    assert not torch.equal(a["G.superresolution.block0.conv0.weight"], start["G.superresolution.block0.conv0.weight"])
