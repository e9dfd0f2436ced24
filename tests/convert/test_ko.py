"""`convert ko-pose` / `convert e4e`: files in the release's layout (built here) convert to Ko encoder files whose
outputs equal the written networks; `invert --pose-encoder/--latent-encoder` runs on them; wrong files are refused."""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from gan3dkit.cli.main import app
from gan3dkit.convert.eg3d import ArchitectureMismatch
from gan3dkit.convert.ko import convert_e4e, convert_ko_pose
from gan3dkit.encoders.ko import KoDistillConfig, load_ko_encoder
from gan3dkit.encoders.ko_nets import KoLatentEncoder, KoPoseEstimator

from .encoder_files import randomize

torch.set_num_threads(1)
#: Parameters of the public networks (3DGAN-Inversion at 3cfebf9, counted by tools/parity_ko.py).
RELEASED = {"euler": 21_926_058, "quaternion": 21_926_316, "6d": 21_926_574, "e4e": 267_136_704}
TINY_E4E = {"irse_widths": (8, 12, 16, 24), "irse_units": (1, 2, 2, 1), "e4e_styles": 6}


def _pose_file(path, rep: str) -> KoPoseEstimator:
    torch.manual_seed(0)
    P = KoPoseEstimator(KoDistillConfig(representation=rep, width=8, blocks=(1, 2, 1, 1)), 2.7, 4.2647).eval()
    randomize(P)
    torch.save(P.state_dict(), path)  # the release: torch.save(resnet34(k).state_dict())
    return P


def _e4e_file(path, wrap: str = "module.encoder.") -> KoLatentEncoder:
    torch.manual_seed(0)
    E = KoLatentEncoder(KoDistillConfig(**TINY_E4E), 512).eval()
    randomize(E)
    torch.save({f"{wrap}{k}": v for k, v in E.encoder.state_dict().items()}, path)  # DataParallel(pSp2())
    return E


@pytest.mark.parametrize("rep", ["euler", "quaternion", "6d"])
def test_pose_estimator_converts_exactly(tmp_path, rep):
    P = _pose_file(tmp_path / "p.pt", rep)
    summary = convert_ko_pose(tmp_path / "p.pt", tmp_path / "P.safetensors")
    assert summary["representation"] == rep
    Q = load_ko_encoder(tmp_path / "P.safetensors")
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        assert torch.equal(P.raw(x), Q.raw(x))
        rot, pos = Q(x)
    assert torch.allclose(rot.transpose(1, 2) @ rot, torch.eye(3).expand(2, 3, 3), atol=1e-5)
    assert torch.allclose(pos.norm(dim=1), torch.full((2,), 2.7))  # looks at the origin from radius 2.7


def test_euler_matches_ko_formula():
    """Ko's euler2rot(pi/2 + a, pi/2 + b): origin (cos b sin a, -sin b, cos b cos a) * r, looking at the origin."""
    P = KoPoseEstimator(KoDistillConfig(representation="euler", width=8, blocks=(1, 1, 1, 1)), 2.7, 4.2647)
    a, b = torch.tensor([0.3, -0.2]), torch.tensor([0.1, 0.25])
    rot = P.rotation(torch.stack([a, b], 1))
    origin = -2.7 * rot[:, :, 2]
    want = 2.7 * torch.stack([b.cos() * a.sin(), -b.sin(), b.cos() * a.cos()], 1)
    assert torch.allclose(origin, want, atol=1e-5)


