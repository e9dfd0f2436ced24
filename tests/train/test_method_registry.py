"""A method owns its config: one registered from this file alone trains through the CLI; older config JSON loads."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pytest
import torch
from safetensors.torch import load_file, save_file
from typer.testing import CliRunner

from gan3dkit.cli.main import app
from gan3dkit.generate.loading import load_generator
from gan3dkit.methods.eg3d import EG3DLoss, StepState
from gan3dkit.methods.eg3d_method import EG3DRuntime
from gan3dkit.methods.registry import BuildContext, MethodSpec, get_method, register_method, unregister_method
from gan3dkit.networks import DualDiscriminator, TriPlaneGenerator
from gan3dkit.train.checkpoint import read_header
from gan3dkit.train.config import TrainConfig, train_preset
from gan3dkit.utils.config import ConfigError, apply_overrides, to_dict

CHEAP = [
    "--set", "run.workers=0", "--set", "run.cpu_threads=1", "--set", "run.tick_kimg=0.004",
    "--set", "run.grid_size=4", "--set", "optim.g_reg_interval=2", "--set", "optim.d_reg_interval=3",
    "--set", "generator.rendering.depth_resolution=6", "--set", "generator.rendering.depth_resolution_importance=6",
    "--set", "loss.density_reg_points=64",
]


# ------------------------------------------------------------------------------------- a throwaway method
@dataclass
class ToySection:
    weight: float = 1.0
    """Weight of a logit-size penalty on fakes in the G phase (what the method adds to EG3D)."""


@dataclass
class ToyConfig:
    toy: ToySection = field(default_factory=ToySection)


class ToyLoss(EG3DLoss):
    def __init__(self, G, D, cfg, batch: int, toy: ToySection) -> None:
        super().__init__(G, D, cfg, batch)
        self.toy = toy

    def fake_terms(self, gen, c, st: StepState, phase: str, update_emas: bool = False):
        logits = self.run_D(gen, c, st, update_emas=update_emas)
        if phase != "G":
            return logits, None, {}
        penalty = logits.square().mean()
        return logits, self.toy.weight * penalty, {"Loss/G/toy": penalty.item(), "Loss/G/toy_weight": self.toy.weight}


def build_toy(ctx: BuildContext) -> EG3DRuntime:
    G = TriPlaneGenerator(ctx.generator).to(ctx.device)
    D = DualDiscriminator(ctx.discriminator).to(ctx.device)
    assert ctx.cameras is not None
    return EG3DRuntime(G, D, ToyLoss(G, D, ctx.loss, ctx.batch, ctx.method_cfg.toy), ctx.cameras.to(ctx.device))


def toy_preset(cfg, preset: str) -> None:
    cfg.method.toy.weight = 2.0 if preset == "tiny" else 1.0


def toy_check(cfg) -> None:
    if cfg.method.toy.weight < 0:
        raise ValueError("toy.weight must be >= 0")


TOY = MethodSpec("toy-test", "a throwaway method: EG3D plus a logit-size penalty on fakes", build_toy,
                 config=lambda: ToyConfig, preset=toy_preset, check=toy_check, source="this test")


@pytest.fixture
def toy():
    register_method(TOY)
    yield TOY
    unregister_method(TOY.name)


def test_a_method_registered_here_trains_through_the_cli_with_its_own_section(toy, heads_lmdb, tmp_path):
    out = tmp_path / "run"
    args = ["train", "--method", toy.name, "--data", str(heads_lmdb), "--out", str(out), *CHEAP]
    res = CliRunner().invoke(app, [*args, "--print-config"])
    assert res.exit_code == 0, res.output
    printed = json.loads(res.stdout[res.stdout.index("{"):])
    assert printed["method"] == {"name": toy.name, "toy": {"weight": 2.0}}  # the preset hook's value
    res = CliRunner().invoke(app, [*args, "--set", "toy.weight=3.5", "--max-steps", "2", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout[res.stdout.index("{"):])["steps"] == 2
    saved = json.loads((out / "config.json").read_text())
    assert saved["method"] == {"name": toy.name, "toy": {"weight": 3.5}}
    header = read_header(out / "checkpoint.safetensors")
    assert header["extra"]["method"] == toy.name and header["config"]["method"]["toy"]["weight"] == 3.5
    ticks = [json.loads(line) for line in (out / "stats.jsonl").read_text().splitlines()]
    assert ticks and all(t["Loss/G/toy_weight"] == 3.5 and t["Loss/G/toy"] > 0 for t in ticks)
    # the config rebuilds as the toy method's: resume with it, and with the full path of the same key
    cfg = TrainConfig.from_dict(header["config"])
    assert isinstance(cfg.method, ToyConfig) and cfg.method.toy.weight == 3.5 and cfg.method_name == toy.name
    res = CliRunner().invoke(app, [*args, "--set", "method.toy.weight=3.5", "--max-steps", "3", "--json"])
    assert res.exit_code == 0, res.output
    assert read_header(out / "checkpoint.safetensors")["progress"]["step"] == 3
    # its check hook runs with the generic ones
    res = CliRunner().invoke(app, [*args, "--set", "toy.weight=-1", "--print-config"])
    assert res.exit_code != 0 and "toy.weight must be >= 0" in res.output


def test_unregistered_methods_and_foreign_sections_are_refused(toy):
    assert get_method(toy.name) is toy
    with pytest.raises(ValueError, match="already registered"):
        register_method(toy)
    with pytest.raises(ConfigError, match="unknown method 'nope'"):
        TrainConfig.from_dict({"method": {"name": "nope"}})
    with pytest.raises(ConfigError, match="pof3d"):  # eg3d has no pof3d section
        apply_overrides(train_preset("tiny"), ["pof3d.dis_cam_weight=10"])
    with pytest.raises(ConfigError, match="unknown keys"):
        TrainConfig.from_dict({"method": {"name": toy.name, "toy": {"wieght": 1.0}}})


def test_method_sections_take_overrides_by_short_and_full_path():
    cfg = apply_overrides(train_preset("tiny", "hyperpose+pof3d"),
                          ["pof3d.dis_cam_weight=7", "method.hyperpose.tau=0.2", "pose.yaw_std=0.3"])
    assert (cfg.method.pof3d.dis_cam_weight, cfg.method.hyperpose.tau, cfg.method.pose.yaw_std) == (7.0, 0.2, 0.3)
    switched = cfg.with_method("eg3d-posereg")
    assert switched.method_name == "eg3d-posereg" and switched.method.posereg.norm == "l2"
    assert switched.optim == cfg.optim and not hasattr(switched.method, "pof3d")


# ----------------------------------------------------------------------------- the older JSON layout
def _old_layout(cfg: TrainConfig) -> dict:
    """What the code before methods owned their config wrote: "method": NAME and every method's section on top."""
    from gan3dkit.methods.hyperpose import HyperPoseConfig
    from gan3dkit.methods.pof3d import PoF3DConfig
    from gan3dkit.methods.posefree import PoseConfig
    from gan3dkit.methods.posereg import PoseRegConfig

    data = cfg.to_dict()
    own = data.pop("method")
    sections = {"pose": PoseConfig(), "posereg": PoseRegConfig(), "hyperpose": HyperPoseConfig(),
                "pof3d": PoF3DConfig()}
    return {"method": own.pop("name"), **data, **{k: to_dict(v) for k, v in sections.items()}, **own}


