"""The training engine on a toy task: exact resume, NaN stop with the last good checkpoint, time limit, no litter."""

from __future__ import annotations

import json
import time

import pytest
import torch

from gan3dkit.train.checkpoint import NonFiniteStateError, load_tensors, read_header
from gan3dkit.train.engine import EngineSettings, run_task
from gan3dkit.train.task import RunContext, Schedule, Task, TrainingDiverged
from gan3dkit.utils import backends


class Toy(Task):
    """Noisy linear regression: the noise comes from the global torch RNG and a running counter is task state, so
    resume is only exact when the engine restores RNG streams, optimiser moments and the task's own state."""

    def __init__(self, ctx: RunContext, steps: int = 6, nan_at: int | None = None, poison_at: int | None = None,
                 sleep: float = 0.0, minutes: float | None = None, tick_steps: int = 1) -> None:
        self.net = torch.nn.Linear(4, 1)
        self.ctx, self.nan_at, self.poison_at, self.sleep = ctx, nan_at, poison_at, sleep
        self.counter = torch.zeros(1)
        self.seen_flags: list[tuple[bool, bool]] = []
        super().__init__(Schedule(batch=8, stops=(("steps", steps),), tick_steps=tick_steps, max_minutes=minutes),
                         {"net": self.net}, {"net": torch.optim.Adam(self.net.parameters(), lr=0.05)})

    def config(self):
        return {"toy": {"lr": 0.05}, "run": {"note": "may change"}}

    def start(self, step):
        self.data = torch.Generator().manual_seed(1000 + step)  # a position-addressed data stream

    def step(self, step):
        time.sleep(self.sleep)
        self.seen_flags.append((torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.benchmark))
        x = torch.randn(8, 4, generator=torch.Generator().manual_seed(step))
        y = x.sum(1, keepdim=True) + 0.1 * torch.randn(8, 1)  # global RNG: restored on resume
        loss = (self.net(x) - y).square().mean()
        self.optimizers["net"].zero_grad()
        loss.backward()
        self.optimizers["net"].step()
        self.counter += loss.detach()
        if step == self.poison_at:
            with torch.no_grad():
                self.net.weight[0, 0] = float("nan")
        return {"Loss/toy": float("nan") if step == self.nan_at else loss.item()}

    def state_tensors(self):
        return {"toy.counter": self.counter}

    def restore(self, ckpt, header):
        self.counter.copy_(load_tensors(ckpt, "toy")["counter"])

    def save_samples(self, run_dir, step):
        (run_dir / "samples").mkdir(exist_ok=True)
        (run_dir / "samples" / f"s{step}.txt").write_text(str(step))


def _run(out, resume=True, policy=None, **kw):
    box = {}

    def build(ctx):
        box["task"] = Toy(ctx, **kw)
        return box["task"]

    settings = EngineSettings(out=str(out), seed=3, resume=resume, device="cpu", cpu_threads=1,
                              policy=policy or backends.BackendPolicy())
    return run_task(build, settings), box["task"]


def _records(out):
    return [json.loads(line) for line in (out / "stats.jsonl").read_text().splitlines()]


def test_resume_is_bit_exact_and_logs_every_step_once(tmp_path):
    straight, _ = _run(tmp_path / "a", steps=6)
    first, _ = _run(tmp_path / "b", steps=3)
    assert first["steps"] == 3 and first["stopped"] == "steps"
    resumed, task = _run(tmp_path / "b", steps=6)
    assert resumed["steps"] == 6 and resumed["nimg"] == 48 and straight["stopped"] == "steps"
    a, b = (load_tensors(tmp_path / run / "checkpoint.safetensors") for run in ("a", "b"))
    assert set(a) == set(b) and any(k.startswith("opt.net.state") for k in a)
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert [r["Loss/toy"] for r in _records(tmp_path / "a")] == [r["Loss/toy"] for r in _records(tmp_path / "b")]
    assert [r["step"] for r in _records(tmp_path / "b")] == [1, 2, 3, 4, 5, 6]
    assert read_header(tmp_path / "b" / "checkpoint.safetensors")["progress"] == {"nimg": 48, "step": 6, "tick": 6}
    # a run that is already done trains nothing and rewrites nothing
    again, _ = _run(tmp_path / "b", steps=6)
    assert again["steps"] == 6 and len(_records(tmp_path / "b")) == 6


def test_resume_refuses_another_config_but_allows_the_resumable_sections(tmp_path):
    _run(tmp_path / "r", steps=1)

    class Other(Toy):
        def config(self):
            return {"toy": {"lr": 0.5}, "run": {}}

    with pytest.raises(ValueError, match=r"different settings in \['toy'\]"):
        run_task(lambda ctx: Other(ctx, steps=2), EngineSettings(out=str(tmp_path / "r"), device="cpu"))


def test_nan_stops_with_the_last_good_checkpoint_and_restores_the_callers_flags(tmp_path):
    before = (torch.get_num_threads(), torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.benchmark)
    with pytest.raises(TrainingDiverged, match=r"step 4 .*last good checkpoint is kept: .*checkpoint") as err:
        _run(tmp_path / "n", steps=10, nan_at=4, tick_steps=2,
             policy=backends.BackendPolicy(allow_tf32=not before[1], cudnn_benchmark=not before[2]))
    assert isinstance(err.value, RuntimeError) and err.value.exit_code == 1  # README: a run error exits 1
    assert read_header(tmp_path / "n" / "checkpoint.safetensors")["progress"]["step"] == 4  # before the NaN step
    assert (torch.get_num_threads(), torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.benchmark) == before
    # NaN weights with finite stats: the snapshot is refused and the previous checkpoint stays
    with pytest.raises(NonFiniteStateError):
        _run(tmp_path / "w", steps=10, poison_at=3, tick_steps=2)
    header = read_header(tmp_path / "w" / "checkpoint.safetensors")
    assert header["progress"]["step"] == 2
    assert all(torch.isfinite(t).all() for t in load_tensors(tmp_path / "w" / "checkpoint.safetensors", "net").values())
    assert not [p for p in (tmp_path / "w").rglob("*") if "tmp" in p.name]


def test_the_backend_policy_holds_only_while_the_task_steps(tmp_path):
    saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.benchmark)
    try:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.benchmark = False, False
        _, task = _run(tmp_path / "p", steps=2, policy=backends.BackendPolicy(allow_tf32=True, cudnn_benchmark=True))
        assert task.seen_flags == [(True, True), (True, True)]
        assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.benchmark) == (False, False)
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.benchmark = saved


def test_time_limit_writes_a_resumable_checkpoint_and_no_litter(tmp_path):
    out = tmp_path / "t"
    out.mkdir()
    stale = out / ".checkpoint.safetensors.999999999.ab12cd34.tmp"  # a write killed earlier (dead writer's pid)
    stale.write_bytes(b"\0" * 100)
    limited, _ = _run(out, steps=50, sleep=0.05, minutes=0.15 / 60, tick_steps=100)
    assert limited["stopped"] == "max_minutes" and 1 <= limited["steps"] < 50
    header = read_header(out / "checkpoint.safetensors")
    assert header["progress"]["step"] == limited["steps"]
    assert not stale.exists() and not [p for p in out.rglob("*") if "tmp" in p.name]
    done, _ = _run(out, steps=8)
    straight, _ = _run(tmp_path / "s", steps=8)
    assert done["steps"] == straight["steps"] == 8
    a, b = load_tensors(out / "checkpoint.safetensors"), load_tensors(tmp_path / "s" / "checkpoint.safetensors")
    for key in a:
        assert torch.equal(a[key], b[key]), key
