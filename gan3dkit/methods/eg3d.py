"""EG3D's adversarial objective: non-saturating loss, lazy R1 on both images, density regularisation, GPC."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from ..cameras.camera import Cameras, as_cameras
from ..ops import filter2d
from .schedule import blur_sigma, gaussian_blur_kernel, gpc_swap_prob, neural_rendering_resolution

if TYPE_CHECKING:
    from ..networks.generator import TriPlaneGenerator


#: What of G's output D's phase keeps (detached): the images, and the camera, pose (pose_w) and ws of learned poses.
_FAKE_KEYS = ("image", "image_raw", "camera", "pose", "pose_w", "ws")


@dataclass
class LossConfig:
    """EG3D loss settings (EG3D passes these, the NRR fade included, as loss arguments)."""

    r1_gamma: float = 1.0
    """R1 weight gamma (EG3D --gamma): penalty (gamma / 2) * (|grad_img|^2 + |grad_raw|^2)."""
    density_reg: float = 0.25
    density_reg_p_dist: float = 0.004
    density_reg_points: int = 1000
    density_reg_box: float = 1.0
    """Half-extent of the density-reg sampling cube. EG3D: 1.0 world unit regardless of box_warp (see EG3DLoss)."""
    gen_pose_cond: bool = False
    """Generator pose conditioning (EG3D --gen_pose_cond)."""
    gpc_reg_prob: float = 0.5
    """Final probability of swapping the conditioning camera (fades from 1)."""
    gpc_reg_fade_kimg: float = 1000.0
    blur_init_sigma: float = 10.0
    blur_fade_kimg: float = 200.0
    """Blur fade length at batch 32; scaled by batch / 32 (EG3D train.py)."""
    blur_raw_target: bool = True
    style_mixing_prob: float = 0.0
    nrr_initial: int = 64
    """Neural rendering resolution at the start."""
    nrr_final: int | None = None
    """Fade the NRR to this value (EG3D --neural_rendering_resolution_final); None keeps it fixed."""
    nrr_fade_kimg: float = 1000.0


@dataclass
class StepState:
    """Schedule values for one training step (all functions of images seen)."""

    nimg: int
    nrr: int
    blur_sigma: float
    swap_prob: float | None


class EG3DLoss:
    """EG3D's loss phases (Gmain, Greg, Dmain, Dreg) over a TriPlaneGenerator G and a DualDiscriminator D.

    Reproduced from EG3D (reference eg3d.md §5): softplus non-saturating logistic loss; R1 on both the image and
    the raw image, (gamma / 2) * (|dD/dimg|^2 + |dD/draw|^2), in the lazy Dreg phase; density regularisation (l1
    between sigma at U[-b, b]^3 points and at copies perturbed by N(0, p_dist)) in the lazy Greg phase; generator
    pose conditioning: the conditioning camera is the batch-rolled camera with probability p (else the rendering
    camera), or zeros when GPC is off; D input blur fading from blur_init_sigma, also applied to the raw target.

    Choices (config fields): `density_reg_box` is the half-extent b of the density-regularisation sampling cube.
    EG3D uses b = 1 world unit whatever the triplane box (for FFHQ's box [-0.5, 0.5]^3, 7/8 of its points fall
    outside the planes, where features are zero); the default keeps that for fidelity, `b = box_warp / 2` samples
    inside the box.
    """

    def __init__(self, G: TriPlaneGenerator, D: torch.nn.Module, cfg: LossConfig, batch: int) -> None:
        self.G, self.D, self.cfg = G, D, cfg
        # EG3D's train.py scales the blur fade by the batch size: blur_fade_kimg * batch / 32.
        self.blur_fade_kimg = cfg.blur_fade_kimg * batch / 32

    def step_state(self, nimg: int) -> StepState:
        c = self.cfg
        return StepState(
            nimg=nimg,
            nrr=neural_rendering_resolution(nimg, c.nrr_initial, c.nrr_final, c.nrr_fade_kimg),
            blur_sigma=blur_sigma(nimg, c.blur_init_sigma, self.blur_fade_kimg),
            swap_prob=gpc_swap_prob(nimg, c.gen_pose_cond, c.gpc_reg_prob, c.gpc_reg_fade_kimg),
        )

    # ----------------------------------------------------------------------------------------------- networks
    def conditioning(self, c: Cameras, swap_prob: float | None) -> torch.Tensor:
        """The mapping network's [B, 25] conditioning label of cameras c (GPC swap, or zeros when GPC is off)."""
        label = c.to_label()
        if swap_prob is None:
            return torch.zeros_like(label)
        swapped = torch.roll(label.clone(), 1, 0)
        return torch.where(torch.rand((label.shape[0], 1), device=label.device) < swap_prob, swapped, label)

    def run_G(
        self, z: torch.Tensor, c: Cameras | torch.Tensor, st: StepState, update_emas: bool = False
    ) -> dict[str, torch.Tensor]:
        c = as_cameras(c)
        ws = self.G.mapping(z, self.conditioning(c, st.swap_prob), update_emas=update_emas)
        if self.cfg.style_mixing_prob > 0:
            ws = self._style_mix(ws, z, c, st, update_emas)
        return self.G.synthesis(ws, c, neural_rendering_resolution=st.nrr, update_emas=update_emas)

    def _style_mix(
        self, ws: torch.Tensor, z: torch.Tensor, c: Cameras, st: StepState, update_emas: bool
    ) -> torch.Tensor:
        cutoff = torch.empty([], dtype=torch.int64, device=ws.device).random_(1, ws.shape[1])
        cutoff = torch.where(
            torch.rand([], device=ws.device) < self.cfg.style_mixing_prob, cutoff, torch.full_like(cutoff, ws.shape[1])
        )
        mixed = self.G.mapping(torch.randn_like(z), self.conditioning(c, st.swap_prob), update_emas=False)
        ws = ws.clone()
        ws[:, cutoff:] = mixed[:, cutoff:]
        return ws

    def run_D(
        self, img: dict[str, torch.Tensor], c: Cameras | torch.Tensor, st: StepState, update_emas: bool = False
    ) -> torch.Tensor:
        """D's logits on img conditioned on cameras c (their label: D's conditioning input)."""
        return self.D(self.d_input(img, st), as_cameras(c).to_label(), update_emas=update_emas)

    def d_input(self, img: dict[str, torch.Tensor], st: StepState) -> dict[str, torch.Tensor]:
        """D's input: the image blurred by the fading Gaussian (EG3D's blur_sigma), image_raw as is."""
        taps = gaussian_blur_kernel(st.blur_sigma)
        if taps is not None:
            f = torch.as_tensor(taps, device=img["image"].device)
            img = {**img, "image": filter2d(img["image"], f)}
        return img

    def arrange_fakes(self, z: torch.Tensor, c: Cameras | torch.Tensor) -> tuple[torch.Tensor, Cameras]:
        """Hook: how the fakes of a G or D phase are laid out ([B, z_dim], B cameras); EG3D: as drawn."""
        return z, as_cameras(c)

    def fake_terms(
        self, gen: dict[str, torch.Tensor], c: Cameras | torch.Tensor, st: StepState, phase: str,
        update_emas: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None, dict[str, float]]:
        """Hook: D's logits [B, 1] on fakes, the method's extra loss on them (None for EG3D) and its stats.

        `phase` is "G" (gradients reach G through the images) or "D" (the images are detached).
        """
        return self.run_D(gen, c, st, update_emas=update_emas), None, {}

    def real_images(self, real_u8: torch.Tensor, st: StepState) -> dict[str, torch.Tensor]:
        """uint8 [B, C, R, R] -> {'image' in [-1, 1], 'image_raw' resized to the NRR (antialiased, blurred)}."""
        image = real_u8.to(torch.float32) / 127.5 - 1
        raw = F.interpolate(image, size=(st.nrr, st.nrr), mode="bilinear", align_corners=False, antialias=True)
        taps = gaussian_blur_kernel(st.blur_sigma)
        if self.cfg.blur_raw_target and taps is not None:
            raw = filter2d(raw, torch.as_tensor(taps, device=raw.device))
        return {"image": image, "image_raw": raw}

    # -------------------------------------------------------------------------------------------------- phases
    def accumulate_gradients(
        self,
        phase: str,
        real: dict[str, torch.Tensor],
        real_c: Cameras | torch.Tensor,
        gen_z: torch.Tensor,
        gen_c: Cameras | torch.Tensor,
        gain: float,
        st: StepState,
    ) -> dict[str, float]:
        """Run one phase's forward and backward (gradients scaled by `gain`); returns logged scalars."""
        stats: dict[str, float] = {}
        real_c, gen_c = as_cameras(real_c), as_cameras(gen_c)
        if phase in ("Gmain", "Dmain"):
            gen_z, gen_c = self.arrange_fakes(gen_z, gen_c)
        if phase == "Gmain":
            gen = self.run_G(gen_z, gen_c, st)
            logits, aux, aux_stats = self.fake_terms(gen, gen_c, st, "G")
            loss = F.softplus(-logits)
            total = loss.mean() if aux is None else loss.mean() + aux
            total.mul(gain).backward()
            stats["Loss/G/loss"] = loss.mean().item()
            stats["Loss/scores/fake"] = logits.mean().item()
            stats.update(aux_stats)
        elif phase == "Greg":
            loss = self.density_regularization(gen_z, gen_c, st)
            loss.mul(gain).backward()
            stats["Loss/G/density_reg"] = loss.item()
        elif phase == "Dmain":
            gen = self.run_G(gen_z, gen_c, st, update_emas=True)
            gen_logits, aux, aux_stats = self.fake_terms(
                {k: v.detach() for k, v in gen.items() if k in _FAKE_KEYS}, gen_c, st, "D", True
            )
            loss_gen = F.softplus(gen_logits)
            (loss_gen.mean() if aux is None else loss_gen.mean() + aux).mul(gain).backward()
            stats.update(aux_stats)
            real_logits = self.run_D(real, real_c, st)
            loss_real = F.softplus(-real_logits)
            loss_real.mean().mul(gain).backward()
            stats.update(
                {
                    "Loss/D/loss": (loss_gen.mean() + loss_real.mean()).item(),
                    "Loss/scores/real": real_logits.mean().item(),
                }
            )
        elif phase == "Dreg":
            img = {k: real[k].detach().requires_grad_(True) for k in ("image", "image_raw")}
            real_logits = self.run_D(img, real_c, st)
            grads = torch.autograd.grad(
                real_logits.sum(), [img["image"], img["image_raw"]], create_graph=True, only_inputs=True
            )
            penalty = grads[0].square().sum([1, 2, 3]) + grads[1].square().sum([1, 2, 3])
            loss = penalty * (self.cfg.r1_gamma / 2)
            loss.mean().mul(gain).backward()
            stats["Loss/r1_penalty"] = penalty.mean().item()
        else:
            raise ValueError(f"unknown phase {phase!r}")
        return stats

    def density_regularization(self, gen_z: torch.Tensor, gen_c: Cameras, st: StepState) -> torch.Tensor:
        """EG3D 'l1' density regularisation, times `density_reg`."""
        cfg = self.cfg
        ws = self.G.mapping(gen_z, self.conditioning(gen_c, st.swap_prob), update_emas=False)
        n = cfg.density_reg_points
        initial = (torch.rand((ws.shape[0], n, 3), device=ws.device) * 2 - 1) * cfg.density_reg_box
        perturbed = initial + torch.randn_like(initial) * cfg.density_reg_p_dist
        coords = torch.cat([initial, perturbed], dim=1)
        sigma = self.G.sample_mixed(coords, torch.randn_like(coords), ws, update_emas=False)["sigma"]
        return F.l1_loss(sigma[:, :n], sigma[:, n:]) * cfg.density_reg