@pytest.mark.parametrize("wrap", ["module.encoder.", "encoder."])
def test_e4e_converts_exactly(tmp_path, wrap):
    E = _e4e_file(tmp_path / "e.pt", wrap)
    summary = convert_e4e(tmp_path / "e.pt", tmp_path / "E.safetensors")
    assert summary["styles"] == 6
    F = load_ko_encoder(tmp_path / "E.safetensors", with_w_avg=False)
    x = torch.rand(1, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        wp = F.wplus(x)
        assert torch.equal(E.wplus(x), wp)
    with torch.no_grad():  # e4e: w_0 broadcast plus one delta per later style
        for blk in F.encoder.styles[1:]:
            blk.linear.weight.zero_()
            blk.linear.bias.zero_()
        wp0 = F.wplus(x)
    assert torch.equal(wp0, wp0[:, :1].expand_as(wp0)) and torch.equal(wp0[:, 0], wp[:, 0])
    assert not torch.allclose(wp, wp[:, :1].expand_as(wp))
    with pytest.raises(ValueError, match="w_avg from the generator"):
        load_ko_encoder(tmp_path / "E.safetensors")


def test_wrong_files_are_refused(tmp_path):
    _pose_file(tmp_path / "p.pt", "quaternion")
    with pytest.raises(ArchitectureMismatch, match="not an e4e encoder|unexpected keys"):
        convert_e4e(tmp_path / "p.pt", tmp_path / "x.safetensors")
    _e4e_file(tmp_path / "e.pt")
    with pytest.raises(ArchitectureMismatch, match="not a Ko et al. pose estimator"):
        convert_ko_pose(tmp_path / "e.pt", tmp_path / "x.safetensors")
    sd = torch.load(tmp_path / "p.pt")
    sd.pop("layer2.0.downsample.1.running_var")
    sd["fc4.weight"] = torch.zeros(1)
    torch.save(sd, tmp_path / "q.pt")
    with pytest.raises(ArchitectureMismatch) as exc:
        convert_ko_pose(tmp_path / "q.pt", tmp_path / "x.safetensors")
    assert "missing from the file: layer2.0.downsample.1.running_var" in str(exc.value)
    assert "unexpected: fc4.weight" in str(exc.value)
    assert not (tmp_path / "x.safetensors").exists()


def test_parameter_counts_match_the_release():
    for rep in ("euler", "quaternion", "6d"):
        assert sum(p.numel() for p in KoPoseEstimator(KoDistillConfig(representation=rep), 2.7, 1).parameters()) \
            == RELEASED[rep]  # fmt: skip
    assert sum(p.numel() for p in KoLatentEncoder(KoDistillConfig(), 512).parameters()) == RELEASED["e4e"]


def test_cli_convert_then_invert_with_both(tmp_path):
    from gan3dkit.networks import TriPlaneGenerator
    from gan3dkit.train.checkpoint import save_checkpoint
    from gan3dkit.train.config import train_preset
    from gan3dkit.utils.config import apply_overrides

    cfg = apply_overrides(train_preset("tiny"), ["generator.img_resolution=32",
                                                 "generator.neural_rendering_resolution=16",
                                                 "generator.triplane_resolution=32", "discriminator.img_resolution=32"])
    torch.manual_seed(0)
    ckpt = save_checkpoint(tmp_path / "g.safetensors", {"G_ema": TriPlaneGenerator(cfg.generator).eval()}, {},
                           cfg.to_dict(), {"nrr": 16}, include_rng=False)  # fmt: skip
    _pose_file(tmp_path / "p.pt", "quaternion")
    E = KoLatentEncoder(KoDistillConfig(**TINY_E4E), cfg.generator.mapping.w_dim)
    torch.save({f"module.encoder.{k}": v for k, v in E.encoder.state_dict().items()}, tmp_path / "e.pt")
    runner = CliRunner()
    for kind, src, out in (("ko-pose", "p.pt", "P.safetensors"), ("e4e", "e.pt", "E.safetensors")):
        res = runner.invoke(app, ["convert", kind, str(tmp_path / src), "--out", str(tmp_path / out), "--json"])
        assert res.exit_code == 0, res.output
        assert json.loads(res.stdout[res.stdout.index("{") :])["arch"] in ("ko-pose", "ko-latent")
    Image.fromarray((torch.rand(32, 32, 3) * 255).byte().numpy()).save(tmp_path / "face.png")
    res = runner.invoke(app, ["invert", str(tmp_path / "face.png"), "--ckpt", str(ckpt), "--method", "ko",
                              "--pose-encoder", str(tmp_path / "P.safetensors"), "--latent-encoder",
                              str(tmp_path / "E.safetensors"), "--align", "never", "--steps", "2", "--tune-steps", "0",
                              "--outputs", "", "--set", "projector.w_avg_samples=16", "--out", str(tmp_path / "inv"),
                              "--perceptual", "none", "--set", "tune_perceptual=none",
                              "--set", "pose.warp_features=rgb", "--json"])  # fmt: skip
    assert res.exit_code == 0, res.output
    text = " ".join(p.read_text() for p in (tmp_path / "inv").rglob("metrics.json"))
    assert "camera initialised by the pose encoder P" in text and "w initialised by the latent encoder E" in text
