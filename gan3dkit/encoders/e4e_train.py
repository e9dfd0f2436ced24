"""e4e's training of an encoder (Tov et al. 2021, the encoder4editing code): progressive W+ deltas, delta regulariser,
latent-code discriminator with R1 and a w pool; state in and out explicitly, so any training loop can call it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

if TYPE_CHECKING:
    from ..networks.generator import TriPlaneGenerator
    from .psp import GradualStyleEncoder


@dataclass
class E4EConfig:
    """e4e's options (``options/train_options.py``) and the values of its README training command."""

    progressive_start: int | None = 20000
    """Step at which delta 1 starts (README: --progressive_start 20000; w_0 alone before). None: no progressive
    schedule, every delta trained from step 0 and no delta regulariser (e4e without --progressive_start)."""
    progressive_step_every: int = 2000
    """Steps between enabling delta i and delta i + 1 (--progressive_step_every default 2,000)."""
    delta_norm: int = 2
    """Norm of each delta ||w_i - w_0||_p (--delta_norm default 2; not squared), batch-averaged, summed over i."""
    delta_norm_lambda: float = 2e-4
    """Weight of the delta regulariser (--delta_norm_lambda default 2e-4)."""
    w_discriminator_lambda: float = 0.1
    """Weight of the latent discriminator's non-saturating loss on E (README: --w_discriminator_lambda 0.1; 0 = off)."""
    w_discriminator_lr: float = 2e-5
    """Adam learning rate of the latent discriminator (--w_discriminator_lr default 2e-5)."""
    r1: float = 10.0
    """R1 weight on real w (--r1 default 10), applied as r1 / 2 * penalty * d_reg_every."""
    d_reg_every: int = 16
    """R1 every this many steps, lazily (--d_reg_every default 16)."""
    w_pool_size: int = 50
    """Latent codes pool for D's real and fake w (README: --use_w_pool, --w_pool_size default 50; 0 = no pool)."""
    d_layers: int = 4
    """LatentCodesDiscriminator(512, 4): 3 x (Linear w_dim + LeakyReLU 0.2) + Linear 1 (coach.py)."""
    optimizer: str = "ranger"
    """E's optimiser: "ranger" (--optim_name default: RAdam + gradient centralisation + Lookahead, `ranger.py`) or
    "adam" (Ko et al.'s P code)."""


