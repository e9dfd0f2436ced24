"""A new metric is one module: a module built in this file alone is registered and `gan3dkit evaluate` reports it."""

from __future__ import annotations

import json
import types

import pytest
import torch
from typer.testing import CliRunner

from gan3dkit.cli.main import app
from gan3dkit.data import DatasetReader
from gan3dkit.generate.loading import load_generator
from gan3dkit.metrics import MetricResult, list_metrics, metric, parse_metrics, register_metrics, unregister_metrics
from gan3dkit.metrics.catalog import extractors
from gan3dkit.metrics.context import EvalContext, Extractor, extractor
from gan3dkit.metrics.sampling import draw_poses, render_fakes
from gan3dkit.train.checkpoint import read_header

runner = CliRunner()


# ------------------------------------------------------------------------------------- a throwaway metric module
@extractor("toy:mean")
def _mean_pixel(ctx: EvalContext) -> Extractor:
    return lambda b: {"v": b["image"].double().mean(dim=(1, 2, 3))}


@metric("mean_pixel", "toy", 8, "mean uint8 pixel value of the fakes", needs=("toy:mean",))
def mean_pixel(ctx: EvalContext) -> MetricResult:
    v = ctx.fake_out("toy:mean", ctx.num_for(8))["v"]
    return MetricResult("mean_pixel", float(v.mean()), len(v), "none", f"mean of uint8 RGB; {ctx.fakes_protocol()}")


def toy_module(name: str = "toy_metrics") -> types.ModuleType:
    module = types.ModuleType(name)
    module.METRICS, module.EXTRACTORS = (mean_pixel,), (_mean_pixel,)
    return module


@pytest.fixture
def toy():
    module = register_metrics(toy_module())
    yield module
    unregister_metrics(module)


def test_a_registered_metric_is_evaluated_through_the_cli(toy, tiny_ckpt, heads16):
    assert list_metrics()[-1] == "mean_pixel" and "toy:mean" in extractors()
    res = runner.invoke(app, ["evaluate", "--ckpt", str(tiny_ckpt), "--data", str(heads16), "--metrics", "mean_pixel",
                              "--num", "6", "--seed", "3", "--threads", "1", "--no-record", "--json"])
    assert res.exit_code == 0, res.output
    (result,) = json.loads(res.stdout)["results"]
    assert result["metric"] == "mean_pixel" and result["num_samples"] == 6 and "seed 3" in result["protocol"]
    # the same number computed here: EG3D's protocol (dataset poses with mirrors, seed 3, batch 4, the run's NRR)
    G, _ = load_generator(tiny_ckpt)
    nrr = int(read_header(tiny_ckpt)["progress"]["nrr"])
    cams = draw_poses("dataset", 6, 3, DatasetReader(heads16), mirror=True)
    images = render_fakes(G, cams, 3, nrr, batch=4, keep=("image",))["image"]
    assert images.dtype == torch.uint8 and images.shape[0] == 6
    assert result["value"] == pytest.approx(images.double().mean().item(), rel=1e-9)
    assert 0 < result["value"] < 255
    # `all` includes it; the table output prints it too
    assert parse_metrics("all")[-1] == "mean_pixel"
    res = runner.invoke(app, ["evaluate", "--ckpt", str(tiny_ckpt), "--data", str(heads16), "--metrics", "mean_pixel",
                              "--num", "6", "--seed", "3", "--threads", "1", "--no-record"])
    assert res.exit_code == 0 and "mean_pixel" in res.output, res.output


def test_duplicates_and_unregistered_metrics_are_refused(toy, heads16):
    with pytest.raises(ValueError, match="already registered"):
        register_metrics(toy)
    with pytest.raises(ValueError, match="'mean_pixel' is declared twice"):
        register_metrics(toy_module("again"))
    clash = types.ModuleType("clash")
    clash.METRICS, clash.EXTRACTORS = (metric("fid", "fid", 1, "another fid")(lambda ctx: None),), ()
    with pytest.raises(ValueError, match="'fid' is declared twice"):
        register_metrics(clash)
    with pytest.raises(ValueError, match="declares no EXTRACTORS"):
        register_metrics(types.SimpleNamespace(__name__="half", METRICS=()))
    assert list_metrics().count("mean_pixel") == 1 and "fid" in list_metrics()
    unregister_metrics(toy)
    assert "mean_pixel" not in list_metrics() and "toy:mean" not in extractors()
    res = runner.invoke(app, ["evaluate", "--data", str(heads16), "--metrics", "mean_pixel", "--no-record"])
    assert res.exit_code == 2 and len(res.output.strip().splitlines()) == 1, res.output
    assert "unknown metric 'mean_pixel'" in res.output and "depth_fid" in res.output
