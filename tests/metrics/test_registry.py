"""The metric registry: names, validation errors, duplicate registration, JSON-safe results."""

from __future__ import annotations

import json
import math
import types

import pytest

from gan3dkit.metrics import MetricResult, get_metric, list_metrics, metric, parse_metrics
from gan3dkit.metrics.catalog import METRIC_MODULES, collect

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


def test_a_name_declared_twice_is_an_error():
    again = types.ModuleType("again")
    again.METRICS, again.EXTRACTORS = (metric("fid", "fid", 1, "again")(lambda ctx: None),), ()
    with pytest.raises(ValueError, match="'fid' is declared twice"):
        collect((*METRIC_MODULES, again))


def test_a_new_metric_module_is_collected_without_import_side_effects():
    """The catalog is explicit: a module declaring METRICS/EXTRACTORS adds its metric; nothing global changes."""
    extra = types.ModuleType("extra")
    extra.METRICS = (metric("answer", "geometry", 1, "a constant", needs=("inception",))(lambda ctx: 42),)
    extra.EXTRACTORS = ()
    metrics, extractors = collect((*METRIC_MODULES, extra))
    assert metrics["answer"].fn(None) == 42 and metrics["answer"].needs(None) == ("inception",)
    assert "inception" in extractors and "answer" not in list_metrics()


def test_result_to_dict_is_strict_json():
    r = MetricResult("x", math.nan, 3, "none", "p", extras={"a": math.inf, "b": [1.0, math.nan], "c": {"d": 2.0}})
    d = r.to_dict()
    assert d["value"] is None and d["extras"] == {"a": None, "b": [1.0, None], "c": {"d": 2.0}}
    json.loads(json.dumps(d, allow_nan=False))
