"""Probes reach their stated accuracy on held-out synthetic truth; files round-trip; missing labels fail clearly."""

from __future__ import annotations

import pytest
import torch

from gan3dkit.data import DatasetReader
from gan3dkit.metrics.probes import ProbeConfig, evaluate_probe, load_probe, train_probe
from gan3dkit.metrics.sampling import iter_real


def _heldout_truth(probe, data):
    reader = DatasetReader(data)
    batch = next(iter_real(reader, ("image", "ypr", "depth", "mask"), batch=len(reader)))
    held = probe.data["heldout_indices"]
    return {k: v[held] for k, v in batch.items()}, batch


def test_pose_probe_heldout_accuracy(probes, heads_probe_data):
    path, info = probes["pose"]
    acc = info["heldout"]
    truth, _ = _heldout_truth(load_probe(path), heads_probe_data)
    yaw, pitch = truth["ypr"][:, 0], truth["ypr"][:, 1]
    trivial_yaw = float(torch.rad2deg((yaw - yaw.median()).abs()).mean())  # best constant predictor (L1)
    trivial_pitch = float(torch.rad2deg((pitch - pitch.median()).abs()).mean())
    assert acc["count"] >= 40 and trivial_yaw > 10.0
    # stated accuracy of the 400-step 32^2 test probe: yaw < 6.5 deg and < 0.45x trivial, pitch < 0.8x trivial
    assert acc["yaw_mae_deg"] < min(6.5, 0.45 * trivial_yaw)
    assert acc["pitch_mae_deg"] < 0.8 * trivial_pitch and acc["geodesic_deg"] < 8.0
    probe = load_probe(path)
    assert probe.heldout == pytest.approx(acc) and probe.config.target == "pose"


def test_depth_probe_heldout_accuracy(probes, heads_probe_data):
    path, info = probes["depth"]
    acc = info["heldout"]
    truth, _ = _heldout_truth(load_probe(path), heads_probe_data)
    valid = (truth["mask"] > 127) & torch.isfinite(truth["depth"])
    fg = truth["depth"][valid]
    trivial_l1 = float((fg - fg.median()).abs().mean())  # a flat map at the median depth (after scale/shift: ~this)
    # stated accuracy of the 400-step test probe: mask IoU > 0.9, SI-L1 < 0.025 world units and < 0.5x a flat map
    assert acc["mask_iou"] > 0.9 and acc["si_l1"] < min(0.025, 0.5 * trivial_l1)
    assert acc["si_rmse"] < 0.035 and acc["nmse"] < 0.2


def test_probe_file_round_trip_and_recomputed_accuracy(probes, heads_probe_data):
    path, info = probes["pose"]
    probe = load_probe(path)
    truth, batch = _heldout_truth(probe, heads_probe_data)
    again = evaluate_probe(probe, truth["image"], {"ypr": truth["ypr"]})
    assert again["yaw_mae_deg"] == pytest.approx(info["heldout"]["yaw_mae_deg"], rel=1e-4)
    held = set(probe.data["heldout_indices"])
    train = [i for i in range(len(batch["image"])) if i not in held][:64]
    on_train = evaluate_probe(probe, batch["image"][train], {"ypr": batch["ypr"][train]})
    assert on_train["yaw_mae_deg"] < 2 * info["heldout"]["yaw_mae_deg"] + 1.0  # not an accident of the split
    depth, mask = load_probe(probes["depth"][0]).predict_depth(batch["image"][:4])
    assert depth.shape == mask.shape == (4, 1, 32, 32) and mask.dtype == torch.bool


def test_probe_needs_true_labels(dataset_factory):
    path, _ = dataset_factory(n=8, fields=("image", "camera"))
    with pytest.raises(ValueError, match="true labels"):
        train_probe(path, ProbeConfig(target="depth", steps=1))
    with pytest.raises(ValueError, match="pose"):
        train_probe(path, ProbeConfig(target="normals", steps=1))
