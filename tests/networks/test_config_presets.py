"""Configs round-trip through JSON strictly; presets are fresh and carry EG3D's published constants."""

from __future__ import annotations

import json

import pytest

from gan3dkit.networks import (
    PRESETS,
    DiscriminatorConfig,
    GeneratorConfig,
    ModelPreset,
    SuperResConfig,
    get_preset,
)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_round_trip_through_json(name):
    preset = get_preset(name)
    assert isinstance(preset, ModelPreset) and preset.description
    data = json.loads(json.dumps(preset.to_dict()))
    again = ModelPreset.from_dict(data)
    assert again == preset
    assert GeneratorConfig.from_dict(data["generator"]) == preset.generator
    assert DiscriminatorConfig.from_dict(data["discriminator"]) == preset.discriminator
    assert isinstance(again.generator.rendering.avg_camera_pivot, tuple)


def test_from_dict_is_strict_and_fills_defaults():
    data = get_preset("tiny").generator.to_dict()
    data["rendering"]["not_a_field"] = 1
    with pytest.raises(ValueError, match="unknown keys.*not_a_field"):
        GeneratorConfig.from_dict(data)
    with pytest.raises(ValueError, match="unknown keys"):
        DiscriminatorConfig.from_dict({"img_resolution": 64, "dual_mode": True})
    partial = GeneratorConfig.from_dict({"img_resolution": 256, "superres": {"kind": "4x"}})
    assert partial.img_resolution == 256 and partial.superres.kind == "4x" and partial.triplane_channels == 32


def test_invalid_values_raise():
    with pytest.raises(ValueError, match="kind"):
        SuperResConfig(kind="16x")
    with pytest.raises(ValueError, match="power of 2"):
        GeneratorConfig(img_resolution=500)
    with pytest.raises(KeyError, match="available presets: afhq512, ffhq256, ffhq512, shapenet128, tiny"):
        get_preset("ffhq1024")


def test_presets_are_fresh_objects():
    a, b = get_preset("ffhq512"), get_preset("ffhq512")
    a.generator.rendering.depth_resolution = 7
    assert b.generator.rendering.depth_resolution == 48


def test_ffhq512_matches_eg3d():
    p = get_preset("ffhq512")
    g, r, d = p.generator, p.generator.rendering, p.discriminator
    assert (r.depth_resolution, r.depth_resolution_importance) == (48, 48)
    assert (r.ray_start, r.ray_end, r.box_warp, r.white_back) == (2.25, 3.3, 1.0, False)
    assert (r.avg_camera_radius, r.avg_camera_pivot, r.focal) == (2.7, (0.0, 0.0, 0.2), 4.2647)
    assert r.plane_axes == "eg3d" and r.clamp_mode == "softplus" and not r.disparity_space_sampling
    assert (r.decoder_hidden_dim, r.decoder_output_dim, r.decoder_lr_mul) == (64, 32, 1.0)
    assert (g.triplane_resolution, g.triplane_channels, g.img_resolution, g.neural_rendering_resolution) == (
        256,
        32,
        512,
        64,
    )
    assert g.superres.kind == "8xdc" and g.superres.block_channels == (256, 128) and g.superres.noise_mode == "none"
    assert g.superres.num_fp16_res == 4 and g.num_fp16_res == 0 and g.synthesis.conv_clamp is None
    assert (g.mapping.z_dim, g.mapping.c_dim, g.mapping.w_dim, g.mapping.num_layers) == (512, 25, 512, 2)
    assert (g.mapping.lr_multiplier, g.mapping.w_avg_beta) == (0.01, 0.998)
    assert not g.c_gen_conditioning_zero  # released FFHQ models use --gen_pose_cond=True
    assert (d.channel_base, d.channel_max, d.num_fp16_res, d.conv_clamp, d.mbstd_group_size) == (32768, 512, 4, 256, 4)
    assert d.dual and d.c_dim == 25 and d.resolved_cmap_dim == 512 and d.mapping_layers == 8


def test_other_presets_match_eg3d():
    s = get_preset("shapenet128")
    r = s.generator.rendering
    assert (r.depth_resolution, r.depth_resolution_importance, r.box_warp, r.white_back) == (64, 64, 1.6, True)
    assert (r.ray_start, r.ray_end, r.avg_camera_radius, r.avg_camera_pivot, r.focal) == (
        0.1,
        2.6,
        1.7,
        (0.0, 0.0, 0.0),
        1.7074,
    )
    assert s.generator.superres.kind == "2x" and s.generator.img_resolution == 128
    assert s.generator.c_gen_conditioning_zero  # no pose conditioning in the published ShapeNet run
    assert get_preset("ffhq256").generator.superres.kind == "4x"
    assert get_preset("afhq512").generator.rendering.avg_camera_pivot == (0.0, 0.0, -0.06)
    tiny = get_preset("tiny").generator
    assert tiny.img_resolution == 64 and tiny.superres.kind == "2x"
