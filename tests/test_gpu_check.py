"""tools/gpu_check.py: the dry run executes every stage on the CPU; limits, budget and crashes are reported."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

TOOL = Path(__file__).resolve().parents[1] / "tools" / "gpu_check.py"


def _tool():
    spec = importlib.util.spec_from_file_location("gpu_check", TOOL)
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = module
    spec.loader.exec_module(module)
    return module


def test_every_stage_has_a_runner_and_both_sizes():
    tool = _tool()
    assert [s[0] for s in tool.STAGES] == list(tool.STAGE_FNS)
    assert tool.SIZES["gpu"]["preset"] == "ffhq512" and tool.SIZES["gpu"]["nrr"] == 128
    assert tool.SIZES["gpu"]["samples"] == (48, 48) and tool.SIZES["gpu"]["batches"] == (1, 8)
    assert tool.SIZES["gpu"]["ko_steps"] == (400, 400) and tool.SIZES["gpu"]["train_minutes"] == 2.0
    assert sum(cap for _, cap, _ in tool.STAGES) < 900  # caps; the 570 s budget bounds the sum that runs


def test_a_crashing_or_slow_stage_is_reported_and_the_run_goes_on(tmp_path):
    tool = _tool()
    crashed = tool.run_stage("no_such_stage", True, 60, tmp_path)
    assert crashed["ok"] is False and "KeyError" in crashed["error"]
    slow = tool.run_stage("selfcheck", True, 0.5, tmp_path)
    assert slow["ok"] is False and "timed out" in slow["error"]


def test_the_budget_skips_what_cannot_fit(tmp_path, capsys):
    tool = _tool()
    code = tool.main(["--dry-run", "--out", str(tmp_path), "--budget", "5", "--stages", "render,train"])
    assert code == 1
    report = json.loads((tmp_path / "gpu_check_dry_run.json").read_text())
    assert all(r["error"].startswith("skipped:") for r in report["stages"].values())
    assert "DRY RUN" in (tmp_path / "gpu_check_dry_run.md").read_text()


def test_without_cuda_the_real_run_refuses_and_says_how(tmp_path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert _tool().main(["--out", str(tmp_path)]) == 2
    assert "--dry-run" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


@pytest.mark.slow
def test_dry_run_executes_every_stage_end_to_end(tmp_path):
    """About 1.5 min on 2 cores: build (cached), self-check, GPU tests (skipping), render, training step,
    encoders, Ko inversion and a short training run, each in its own process, at tiny sizes on the CPU."""
    tool = _tool()
    assert tool.main(["--dry-run", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "gpu_check_dry_run.json").read_text())
    assert report["environment"]["dry_run"] is True
    stages = report["stages"]
    assert list(stages) == [s[0] for s in tool.STAGES] and all(r["ok"] for r in stages.values()), stages
    assert {r["op"] for r in stages["selfcheck"]["rows"]} == {"bias_act", "upfirdn2d", "triplane_decode",
                                                               "mip_ray_march", "sample_pdf"}
    assert all(row["mean_abs_diff_image"] < 1e-3 for row in stages["render"]["rows"])
    assert set(stages["train_step"]["phase_ms"]) == {"Gmain", "Greg", "Dmain", "Dreg"}
    assert {r["arch"] for r in stages["encoders"]["rows"]} == {"lp3d", "triplanenet-v2"}
    assert stages["ko_inversion"]["seconds"] > 0
    assert stages["train"]["summary"]["steps"] >= 1
    for name in stages["train"]["images"]:
        assert (tmp_path / name).stat().st_size > 0
    text = (tmp_path / "gpu_check_dry_run.md").read_text()
    assert "## Self-check" in text and "## Training step" in text and "## Ko et al. inversion" in text
