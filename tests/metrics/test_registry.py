"""The metric registry: names, validation errors, duplicate registration, JSON-safe results."""

from __future__ import annotations

import json
import math

import pytest

from gan3dkit.metrics import MetricResult, get_metric, list_metrics, parse_metrics, register_metric

EXPECTED = ["fid", "kid", "pr", "psnr", "ssim", "ms_ssim", "mse", "lpips", "dists", "id", "depth", "pose", "pose_js",
            "nfs", "depth_fid"]


def test_every_issue_metric_is_registered_with_a_paper_default():
    assert list_metrics() == EXPECTED
    assert get_metric("fid").default_num == 50000 and get_metric("nfs").default_num == 256
    assert {get_metric(m).group for m in EXPECTED} == {"fid", "reconstruction", "identity", "geometry"}


def test_parse_metrics_validates_and_lists_valid_names():
    assert parse_metrics("fid, kid,fid") == ["fid", "kid"]
    assert parse_metrics("all") == EXPECTED
    with pytest.raises(ValueError) as info:
        parse_metrics("fid,fdi")
    assert "fdi" in str(info.value) and "depth_fid" in str(info.value)
    with pytest.raises(ValueError):
        parse_metrics(" , ")


def test_duplicate_registration_is_an_error():
    with pytest.raises(ValueError, match="already registered"):
        register_metric("fid", "fid", 1, "again")(lambda ctx: None)


def test_result_to_dict_is_strict_json():
    r = MetricResult("x", math.nan, 3, "none", "p", extras={"a": math.inf, "b": [1.0, math.nan], "c": {"d": 2.0}})
    d = r.to_dict()
    assert d["value"] is None and d["extras"] == {"a": None, "b": [1.0, None], "c": {"d": 2.0}}
    json.loads(json.dumps(d, allow_nan=False))
