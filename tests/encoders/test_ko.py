"""Ko et al.'s P and E: pseudo-pair pre-training fits, checkpoints round-trip, `invert --method ko` uses them."""

from __future__ import annotations

import pytest
import torch
from encoder_helpers import ko_micro_ckpt as _micro_ckpt
from encoder_helpers import ko_small as _small

from gan3dkit.cameras import check_label
from gan3dkit.encoders.ko import load_ko_encoder, pseudo_pairs
from gan3dkit.encoders.ko_task import distill_ko

torch.set_num_threads(1)


def test_pseudo_pairs_are_deterministic_and_in_range(tmp_path):
    _, G = _micro_ckpt(tmp_path, False)
    cfg = _small(max_roll=0.2)
    a, b = pseudo_pairs(G, cfg, [0, 3]), pseudo_pairs(G, cfg, [3])
    assert torch.equal(a["camera"][1:], b["camera"]) and torch.allclose(a["image"][1:], b["image"], atol=1e-3)
    from gan3dkit.cameras import cam2world_to_ypr
    from gan3dkit.cameras.camera import Cameras

    ypr = cam2world_to_ypr(Cameras.from_label(a["camera"]).cam2world)
    assert (ypr[:, 0].abs() <= 0.1 * torch.pi + 1e-4).all() and (ypr[:, 2].abs() <= 0.1 * torch.pi + 1e-4).all()


@pytest.mark.parametrize("rep", ["quaternion", "6d"])
def test_pose_estimator_fits_pseudo_pairs(tmp_path, rep):
    ckpt, G = _micro_ckpt(tmp_path, False)
    # 30 steps: the loss ratio was 0.36 at 12 steps, 0.13 at 20 and 0.07 at 30 on one CPU (it passed at 12 on
    # another), so the 0.3 bound keeps a wide margin
    steps = 30 if rep == "quaternion" else 2
    res = distill_ko("ko-pose", ckpt, tmp_path / "p", _small(steps=steps, representation=rep, max_roll=0.2))
    if rep == "quaternion":
        assert res["last"]["loss"] < 0.3 * res["first"]["loss"]
    P = load_ko_encoder(res["checkpoint"], G)
    pairs = pseudo_pairs(G, P.cfg, [0])
    lab = P.predict_label(pairs["image"], pairs["camera"])
    assert check_label(lab[0]) is None
    again = load_ko_encoder(res["checkpoint"], G).predict_label(pairs["image"], pairs["camera"])
    assert torch.equal(lab, again)


def test_latent_encoder_and_invert_with_encoders(tmp_path):
    from gan3dkit.invert import Extras, InvertItem, invert, preset
    from gan3dkit.invert.outputs import to_uint8

    ckpt, G = _micro_ckpt(tmp_path, True)
    res = distill_ko("ko-latent", ckpt, tmp_path / "e", _small(steps=3))
    assert "adv" in res["last"] and res["last"]["mse"] < res["first"]["mse"]
    assert any("LPIPS" in n for n in res["notes"]) or not res["notes"]
    E = load_ko_encoder(res["checkpoint"], G)
    P = load_ko_encoder(distill_ko("ko-pose", ckpt, tmp_path / "p", _small(steps=1))["checkpoint"], G)
    pairs = pseudo_pairs(G, E.cfg, [1])
    w = E.predict_w(pairs["image"])
    assert w.shape == (1, 1, G.w_dim) and torch.equal(E.w_avg, load_ko_encoder(res["checkpoint"]).w_avg)
    cfg = preset("ko", 1)
    cfg.perceptual = cfg.tune_perceptual = "none"
    cfg.pose.warp_features = "rgb"  # no ImageNet VGG16 offline: pixels asked for explicitly
    cfg.projector.steps, cfg.projector.w_avg_samples, cfg.pose.warmup_steps, cfg.tune.steps = 3, 16, 1, 1
    item = InvertItem("p", to_uint8(pairs["image"]), pairs["camera"][0].numpy(), "test")
    inv = invert(G, item, cfg, Extras(pose_encoder=P, latent_encoder=E))
    assert "camera initialised by the pose encoder P" in inv.report["notes"]
    assert any("latent encoder E" in n for n in inv.report["notes"])
    assert any("weights of P, fine-tuned" in n for n in inv.report["notes"])
    assert inv.report["pose_change"]["rotation_deg"] >= 0


def test_pretrained_backbone_is_required_unless_random_init(tmp_path, monkeypatch):
    import urllib.error

    import gan3dkit.metrics.weights as W
    from gan3dkit.encoders.ko_nets import KoPoseEstimator
    from gan3dkit.encoders.pretrained import load_ko_backbone

    monkeypatch.setenv("GAN3DKIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(W, "download", lambda *a, **k: (_ for _ in ()).throw(urllib.error.URLError("offline")))
    ckpt, _ = _micro_ckpt(tmp_path, False)
    with pytest.raises(FileNotFoundError, match="gan3dkit weights add"):
        distill_ko("ko-pose", ckpt, tmp_path / "p", _small(steps=1, random_init=False))
    # a torchvision-named ResNet file loads into P as is (fc2/fc3 keep their init)
    cfg = _small()
    src = KoPoseEstimator(cfg, 2.7, 4.2647)
    torch.save({k: v for k, v in src.state_dict().items() if not k.startswith(("fc2.", "fc3."))}, tmp_path / "r.pth")
    P = KoPoseEstimator(cfg, 2.7, 4.2647)
    assert load_ko_backbone(P, "ko-pose", tmp_path / "r.pth").endswith("tensors)")
    assert torch.equal(P.conv1.weight, src.conv1.weight) and torch.equal(P.layer4[0].bn2.running_var,
                                                                           src.layer4[0].bn2.running_var)
    # IR-SE-50 (model_ir_se50.pth layout: input_layer.*, body.*) into E's encoder
    from gan3dkit.encoders.ko_nets import KoLatentEncoder

    e_src = KoLatentEncoder(cfg, 32)
    irse = {k: v + 0.5 for k, v in e_src.encoder.state_dict().items() if k.startswith(("input_layer.", "body."))}
    torch.save(irse, tmp_path / "model_ir_se50.pth")
    E = KoLatentEncoder(cfg, 32)
    load_ko_backbone(E, "ko-latent", tmp_path / "model_ir_se50.pth")
    assert torch.equal(E.encoder.body[0].res_layer[1].weight, irse["body.0.res_layer.1.weight"])
