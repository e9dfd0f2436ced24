"""The perceptual loss follows the papers: pretrained by default, an error naming `gan3dkit weights add` when the
backbone is missing, never a silent fallback; pixel L2 and a random backbone only when asked for (issue 21)."""

from __future__ import annotations

import pytest

from gan3dkit.invert import losses
from gan3dkit.metrics.weights import WeightsUnavailable


def _missing(*args, **kwargs):
    raise WeightsUnavailable("vgg16 (torchvision, ImageNet) weights are not available: no file. Options: ...")


@pytest.mark.parametrize("choice,net", [("auto", "vgg"), ("auto", "alex"), ("vgg-lpips", "vgg")])
def test_missing_backbone_is_a_one_line_error(monkeypatch, choice, net):
    monkeypatch.setattr(losses, "LPIPS", _missing)
    with pytest.raises(WeightsUnavailable) as err:
        losses.build_perceptual(choice, net)
    msg = str(err.value)
    assert "\n" not in msg and "`gan3dkit weights add FILE`" in msg and "Options" not in msg
    assert "none (pixel L2)" in msg and "random-vgg-lpips" in msg


def test_explicit_choices_say_what_they_are(monkeypatch):
    monkeypatch.setattr(losses, "LPIPS", _missing)
    none = losses.build_perceptual("none", "vgg")
    assert not none.available and none.info.to_dict() == {"name": "none (pixel L2 only)", "calibrated": False,
                                                           "note": "requested"}
    monkeypatch.undo()
    rnd = losses.build_perceptual("random-vgg-lpips", "vgg")
    assert rnd.available and not rnd.info.calibrated and "RANDOM" in rnd.info.note


def test_warp_features_need_vgg_or_an_explicit_rgb(monkeypatch):
    """Ko et al.'s warp loss compares VGG16 conv3_3 features: without the ImageNet file 'auto' is a one-line error
    naming `gan3dkit weights add` (it used to fall back to pixels silently); 'rgb' is only what was asked for."""
    from gan3dkit.invert import warp
    from gan3dkit.metrics.weights import WeightsUnavailable

    def missing(*_a, **_k):
        raise WeightsUnavailable("vgg16 (torchvision, ImageNet) weights are not available. Options: ...")

    monkeypatch.setattr(warp, "load_backbone", missing)
    for kind in ("auto", "vgg-conv3_3"):
        with pytest.raises(WeightsUnavailable) as info:
            warp.WarpFeatures(kind)
        msg = str(info.value)
        assert "\n" not in msg and "`gan3dkit weights add FILE`" in msg and "pose.warp_features=rgb" in msg
    rgb = warp.WarpFeatures("rgb")
    assert rgb.kind == "rgb" and "asked" not in rgb.note and "pose.warp_features=rgb" in rgb.note
    with pytest.raises(ValueError, match="auto, vgg-conv3_3 or rgb"):
        warp.WarpFeatures("vgg")
