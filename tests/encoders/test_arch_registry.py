"""A new encoder is one module: an arch registered from this file alone distils through the CLI and encodes."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import load_file
from torch import Tensor, nn
from typer.testing import CliRunner

from gan3dkit.cli.main import app
from gan3dkit.encoders.base import EncoderOutput
from gan3dkit.encoders.encode import to_tensor
from gan3dkit.encoders.models import load_encoder
from gan3dkit.encoders.registry import ARCHS, ArchSpec, get_arch, register_arch, unregister_arch
from gan3dkit.train.checkpoint import load_tensors, read_header

runner = CliRunner()
CHEAP = ["--set", "optim.batch=2", "--set", "run.tick_steps=1", "--set", "run.snapshot_ticks=1",
         "--set", "run.val_samples=2", "--set", "run.cpu_threads=1"]


# ------------------------------------------------------------------------------------- a throwaway arch
@dataclass
class MiniConfig:
    """Its own config class: what every lp3d-family encoder declares, plus its own width."""

    input_resolution: int = 32
    triplane_resolution: int = 32
    triplane_channels: int = 8
    width: int = 12
    pose_head: bool = False


class MiniEncoder(nn.Module):
    """Two strided convs and a head: image [B, 3, H, W] -> planes [B, 3, C, R, R] (no ViT stages)."""

    def __init__(self, cfg: MiniConfig) -> None:
        super().__init__()
        self.cfg, w, c = cfg, cfg.width, 3 * cfg.triplane_channels
        self.body = nn.Sequential(nn.Conv2d(3, w, 3, 2, 1), nn.LeakyReLU(0.2), nn.Conv2d(w, w, 3, 1, 1),
                                  nn.LeakyReLU(0.2), nn.Conv2d(w, c, 1))

    def transformer_parameters(self) -> list[nn.Parameter]:
        return []

    def forward(self, image: Tensor, camera: object = None) -> EncoderOutput:
        cfg, r = self.cfg, self.cfg.triplane_resolution
        x = F.interpolate(image, size=(cfg.input_resolution,) * 2, mode="bilinear", align_corners=False)
        planes = F.interpolate(self.body(x), size=(r, r), mode="bilinear", align_corners=False)
        return EncoderOutput(planes.view(len(image), 3, cfg.triplane_channels, r, r))


def mini_config(G, size: str) -> MiniConfig:
    gc = G.config
    return MiniConfig(gc.img_resolution, gc.triplane_resolution, gc.triplane_channels, 12 if size == "tiny" else 64)


def mini_backbone(encoder: MiniEncoder, source: str | None) -> str:
    """Its own pretrained-backbone loader (no ResNet34 to load into): this one refuses, naming what it was given."""
    raise ValueError(f"mini-test has no pretrained backbone (asked for {source})")


MINI = ArchSpec("mini-test", "lp3d", MiniConfig, "a throwaway conv encoder trained with LP3D's objective",
                mini_config, lambda cfg, G: MiniEncoder(cfg), load_backbone=mini_backbone)


@pytest.fixture
def mini():
    register_arch(MINI)
    yield MINI
    unregister_arch(MINI.name)


def test_an_arch_registered_here_distils_through_the_cli_and_encodes(mini, micro_gen, tmp_path):
    out = tmp_path / "enc"
    res = runner.invoke(app, ["distill-encoder", "--arch", mini.name, "--ckpt", str(micro_gen), "--out", str(out),
                              "--preset", "tiny", "--random-init", "--steps", "2", *CHEAP, "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout[res.stdout.index("{"):])["steps"] == 2
    ckpt = out / "checkpoint.safetensors"
    header = read_header(ckpt)
    assert header["config"]["arch"] == mini.name and header["extra"]["arch"] == mini.name
    assert header["config"]["model"] == asdict(MiniConfig(32, 32, 8, 12))  # its own config, from its make_config
    ticks = [json.loads(line) for line in (out / "stats.jsonl").read_text().splitlines()]
    assert ticks[-1]["step"] == 2 and np.isfinite(ticks[-1]["Loss/E"]) and "val/psnr_input" in ticks[-1]
    # trained: the saved weights left the seed's initial ones (the student is built after manual_seed(run.seed))
    torch.manual_seed(0)
    init = MiniEncoder(MiniConfig(32, 32, 8, 12)).state_dict()
    saved = {k[2:]: v for k, v in load_tensors(str(ckpt)).items() if k.startswith("E.")}
    assert saved.keys() == init.keys() and any(not torch.equal(saved[k], init[k]) for k in init)

    # encode with the result: its tri-plane is the loaded encoder's output on the same image
    img = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    Image.fromarray(img).save(tmp_path / "face.png")
    res = runner.invoke(app, ["encode", str(tmp_path / "face.png"), "--ckpt", str(ckpt), "--out",
                              str(tmp_path / "o"), "--outputs", "triplane,reconstruction", "--json"])
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    assert report["encoder"] == mini.name and report["camera"] == "frontal"
    student, cfg, _ = load_encoder(ckpt)
    assert isinstance(student.encoder, MiniEncoder) and cfg.arch == mini.name
    assert all(torch.equal(v, saved[k]) for k, v in student.encoder.state_dict().items())
    with torch.no_grad():
        direct = student.encode(to_tensor(img, 32, torch.device("cpu"))).planes
    written = load_file(report["items"][0]["triplane"])["planes"]
    assert written.shape == (1, 3, 8, 32, 32) and torch.allclose(written, direct, atol=1e-6)

    # without the registration the checkpoint names its arch in a one-line refusal
    unregister_arch(mini.name)
    res = runner.invoke(app, ["encode", str(tmp_path / "face.png"), "--ckpt", str(ckpt), "--out", str(tmp_path / "p")])
    assert res.exit_code != 0 and f"unknown encoder arch {mini.name!r}" in res.output
    register_arch(mini)  # for the fixture's teardown


def test_duplicate_and_unknown_archs_are_refused(mini, micro_gen, tmp_path):
    assert get_arch(mini.name) is mini
    with pytest.raises(ValueError, match="already registered"):
        register_arch(mini)
    for taken in ("lp3d", "ko-pose"):
        with pytest.raises(ValueError, match=f"'{taken}' is already registered"):
            register_arch(ArchSpec(taken, "lp3d", MiniConfig, "", mini_config, lambda cfg, G: MiniEncoder(cfg)))
    with pytest.raises(ValueError, match="unknown family 'gaussians'.*lp3d, triplanenet"):
        register_arch(ArchSpec("splat", "gaussians", MiniConfig, "", mini_config, lambda cfg, G: MiniEncoder(cfg)))
    assert "splat" not in ARCHS
    res = runner.invoke(app, ["distill-encoder", "--arch", "nope", "--ckpt", str(micro_gen), "--out",
                              str(tmp_path / "x"), "--preset", "tiny", "--random-init"])
    assert res.exit_code == 2 and len(res.output.strip().splitlines()) == 1, res.output
    assert "unknown --arch 'nope'" in res.output and all(n in res.output for n in (mini.name, "lp3d-lt", "ko-pose"))
    assert not (tmp_path / "x").exists()


def test_a_run_without_random_init_loads_the_backbone_with_the_archs_own_loader(mini, micro_gen, tmp_path):
    res = runner.invoke(app, ["distill-encoder", "--arch", mini.name, "--ckpt", str(micro_gen), "--out",
                              str(tmp_path / "y"), "--preset", "tiny", "--backbone-weights", "mine.pth", "--steps", "1",
                              *CHEAP])
    assert res.exit_code == 2 and "mini-test has no pretrained backbone (asked for mine.pth)" in res.output, res.output