class LatentCodesDiscriminator(nn.Module):
    """e4e's D on single w vectors: (n_mlp - 1) x [Linear(w_dim, w_dim), LeakyReLU(0.2)], Linear(w_dim, 1)."""

    def __init__(self, w_dim: int, n_mlp: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for _ in range(n_mlp - 1):
            layers += [nn.Linear(w_dim, w_dim), nn.LeakyReLU(0.2)]
        self.mlp = nn.Sequential(*layers, nn.Linear(w_dim, 1))

    def forward(self, w: Tensor) -> Tensor:  # [B, w_dim] -> [B, 1]
        return self.mlp(w)


class LatentCodesPool:
    """e4e's ``LatentCodesPool`` (pix2pix's image pool for w) with a torch.Generator instead of Python's random, so
    its draws are checkpointed. An item [n, w_dim] contributes one of its n codes, picked at random."""

    def __init__(self, size: int, w_dim: int) -> None:
        self.size, self.ws = size, torch.zeros(0, w_dim)

    def query(self, ws: Tensor, gen: torch.Generator) -> Tensor:  # [B, w_dim] or [B, n, w_dim] -> [B, w_dim]
        if self.size == 0:
            return ws
        out = []
        for w in ws:
            if w.ndim == 2:
                w = w[int(torch.randint(0, len(w), (1,), generator=gen))]
            w = w.detach().cpu()
            if len(self.ws) < self.size:
                self.ws = torch.cat([self.ws, w[None]])
                out.append(w)
            elif float(torch.rand(1, generator=gen)) > 0.5:
                i = int(torch.randint(0, self.size, (1,), generator=gen))
                out.append(self.ws[i].clone())
                self.ws[i] = w
            else:
                out.append(w)
        return torch.stack(out).to(ws.device)


@dataclass
class E4EState:
    """Everything e4e's training keeps besides the encoder: the latent D, its optimiser, the pools, their RNG."""

    D: LatentCodesDiscriminator
    opt: torch.optim.Optimizer
    real_pool: LatentCodesPool
    fake_pool: LatentCodesPool
    gen: torch.Generator

    def tensors(self) -> dict[str, Tensor]:
        """Pools and the generator's state, for the checkpoint (D and its optimiser go in as module / optimiser)."""
        return {"e4e.real_pool": self.real_pool.ws, "e4e.fake_pool": self.fake_pool.ws, "e4e.gen": self.gen.get_state()}

    def load_tensors(self, t: dict[str, Tensor]) -> None:
        self.real_pool.ws, self.fake_pool.ws = t["e4e.real_pool"].clone(), t["e4e.fake_pool"].clone()
        self.gen.set_state(t["e4e.gen"])


def init_state(cfg: E4EConfig, w_dim: int, device: torch.device, seed: int) -> E4EState:
    """A fresh latent D (PyTorch's default init under ``seed``), Adam(w_discriminator_lr) and empty pools."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        D = LatentCodesDiscriminator(w_dim, cfg.d_layers).to(device).requires_grad_(False)
    opt = torch.optim.Adam(D.parameters(), lr=cfg.w_discriminator_lr)
    gen = torch.Generator().manual_seed(seed)
    return E4EState(D, opt, LatentCodesPool(cfg.w_pool_size, w_dim), LatentCodesPool(cfg.w_pool_size, w_dim), gen)


def progressive_stage(step: int, cfg: E4EConfig, n_styles: int) -> int:
    """Deltas enabled at ``step`` (0: w_0 alone). e4e's progressive_steps = [0, start, start + every, ...]: delta i
    from step start + (i - 1) * every; without a schedule all n_styles - 1 deltas from step 0."""
    if cfg.progressive_start is None:
        return n_styles - 1
    if step < cfg.progressive_start:
        return 0
    return min(1 + (step - cfg.progressive_start) // cfg.progressive_step_every, n_styles - 1)


def staged_codes(codes: Tensor, stage: int) -> Tensor:  # [B, n, w_dim] (w_0 + delta_i) -> same, deltas > stage off
    """e4e's Encoder4Editing at ProgressiveStage(stage): w_i = w_0 + delta_i for 1 <= i <= stage, w_0 elsewhere."""
    on = torch.arange(codes.shape[1], device=codes.device) <= stage
    return torch.where(on[None, :, None], codes, codes[:, :1])


def drop_inactive_grads(encoder: GradualStyleEncoder, stage: int) -> None:
    """Gradients of what e4e's forward at ``stage`` never runs set to None (so Adam / Ranger skip them and keep their
    step counts): style blocks past ``stage``, the middle FPN lateral before style 3, the fine one before style 7."""
    unused: list[nn.Module] = [blk for i, blk in enumerate(encoder.styles) if i > stage]
    unused += [encoder.latlayer1] if stage < encoder.coarse else []
    unused += [encoder.latlayer2] if stage < encoder.middle else []
    for module in unused:
        for p in module.parameters():
            p.grad = None


def delta_loss(w: Tensor, stage: int, p: int) -> Tensor:  # W+ [B, n, w_dim] -> scalar
    """e4e's delta regulariser: sum over i = 1..stage of mean_b ||w_i - w_0||_p."""
    total = w.new_zeros(())
    for i in range(1, stage + 1):
        total = total + torch.norm(w[:, i] - w[:, 0], p, dim=1).mean()
    return total


def r1_penalty(D: nn.Module, real_w: Tensor) -> Tensor:
    """mean_b ||d D(w) / d w||^2 on real w, with the graph kept for the backward (e4e's discriminator_r1_loss)."""
    real_w = real_w.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(D(real_w).sum(), real_w, create_graph=True)
    return grad.pow(2).reshape(len(grad), -1).sum(1).mean()


def discriminator_step(state: E4EState, cfg: E4EConfig, step: int, real_w: Tensor, fake_w: Tensor,
                       stage: int | None) -> dict[str, float]:  # fmt: skip
    """e4e's ``train_discriminator``: softplus losses on pooled real w [B, w_dim] and the encoder's pooled W+
    [B, n, w_dim] (dims 0..stage when progressive, ``stage`` None: all), Adam step; R1 when step % d_reg_every == 0."""
    D, rec = state.D.requires_grad_(True), {}
    fake = fake_w.detach()[:, : stage + 1] if stage is not None else fake_w.detach()
    real = state.real_pool.query(real_w.detach(), state.gen)
    fake = state.fake_pool.query(fake, state.gen)
    if fake.ndim == 3:
        fake = fake[:, 0]
    loss = F.softplus(-D(real)).mean() + F.softplus(D(fake)).mean()
    state.opt.zero_grad(set_to_none=False)  # e4e's torch 1.6 zeroes: the R1 step then moves every D parameter
    loss.backward()
    state.opt.step()
    rec["d_w"] = float(loss.detach())
    if cfg.d_reg_every > 0 and step % cfg.d_reg_every == 0:
        r1 = cfg.r1 / 2 * r1_penalty(D, real) * cfg.d_reg_every
        state.opt.zero_grad(set_to_none=False)  # the last bias gets no R1 gradient but keeps Adam's momentum step
        r1.backward()
        state.opt.step()
        rec["d_w_r1"] = float(r1.detach())
    D.requires_grad_(False)
    return rec


def encoder_terms(state: E4EState | None, cfg: E4EConfig, w: Tensor, stage: int) -> tuple[Tensor, dict[str, Any]]:
    """e4e's encoder-side terms on the staged W+ [B, n, w_dim]: w_discriminator_lambda * mean over dims 0..stage of
    softplus(-D(w_i)) + delta_norm_lambda * delta regulariser (the latter only with a progressive schedule)."""
    loss, rec = w.new_zeros(()), {}
    if state is not None and cfg.w_discriminator_lambda > 0:
        dims = range(stage + 1) if cfg.progressive_start is not None else range(w.shape[1])
        adv = torch.stack([F.softplus(-state.D(w[:, i])).mean() for i in dims]).mean()
        loss = loss + cfg.w_discriminator_lambda * adv
        rec["adv_w"] = float(adv.detach())
    if cfg.progressive_start is not None:
        reg = delta_loss(w, stage, cfg.delta_norm)
        loss = loss + cfg.delta_norm_lambda * reg
        rec["delta"] = float(reg.detach())
    return loss, rec


def sample_real_w(G: TriPlaneGenerator, n: int, gen: torch.Generator) -> Tensor:  # -> [n, w_dim]
    """e4e's real w: ``decoder.get_latent(z)``, z ~ N(0, I) from ``gen``, no truncation; EG3D's mapping conditioned
    on the frontal camera, as Ko et al.'s pseudo pairs are."""
    from ..generate.views import view_cameras

    device = next(G.parameters()).device
    z = torch.randn(n, G.z_dim, generator=gen).to(device)
    with torch.no_grad():
        return G.mapping(z, view_cameras(G, [0.0], 0.0, device).to_label().expand(n, -1), truncation_psi=1.0)[:, 0]
