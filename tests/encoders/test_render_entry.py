"""One way to render given tri-planes: G.synthesis, the encoders' renderers and edit's plane path agree bit for bit."""

from __future__ import annotations

from types import SimpleNamespace

import torch
from encoder_helpers import MICRO_G
from torch import nn

from gan3dkit.cameras import Cameras
from gan3dkit.edit.pictures import render as edit_render
from gan3dkit.encoders.base import EncoderOutput
from gan3dkit.encoders.models import Student
from gan3dkit.encoders.render import PlaneRenderer
from gan3dkit.generate.views import view_cameras
from gan3dkit.networks import TriPlaneGenerator
from gan3dkit.train.config import train_preset
from gan3dkit.utils.config import apply_overrides

KEYS = ("image", "image_raw", "image_depth", "feature_image")


def _setup():
    cfg = apply_overrides(train_preset("tiny"), MICRO_G)
    torch.manual_seed(0)
    G = TriPlaneGenerator(cfg.generator).eval().requires_grad_(False)
    cams = view_cameras(G, [-0.3, 0.25], 0.1, "cpu").to_label()
    ws = G.mapping(torch.randn(2, G.z_dim), cams)
    return G, cams, ws


def _same(a: dict, b: dict) -> None:
    for key in KEYS:
        assert torch.equal(a[key], b[key]), key


def test_synthesis_is_the_backbone_then_render_planes():
    G, cams, ws = _setup()
    with torch.no_grad():
        ref = G.synthesis(ws, cams, noise_mode="const", deterministic_render=True)
        planes = G.synthesize_planes(ws, noise_mode="const")
        assert torch.equal(ref["planes"], planes)
        _same(G.render_planes(planes, cams, ws, deterministic_render=True), ref)
        _same(G.render_planes(planes, Cameras.from_label(cams), ws, deterministic_render=True), ref)  # typed
        _same(G.synthesis(ws, Cameras.from_label(cams), noise_mode="const", deterministic_render=True), ref)
        torch.manual_seed(3)  # stochastic: random noise and depth jitter are drawn in the same order
        rand = G.synthesis(ws, cams)
        torch.manual_seed(3)
        _same(G.render_planes(G.synthesize_planes(ws), cams, ws), rand)
    assert (rand["image"] - ref["image"]).abs().max() > 0  # the stochastic render really differs


def test_encoders_and_edit_render_like_synthesis():
    G, cams, ws = _setup()
    with torch.no_grad():
        ref = G.synthesis(ws, cams, noise_mode="const", deterministic_render=True)
        planes = ref["planes"]
        nrr = G.neural_rendering_resolution
        # the student's renderer: copies of G's decoder and SR, fed the same ws
        _same(PlaneRenderer(G, "learned")(planes, cams, nrr, ws=ws, deterministic=True), ref)
        # the teacher path of the encoders (no student renderer): G's own entry
        student = Student("lp3d", nn.Identity(), SimpleNamespace(G=G))  # type: ignore[arg-type]
        _same(student.render(EncoderOutput(planes=planes, ws=ws), cams, nrr), ref)
        # edit's pictures render given planes (the tri-plane-offset edit) through the same entry
        solo = G.synthesis(ws[:1].expand(2, -1, -1), cams, noise_mode="const", deterministic_render=True)
        one = edit_render(G, ws[:1], cams, nrr, planes=solo["planes"][:1])
    _same(one, solo)
