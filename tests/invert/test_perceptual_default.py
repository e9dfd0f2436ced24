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
