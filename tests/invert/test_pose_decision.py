"""Whether an inversion optimises the camera is decided in one place (invert.config.pose_mode): the table below is
seed 002's (Alg. 1 alternating, Alg. 2 fixed, Alg. 3 joint) plus PTI's projector with or without --pose-opt."""

from __future__ import annotations

import pytest

from gan3dkit.invert import InvertConfig, preset
from gan3dkit.invert.config import pose_mode
from gan3dkit.invert.entry import InvertOptions, default_method, invert_config

TABLE = [
    ("w", 1, False, "fixed"), ("w", 1, True, "joint"), ("wplus", 1, True, "joint"), ("pti", 1, False, "fixed"),
    ("pti", 1, True, "joint"), ("ko", 1, False, "alternating"), ("ko", 1, True, "alternating"),
    ("ko", 2, False, "fixed"), ("ko", 3, False, "joint"), ("ko", 3, True, "joint"),
]


@pytest.mark.parametrize("method,algorithm,pose_opt,mode", TABLE)
def test_the_one_decision(method, algorithm, pose_opt, mode):
    assert pose_mode(method, algorithm, pose_opt) == mode
    cfg = preset(method, algorithm)
    cfg.pose_opt = pose_opt
    assert cfg.pose_mode == mode and cfg.optimizes_pose == (mode != "fixed")


def test_pose_opt_contradicts_algorithm_2_wherever_it_is_asked():
    with pytest.raises(ValueError, match="--pose-opt contradicts --algorithm 2"):
        pose_mode("ko", 2, True)
    with pytest.raises(ValueError, match="--pose-opt contradicts --algorithm 2"):
        InvertConfig(method="ko", algorithm=2, pose_opt=True).validate()


def test_the_command_default_follows_the_pose_request(tmp_path):
    assert default_method(True) == "ko" and default_method(False) == "pti"
    cfg = invert_config(InvertOptions(source=tmp_path / "x.png", ckpt=tmp_path / "G.safetensors", pose_opt=True))
    assert cfg.method == "ko" and cfg.pose_mode == "alternating"
    cfg = invert_config(InvertOptions(source=tmp_path / "x.png", ckpt=tmp_path / "G.safetensors", steps=16))
    assert cfg.method == "pti" and cfg.pose_mode == "fixed" and cfg.projector.steps == 16
