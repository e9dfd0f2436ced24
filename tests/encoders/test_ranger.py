"""Ranger (pSp / e4e / TriPlaneNet's optimiser): first step, gradient centralisation, Lookahead, exact resume."""

from __future__ import annotations

import torch

from gan3dkit.encoders.ranger import Ranger


def _model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(6, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2))


def _steps(model, opt, n, start=0):
    x = torch.randn(16, 6, generator=torch.Generator().manual_seed(1))
    for i in range(start, start + n):
        opt.zero_grad()
        (model(x * (1 + i / 7)) - 1).square().mean().backward()
        opt.step()


def test_first_step_is_centred_momentum_sgd():
    m = _model()
    before = [p.detach().clone() for p in m.parameters()]
    opt = Ranger(m.parameters(), lr=0.1)
    _steps(m, opt, 1)
    for p, b in zip(m.parameters(), before, strict=True):
        g = p.grad
        g = g - g.mean(dim=1, keepdim=True) if g.dim() > 1 else g  # GC on weights, not biases
        # step 1: N_sma = 1 <= 5, so p -= lr / (1 - beta1) * (1 - beta1) g
        assert torch.allclose(p, b - 0.1 * g, atol=1e-7)


def test_lookahead_pulls_halfway_back_every_k_steps():
    look, fast = _model(), _model()
    slow = [p.detach().clone() for p in look.parameters()]
    _steps(look, Ranger(look.parameters(), lr=1e-2, k=6), 6)
    _steps(fast, Ranger(fast.parameters(), lr=1e-2, k=10**6), 6)  # the same RAdam steps, no Lookahead
    for p, q, s in zip(look.parameters(), fast.parameters(), slow, strict=True):
        assert torch.allclose(p, s + 0.5 * (q - s), atol=1e-7)


def test_state_dict_resumes_bit_exactly():
    a, b = _model(), _model()
    oa = Ranger(a.parameters(), lr=1e-2)
    _steps(a, oa, 9)
    ob = Ranger(b.parameters(), lr=1e-2)
    _steps(b, ob, 4)
    sd = {"state": {k: dict(v) for k, v in ob.state_dict()["state"].items()},
          "param_groups": ob.state_dict()["param_groups"]}  # fmt: skip
    c = _model()
    c.load_state_dict(b.state_dict())
    oc = Ranger(c.parameters(), lr=1e-2)
    oc.load_state_dict(sd)
    _steps(c, oc, 5, start=4)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), c.parameters(), strict=True))


def test_parameters_without_gradient_keep_their_state():
    m = _model()
    opt = Ranger(m.parameters(), lr=1e-2)
    m[2].requires_grad_(False)
    _steps(m, opt, 3)
    assert all(not opt.state[p] for p in m[2].parameters()) and opt.state[m[0].weight]["step"] == 3


def test_triplanenet_distillation_steps_with_its_ranger(micro_gen, tmp_path):
    """TriPlaneNet's optimiser is this Ranger with its code's values (anantarb/triplanenet training/ranger.py); the
    first update of every pSp weight is -lr times the centred gradient (RAdam's first steps are momentum SGD, and
    gradient centralisation removes each output's mean: torch's RAdam, used before, moved by the raw gradient)."""
    from encoder_helpers import micro_distill

    from gan3dkit.encoders.config import paper_distill
    from gan3dkit.encoders.distill import DistillTask
    from gan3dkit.train.task import RunContext

    for arch in ("triplanenet-v1", "triplanenet-v2"):
        o = paper_distill(arch).optim
        assert (o.optimizer, o.ranger_betas, o.ranger_eps, o.ranger_gc, o.ranger_k, o.ranger_alpha) == (
            "ranger", (0.95, 0.999), 1e-5, True, 6, 0.5)
    cfg = micro_distill("triplanenet-v1", micro_gen, tmp_path / "t", optim__optimizer="ranger")
    ctx = RunContext.single(tmp_path / "t")
    ctx.batch = cfg.optim.batch
    task = DistillTask(cfg, ctx)
    opt = task.optimizers["psp"]
    assert isinstance(opt, Ranger)
    group = opt.param_groups[0]
    assert (tuple(group["betas"]), group["eps"], group["use_gc"], group["k"], group["alpha"]) == (
        (0.95, 0.999), 1e-5, True, 6, 0.5)
    params = [p for g in opt.param_groups for p in g["params"]]
    before = [p.detach().clone() for p in params]
    task.start(0)
    task.step(0)
    centred, ulp = 0, torch.finfo(torch.float32).eps
    for p, b in zip(params, before, strict=True):
        if p.grad is None:
            continue
        g = p.grad
        if g.dim() > 1:
            g = g - g.mean(dim=tuple(range(1, g.dim())), keepdim=True)
            centred += int(g.abs().sum() > 0)
        state = opt.state[p]  # the moments see the centred gradient with TriPlaneNet's betas
        assert torch.allclose(state["exp_avg"], 0.05 * g, rtol=1e-5, atol=1e-12)
        assert torch.allclose(state["exp_avg_sq"], 0.001 * g * g, rtol=1e-5, atol=1e-20)
        step = cfg.optim.lr * g  # RAdam below N_sma 5: momentum SGD, bias-corrected (float32 rounding allowed)
        assert ((p.detach() - b + step).abs() <= 2 * ulp * (b.abs() + step.abs()) + 1e-12).all()
    assert centred > 10
