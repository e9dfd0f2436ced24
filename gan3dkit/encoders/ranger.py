"""Ranger as pSp / e4e / TriPlaneNet train with it (their `training/ranger.py`): RAdam + gradient centralisation +
Lookahead, all state inside the optimiser (so a checkpoint of its state_dict resumes exactly)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor


class Ranger(torch.optim.Optimizer):
    """Ranger 2020 (lessw2020) with the defaults the encoders' code uses: betas (0.95, 0.999), eps 1e-5, RAdam's
    rectification switched on above N_sma 5 (plain momentum below), gradient centralisation of every weight with
    more than one dimension, Lookahead every k = 6 steps with alpha 0.5, weight decay 0."""

    def __init__(self, params: Iterable[Any], lr: float = 1e-3, alpha: float = 0.5, k: int = 6,
                 n_sma_threshold: float = 5.0, betas: tuple[float, float] = (0.95, 0.999), eps: float = 1e-5,
                 weight_decay: float = 0.0, use_gc: bool = True) -> None:  # fmt: skip
        if not 0.0 <= alpha <= 1.0 or k < 1 or lr <= 0 or eps <= 0:
            raise ValueError(f"invalid Ranger settings: lr {lr}, alpha {alpha}, k {k}, eps {eps}")
        defaults = {"lr": lr, "alpha": alpha, "k": k, "n_sma_threshold": n_sma_threshold, "betas": betas,
                    "eps": eps, "weight_decay": weight_decay, "use_gc": use_gc}  # fmt: skip
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure: Any = None) -> Tensor | None:  # type: ignore[override]
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:  # e4e: styles not yet enabled get no gradient and keep their step count
                    continue
                grad = p.grad.float()
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p, dtype=torch.float32)
                    state["exp_avg_sq"] = torch.zeros_like(p, dtype=torch.float32)
                    state["slow_buffer"] = p.detach().clone()
                if group["use_gc"] and grad.dim() > 1:
                    grad = grad - grad.mean(dim=tuple(range(1, grad.dim())), keepdim=True)
                state["step"] += 1
                t, exp_avg, exp_avg_sq = state["step"], state["exp_avg"], state["exp_avg_sq"]
                exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1)
                beta2_t = beta2**t
                n_sma_max = 2 / (1 - beta2) - 1
                n_sma = n_sma_max - 2 * t * beta2_t / (1 - beta2_t)
                data = p.detach().float()
                if group["weight_decay"] != 0:
                    data.add_(data, alpha=-group["weight_decay"] * group["lr"])
                if n_sma > group["n_sma_threshold"]:
                    step_size = math.sqrt((1 - beta2_t) * (n_sma - 4) / (n_sma_max - 4) * (n_sma - 2) / n_sma
                                          * n_sma_max / (n_sma_max - 2)) / (1 - beta1**t)  # fmt: skip
                    data.addcdiv_(exp_avg, exp_avg_sq.sqrt().add_(group["eps"]), value=-step_size * group["lr"])
                else:
                    data.add_(exp_avg, alpha=-group["lr"] / (1 - beta1**t))
                p.copy_(data)
                if t % group["k"] == 0:  # Lookahead, per parameter
                    slow = state["slow_buffer"]
                    slow.add_(p - slow, alpha=group["alpha"])
                    p.copy_(slow)
        return loss
