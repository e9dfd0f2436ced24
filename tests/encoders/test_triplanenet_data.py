"""TriPlaneNet as seed 004 trains it: photos with cameras, mirrored with their cameras, mixed with generator samples
at the photos' poses; losses at 256² (identity excepted); smooth-L1 in the second branch's mirror term too."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from encoder_helpers import micro_distill
from typer.testing import CliRunner

from gan3dkit.cameras.camera import Cameras
from gan3dkit.encoders.losses import symmetry_loss


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    from gan3dkit.prepare.synthetic import build_synthetic

    return build_synthetic(tmp_path_factory.mktemp("photos") / "p.lmdb", family="heads", num=6, resolution=32,
                           ssaa=1, resume=False)


def _mix(micro_gen, photos, real_fraction, mirror_prob):
    from gan3dkit.encoders.models import load_teacher
    from gan3dkit.encoders.realdata import RealMix

    teacher = load_teacher(micro_gen, torch.device("cpu"))
    return RealMix(photos, teacher, real_fraction, mirror_prob, torch.device("cpu"))


def test_real_images_come_with_their_cameras_and_mirror_together(micro_gen, photos):
    from gan3dkit.data.reader import LMDBDataset
    from gan3dkit.encoders.config import tiny_distill

    data = LMDBDataset(photos, fields=["image", "camera"])
    images = torch.stack([data[i]["image"] for i in range(len(data))]).float() / 127.5 - 1
    cams = data.cameras().float()
    run = tiny_distill("triplanenet-v2").run

    def match(x, c, flipped):
        for img, cam in zip(x, c, strict=False):
            i = int(((images - (img.flip(-1) if flipped else img)).abs().flatten(1).sum(1)).argmin())
            assert torch.allclose(img.flip(-1) if flipped else img, images[i], atol=1e-6)
            want = Cameras.from_label(cams[i:i + 1]).mirror().to_label()[0] if flipped else cams[i]
            assert torch.allclose(cam, want, atol=1e-5)  # a mirrored photo gets the mirrored camera

    torch.manual_seed(0)
    b = _mix(micro_gen, photos, 1.0, 0.0).sample(4, run, True)
    assert b["real"].all()
    match(b["ref"]["image"], b["c_ref"].to_label(), False)
    b = _mix(micro_gen, photos, 1.0, 1.0).sample(4, run, True)
    match(b["ref"]["image"], b["c_ref"].to_label(), True)
    assert b["ref"]["image_raw"].shape[-1] == 16
    # synthetic items: rendered at a photo's camera or its mirror
    b = _mix(micro_gen, photos, 0.5, 0.0).sample(4, run, True)
    assert b["real"].tolist() == [True, True, False, False]
    mirrored = Cameras.from_label(cams).mirror().to_label()
    for cam in b["c_ref"][2:].to_label():
        nearest = float((cams - cam).abs().max(1).values.min())
        assert min(nearest, float((mirrored - cam).abs().max(1).values.min())) < 1e-5


def test_triplanenet_step_reads_real_images_and_the_cli_passes_data(micro_gen, photos, tmp_path, monkeypatch):
    from gan3dkit.cli.main import app
    from gan3dkit.data.reader import DatasetReader
    from gan3dkit.encoders.distill import distill

    reads = {"n": 0}
    original = DatasetReader.read

    def counting(self, index, fields=None):
        reads["n"] += fields is not None and "image" in fields
        return original(self, index, fields)

    monkeypatch.setattr(DatasetReader, "read", counting)
    cfg = micro_distill("triplanenet-v2", micro_gen, tmp_path / "tpn", run__steps=2, triplanenet__offset_start=1)
    cfg.data = str(photos)
    distill(cfg, resume=False, device="cpu")
    recs = [json.loads(line) for line in (tmp_path / "tpn" / "stats.jsonl").read_text().splitlines()]
    assert reads["n"] >= 2 and recs[0]["Data/real"] == pytest.approx(0.5)
    res = CliRunner().invoke(app, ["distill-encoder", "--arch", "triplanenet-v2", "--ckpt", str(micro_gen), "--out",
                                   str(tmp_path / "c"), "--data", str(photos), "--preset", "tiny", "--print-config"])
    assert res.exit_code == 0 and json.loads(res.stdout[res.stdout.index("{"):])["data"] == str(photos)
    bad = micro_distill("lp3d-lt", micro_gen, tmp_path / "l", run__steps=1)
    bad.data = str(photos)
    with pytest.raises(ValueError, match="TriPlaneNet"):
        distill(bad, resume=False, device="cpu")


def test_losses_at_the_loss_resolution_and_smooth_l1_in_the_second_branch_mirror(micro_gen, tmp_path, monkeypatch):
    from gan3dkit.encoders import steps
    from gan3dkit.encoders.distill import DistillTask
    from gan3dkit.train.task import RunContext

    calls = []
    real = steps.symmetry_loss

    def spy(xm, ym, sigma, likelihood=False, smooth=False):
        calls.append((xm.shape[-1], smooth))
        return real(xm, ym, sigma, likelihood, smooth)

    monkeypatch.setattr(steps, "symmetry_loss", spy)
    cfg = micro_distill("triplanenet-v2", micro_gen, tmp_path / "r", run__steps=1, triplanenet__offset_start=0,
                        triplanenet__loss_resolution=16)
    d = DistillTask(cfg, RunContext.single(cfg.out))
    sizes = []
    lp = d.student.lpips.forward
    monkeypatch.setattr(d.student.lpips, "forward", lambda a, b: (sizes.append(a.shape[-1]), lp(a, b))[1])
    d.stepper.step(0, 2, 1)
    assert calls == [(16, False), (16, True)]  # first branch l2, second branch smooth-L1, both at 16²
    assert set(sizes) == {16}


def test_smooth_symmetry_loss_values():
    x, y = torch.zeros(1, 3, 4, 4), torch.full((1, 3, 4, 4), 2.0)
    assert symmetry_loss(x, y, None) == pytest.approx(12.0)  # l2 summed over channels
    assert symmetry_loss(x, y, None, smooth=True) == pytest.approx(3 * 1.5)  # smooth-L1(2) = 1.5 per channel
    sigma = torch.full((1, 1, 4, 4), 2.0)
    assert symmetry_loss(x, y, sigma, smooth=True) == pytest.approx(
        (F.smooth_l1_loss(y, x, reduction="none").sum(1, keepdim=True) / sigma).mean().item())