def test_older_layout_migrates():
    cfg = TrainConfig.from_dict({"method": "pof3d", "pof3d": {"dis_cam_weight": 7.0}, "hyperpose": {"tau": 0.5}})
    assert cfg.method_name == "pof3d" and cfg.method.pof3d.dis_cam_weight == 7.0
    assert "hyperpose" not in cfg.to_dict()["method"]  # another method's section: dropped
    for method in ("eg3d", "eg3d-posereg", "hyperpose", "pof3d", "hyperpose+pof3d", "eg3d-posereg+pof3d"):
        cfg = train_preset("lsun_bedroom256", method)
        assert TrainConfig.from_dict(_old_layout(cfg)) == cfg


def test_checkpoint_of_the_older_layout_resumes_and_loads(heads_lmdb, tmp_path):
    out = tmp_path / "run"
    args = ["train", "--method", "eg3d-posereg", "--data", str(heads_lmdb), "--out", str(out), *CHEAP,
            "--set", "posereg.norm=l1"]
    res = CliRunner().invoke(app, [*args, "--max-steps", "1"])
    assert res.exit_code == 0, res.output
    ckpt = out / "checkpoint.safetensors"
    header = read_header(ckpt)
    header["config"] = _old_layout(TrainConfig.from_dict(header["config"]))
    assert header["config"]["method"] == "eg3d-posereg" and header["config"]["posereg"]["norm"] == "l1"
    save_file(load_file(str(ckpt)), str(ckpt), metadata={"gan3dkit": json.dumps(header)})
    G, cfg = load_generator(ckpt)
    assert cfg.method_name == "eg3d-posereg" and cfg.method.posereg.norm == "l1"
    res = CliRunner().invoke(app, [*args, "--max-steps", "2"])  # the same settings: resumes, no refusal
    assert res.exit_code == 0, res.output
    assert read_header(ckpt)["progress"]["step"] == 2
    assert read_header(ckpt)["config"]["method"]["posereg"]["norm"] == "l1"
    assert isinstance(G, torch.nn.Module)
