"""Typed distillation config: losses, LP3D and TriPlaneNet schedules, optimiser, run control (JSON in every run)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..utils.config import from_dict, to_dict
from .render import CameraAugConfig


@dataclass
class LossWeights:
    """Loss weights. LP3D (eq. 5): triplane, color_*, lpips_*, feature, adv_ref / adv_mv (lambda_1), identity
    (lambda_2). TriPlaneNet (supp. eqs. 1-3, paper values): rec_l2 (smooth-L1 for the offset branch), rec_lpips,
    rec_id, mirror (lambda_m), symm, mirror_lpips, mirror_id, adv_tpn. ``pose`` trains the optional pose head.
    ``depth`` (unofficial LP3D code: 1.0) is off, as in the paper."""

    triplane: float = 1.0
    color_raw: float = 1.0
    color_sr: float = 1.0
    lpips_raw: float = 1.0
    lpips_sr: float = 1.0
    feature: float = 1.0
    depth: float = 0.0
    adv_ref: float = 0.1
    adv_mv: float = 0.025
    identity: float = 1.0
    pose: float = 1.0
    rec_l2: float = 1.0
    rec_lpips: float = 1.0
    rec_id: float = 0.1
    mirror: float = 0.1
    symm: float = 1.0
    mirror_lpips: float = 1.0
    mirror_id: float = 0.1
    adv_tpn: float = 0.005


@dataclass
class LP3DSchedule:
    """LP3D supplement A2. Stage 1 (``stage1_steps``): multiview losses every step, reference-view losses every
    ``stage1_ref_every`` steps, no adversarial/identity loss, decoder and SR frozen. Stage 2: adversarial and
    identity losses, renderer/SR/D fine-tuned (each an option), reference losses every ``stage2_ref_every`` steps,
    feature loss weight ``stage2_feature``, tri-plane loss weight ``stage2_triplane`` (the paper's value is
    unreadable in the supplement; 0.1 here), both views every step from ``both_every_step_from``."""

    stage1_steps: int = 30000
    stage1_ref_every: int = 10
    stage2_ref_every: int = 2
    both_every_step_from: int = 37500
    stage2_triplane: float = 0.1
    stage2_feature: float = 0.0
    finetune_decoder: bool = True
    finetune_superres: bool = True
    finetune_discriminator: bool = True
    sr_latent: str = "learned"
    """What drives the student SR: "one" (LP3D A2: a constant 1; the generator must have been fine-tuned that way,
    `gan3dkit train --stage lp3d-sr`) or "learned" (the unofficial code's learned constant w, for an ordinary EG3D).
    The paper preset sets "one"; "learned" is the default so configs written before this field load unchanged."""


@dataclass
class TriPlaneNetSchedule:
    """TriPlaneNet: the W+ branch alone until ``offset_start``, both until ``psp_stop``, then the offset branch only;
    v2 adds the mirror loss (always) and the adversarial loss from ``adv_start`` (R1 every ``r1_interval``)."""

    offset_start: int = 20000
    psp_stop: int = 500000
    adv_start: int = 600000
    loss_resolution: int | None = 256
    """Images above this size are area-downsampled before the reconstruction and mirror losses (seed 004 A: "we
    operate in the resolution of 256x256 except for the calculation of L_id"); None = the teacher's resolution."""
    real_fraction: float = 0.5
    """With `data`: the share of each batch taken from the dataset's photos, the rest EG3D samples at dataset poses.
    Choice: seed 004 mixes FFHQ with 0-150K pre-rendered samples (Table 1) and gives no per-batch ratio."""
    mirror_prob: float = 0.5
    """With `data`: probability that an item (photo or sample) is mirrored with its camera (seed 004: "we also
    augment the training dataset by mirroring it")."""


@dataclass
class DistillOptim:
    batch: int = 32
    """Total batch over processes (LP3D: 32; TriPlaneNet: 3)."""
    lr: float = 1e-4
    """Encoder learning rate (LP3D and TriPlaneNet: 1e-4)."""
    lr_transformer: float = 5e-5
    """LP3D ViT parameters."""
    lr_renderer: float = 1e-4
    """Fine-tuned decoder, SR and constant w (stage 2)."""
    betas: tuple[float, float] = (0.9, 0.999)
    """Adam's betas (optimizer "adam")."""
    optimizer: str = "adam"
    """"adam" (LP3D; the paper names none) or "ranger" (TriPlaneNet: `encoders/ranger.py`, RAdam + gradient
    centralisation + Lookahead, with the `ranger_*` values)."""
    ranger_betas: tuple[float, float] = (0.95, 0.999)
    """Ranger's betas (anantarb/triplanenet `training/ranger.py` defaults; `coach.py` passes only lr)."""
    ranger_eps: float = 1e-5
    """Ranger's eps (triplanenet `training/ranger.py` default)."""
    ranger_gc: bool = True
    """Gradient centralisation of every weight with more than one dimension (triplanenet `training/ranger.py`:
    use_gc=True, gc_conv_only=False)."""
    ranger_k: int = 6
    """Lookahead period (triplanenet `training/ranger.py`: k=6)."""
    ranger_alpha: float = 0.5
    """Lookahead step towards the fast weights (triplanenet `training/ranger.py`: alpha=0.5)."""
    dlr: float = 0.002
    """D learning rate (EG3D's), Adam betas (0, 0.99)."""
    r1_gamma: float = 1.0
    r1_interval: int = 16


@dataclass
class DistillRun:
    steps: int = 220000
    """Gradient steps in total (LP3D: 220k; TriPlaneNet: 1.5M)."""
    max_minutes: float | None = None
    """Stop this call after this much wall-clock time (a checkpoint is written; resuming continues exactly)."""
    tick_steps: int = 50
    snapshot_ticks: int = 10
    seed: int = 0
    cpu_threads: int | None = None
    truncation_psi: float = 1.0
    conditioning: str = "frontal"
    """Mapping camera of the teacher: "frontal" (what inversion and EG3D's videos use) or "render" (unofficial LP3D)."""
    deterministic_render: bool = True
    """Teacher and student render without depth jitter, so their differences are the encoder's, not the jitter's."""
    nrr: int | None = None
    """Neural rendering resolution (None: where the generator's training stopped)."""
    val_samples: int = 8
    """Held-out latents/cameras (fixed seed) scored every tick (the learning curve)."""


@dataclass
class DistillConfig:
    arch: str = "lp3d"
    size: str = "paper"
    """Encoder size preset: paper | small | tiny."""
    model: dict[str, Any] = field(default_factory=dict)
    """The arch's resolved typed config (LP3DConfig / TriPlaneNetConfig fields); filled from the generator."""
    generator: str = ""
    """Generator checkpoint (gan3dkit train)."""
    data: str = ""
    """TriPlaneNet only: a gan3dkit LMDB of photos with measured cameras (seed 004: FFHQ), mixed with generator
    samples at its poses (`triplanenet.real_fraction`). Empty: the generator's renders at augmented cameras only.
    LP3D trains on synthetic data only (seed 003 A1.6: real data made it worse)."""
    out: str = ""
    cameras: CameraAugConfig = field(default_factory=CameraAugConfig)
    loss: LossWeights = field(default_factory=LossWeights)
    lp3d: LP3DSchedule = field(default_factory=LP3DSchedule)
    triplanenet: TriPlaneNetSchedule = field(default_factory=TriPlaneNetSchedule)
    optim: DistillOptim = field(default_factory=DistillOptim)
    run: DistillRun = field(default_factory=DistillRun)
    lpips_net: str = "alex"
    lpips_backbone: str | None = None
    """AlexNet/VGG16 ImageNet weights (path or URL); None: package, cache (`gan3dkit weights add`) or download."""
    identity_weights: str | None = None
    """ArcFace IR-SE-50 weights (path or URL); None: cache (`gan3dkit weights add model_ir_se50.pth`)."""
    backbone_weights: str | None = None
    """Pretrained encoder backbone (ResNet34 ImageNet for LP3D, IR-SE-50 for TriPlaneNet); None: cache/download."""
    init_from: str | None = None
    """An encoder checkpoint (`convert triplanenet`, an earlier run) whose E/R/D/C weights and architecture start this
    run: weights only, the optimisers start afresh. Its generator can be the teacher (--ckpt the same file)."""
    random_init: bool = False
    """Start the backbone, the LPIPS backbone and the identity network (off) from nothing pretrained. The papers use
    pretrained parts, so without this a missing file is an error naming `gan3dkit weights add`; with it every
    output (checkpoint, summary) says RANDOM INIT."""
    confidence_weights: str | None = None
    """TriPlaneNet v2's sigma: unsup3d's CelebA ConfNet (path or URL); None: the cache (`gan3dkit weights add ...
    --name unsup3d-celeba`). Pretrained and frozen as the paper (eq. 5); with --random-init and no file, a random
    one trained jointly with eq. 4's likelihood."""

    def to_dict(self) -> dict:
        return to_dict(self)

    @classmethod
    def from_dict(cls, data: dict) -> DistillConfig:
        return from_dict(cls, data)

    def validate(self) -> None:
        if self.run.conditioning not in ("frontal", "render"):
            raise ValueError(f"run.conditioning must be frontal or render, got {self.run.conditioning!r}")
        if self.optim.optimizer not in ("adam", "ranger"):
            raise ValueError(f"optim.optimizer must be adam or ranger, got {self.optim.optimizer!r}")
        o = self.optim
        if o.ranger_k < 1 or not 0 <= o.ranger_alpha <= 1 or not o.ranger_eps > 0:
            raise ValueError(f"optim.ranger_k must be >= 1, optim.ranger_alpha in [0, 1] and optim.ranger_eps > 0; got "
                             f"{o.ranger_k}, {o.ranger_alpha}, {o.ranger_eps}")
        if self.data and _family(self.arch) != "triplanenet":
            raise ValueError(f"--data is for the TriPlaneNet archs (seed 004); {self.arch} trains on the generator's "
                             "renders only")
        if self.optim.batch < 1 or self.run.steps < 0 or self.run.tick_steps < 1:
            raise ValueError("optim.batch >= 1, run.steps >= 0 and run.tick_steps >= 1 are required")


def _family(arch: str) -> str:
    """The registered arch's training family (lp3d | triplanenet)."""
    from .registry import get_arch

    return get_arch(arch).family


def tiny_distill(arch: str) -> DistillConfig:
    """CPU preset: tiny encoder, batch 4, stage 1 for 40 steps (then stage 2), TriPlaneNet offsets from step 20."""
    cfg = DistillConfig(arch=arch, size="tiny")
    cfg.optim = DistillOptim(batch=4, lr=1e-3, lr_transformer=5e-4, lr_renderer=1e-4, r1_interval=4)
    # CPU teachers are ordinary EG3D runs (SR driven by w): the learned constant; "one" after `train --stage lp3d-sr`
    cfg.lp3d = LP3DSchedule(stage1_steps=40, stage1_ref_every=2, both_every_step_from=60, sr_latent="learned")
    cfg.triplanenet = TriPlaneNetSchedule(offset_start=20, psp_stop=10**9, adv_start=60)
    cfg.run = DistillRun(steps=200, tick_steps=10, snapshot_ticks=5, val_samples=4)
    return cfg


def paper_distill(arch: str) -> DistillConfig:
    """The papers' schedules (LP3D: batch 32, 220k steps; TriPlaneNet: batch 3, Ranger, 1.5M steps)."""
    cfg = DistillConfig(arch=arch, size="paper")
    cfg.lp3d.sr_latent = "one"  # LP3D supplement A2: the SR latent is a constant 1 (after `train --stage lp3d-sr`)
    if _family(arch) == "triplanenet":
        cfg.optim = DistillOptim(batch=3, optimizer="ranger")
        cfg.run = DistillRun(steps=1_500_000)
    return cfg


DISTILL_PRESETS = {"tiny": tiny_distill, "paper": paper_distill}
