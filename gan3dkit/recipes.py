"""The recipe table: every number the seeds state -> config field -> value in each preset -> source (docs/recipes.md).

`python3 -m gan3dkit.recipes > docs/recipes.md` writes the document from the presets themselves; the test
`tests/test_recipes.py` fails when a preset drifts from a row's pinned value or the document from the presets.
Row kinds: "paper" (the seed states it), "code" (the method's public code, the seed being silent; file named),
"choice" (gan3dkit chooses where the seed is silent or unreadable; `why` says why).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import reduce
from typing import Any

#: Preset groups a row can read: train:<preset>/<method>, stage:lp3d-sr, distill:<preset>/<arch>,
#: invert:<method>/<algorithm>, prior:<name>, lp3d-model, ko-distill.
Target = str


@dataclass(frozen=True)
class Row:
    seed: str
    """Seed and section, e.g. '000 §D'."""
    quantity: str
    stated: str
    """What the seed (or the code, for kind 'code') says."""
    field: str
    """Dotted config field; 'a * b' for a product of two fields."""
    targets: tuple[Target, ...]
    value: Any
    """The value every target must hold."""
    kind: str = "paper"
    why: str = ""


HP = ("lsun_bedroom256", "lsun_church256", "afhq256", "cub256")
DATASET = {"lsun_bedroom256": "LSUN Bedroom", "lsun_church256": "LSUN Church", "afhq256": "AFHQ", "cub256": "CUB"}
POF = ("pof3d", "hyperpose+pof3d", "eg3d-posereg+pof3d")


def _t(presets: tuple[str, ...], method: str) -> tuple[Target, ...]:
    return tuple(f"train:{p}/{method}" for p in presets)


ROWS: tuple[Row, ...] = (
    # ---------------------------------------------------------------- seed 000: HyperPose supplement
    Row("000 §D", "batch", "batch size of 48", "optim.batch", _t(HP, "hyperpose"), 48),
    Row("000 §D", "augmentation", "horizontal flips", "run.xflip", _t(HP, "hyperpose"), True),
    Row("000 §D", "pose embedding m", "24 for LSUN Bedroom, AFHQ, CUB", "hyperpose.embed_dim",
        _t(("lsun_bedroom256", "afhq256", "cub256"), "hyperpose"), 24),
    Row("000 §D", "pose embedding m", "96 for LSUN Church", "hyperpose.embed_dim", _t(("lsun_church256",), "hyperpose"),
        96),
    *(Row("000 §D", f"λ1 ({DATASET[p]})", f"{lam} for {DATASET[p]}", "hyperpose.lambda_soft", _t((p,), "hyperpose"),
          lam) for p, lam in zip(HP, (0.7, 0.9, 0.5, 0.5), strict=True)),
    *(Row("000 §D", f"λ2 ({DATASET[p]})", f"{lam} for {DATASET[p]}", "hyperpose.lambda_nonmatch",
          _t((p,), "hyperpose"), lam) for p, lam in zip(HP, (0.7, 0.9, 0.5, 0.5), strict=True)),
    Row("000 §D, Fig. F", "AFHQ pose-bias handling", "EG3D's technique \"with only a probability of 0.2\"",
        "loss.gpc_reg_prob", _t(("afhq256",), "hyperpose"), 0.8, "choice",
        "read as EG3D's GPC with the true pose 20 % of the time (swap probability 0.8, EG3D's own AFHQ value)"),
    Row("000 §D", "resolution", "256² (512² only for unified AFHQ, §C)", "generator.img_resolution",
        _t(HP, "hyperpose"), 256),
    Row("000 Table C", "LSUN Bedroom pitch", "Gaussian μ = π/2, σ = 0.10", "pitch.std", ("prior:lsun_bedroom",), 0.10),
    Row("000 Table C", "LSUN Bedroom yaw", "Gaussian μ = π/2, σ = 0.70", "yaw.std", ("prior:lsun_bedroom",), 0.70),
    Row("000 Table C", "LSUN Church pitch", "fixed π/2", "pitch.mean", ("prior:lsun_church",), math.pi / 2),
    Row("000 Table C", "LSUN Church yaw", "Uniform [π/2 − 5π/18, π/2 + 5π/18]", "yaw.std", ("prior:lsun_church",),
        5 * math.pi / 18),
    Row("000 Table C", "AFHQ pitch", "Gaussian μ = π/2, σ = 0.13", "pitch.std", ("prior:afhq",), 0.13),
    Row("000 Table C", "AFHQ yaw", "Gaussian μ = π/2, σ = 0.19", "yaw.std", ("prior:afhq",), 0.19),
    Row("000 Table C", "CUB pitch", "Gaussian μ = π/2, σ = 0.13", "pitch.std", ("prior:cub",), 0.13),
    Row("000 Table C", "CUB yaw", "Uniform [π/2 − 3π/4, π/2 + 3π/4]", "yaw.std", ("prior:cub",), 3 * math.pi / 4),
    Row("000 §A.2", "EG3D† regression norm", "ℓ1 or ℓ2", "posereg.norm",
        _t(("lsun_bedroom256",), "eg3d-posereg"), "l2", "choice", "the seed allows both; MSE like PoF3D's pose terms"),
    Row("000 §A.2", "λ_regression", "not given", "posereg.lambda_regression",
        _t(("lsun_bedroom256",), "eg3d-posereg"), 1.0, "choice",
        "the magnitude of PoF3D's pose MSE weights (dis_cam 2, pose_gd 1)"),
    Row("000 §D", "contrastive τ", "not given", "hyperpose.tau", _t(HP, "hyperpose"), 0.1, "choice",
        "SimCLR's usual temperature"),
    Row("000 §D", "pose kernel σ", "not given", "hyperpose.sigma", _t(HP, "hyperpose"), 0.3, "choice",
        "about the spread of the face-like priors: several soft positives per batch"),
    Row("000 §D", "R1 γ", "not given", "loss.r1_gamma", _t(("lsun_bedroom256", "lsun_church256", "cub256"),
        "hyperpose"), 1.0, "choice", "EG3D's FFHQ value (AFHQ: EG3D's 5)"),
    Row("000 §B.2, Table B", "camera distribution of the + PoF3D rows", "learnable (PoF3D integrated \"to estimate "
        "the camera distribution\")", "pof3d.mechanism", _t(("lsun_bedroom256",), "hyperpose+pof3d")
        + _t(("lsun_bedroom256",), "eg3d-posereg+pof3d"), "full", "choice",
        "PoF3D estimates it with its pose-aware D and G-D pose consistency (without: depth 0.29 -> 1.30, seed 001); "
        "learned_only is the option"),
    # ---------------------------------------------------------------- seed 001: PoF3D (poster) and its code
    Row("001 ablation", "pose-mapping learning rate", "2.5e-4 and 2.5e-6 both degrade (the code's 2.5e-5 between)",
        "optim.glr * generator.learned_pose.lr_multiplier", _t(("ffhq256", "afhq256"), "pof3d"), 2.5e-5, "code",
        "train_geod.py glr 0.0025 × --lr_multiplier_pose 0.01"),
    *(Row("001 (code)", "dis_cam_weight", f"{fam}: {v}", "pof3d.dis_cam_weight", _t(p, "pof3d"), v, "code",
          f"VivianSZF/pof3d {sh}") for fam, p, v, sh in (
        ("FFHQ", ("ffhq256", "ffhq512"), 2.0, "ffhq.sh"),
        ("cats", ("afhq256", "afhq512"), 10.0, "cat.sh"),
        ("cars", ("tiny_objects",), 2.0, "shapenet_cars.sh"))),
    *(Row("001 (code)", "pose_gd_weight", f"{fam}: {v}", "pof3d.pose_gd_weight", _t(p, m), v, "code",
          f"VivianSZF/pof3d {sh}") for fam, p, v, sh in (
        ("FFHQ", ("ffhq256",), 1.0, "ffhq.sh"), ("cats", ("afhq256", "afhq512"), 10.0, "cat.sh"))
        for m in POF),
    Row("001 (code)", "R1 γ (cats)", "cats: 5", "loss.r1_gamma", _t(("afhq256", "afhq512"), "pof3d"), 5.0, "code",
        "VivianSZF/pof3d cat.sh --gamma 5"),
    Row("001 (code)", "neural rendering (cats)", "64 → 64", "loss.nrr_final", _t(("afhq256", "afhq512"), "pof3d"),
        None, "code", "cat.sh --neural_rendering_resolution_final 64 (no fade)"),
    Row("001 (code)", "batch", "32", "optim.batch", _t(("ffhq256", "afhq512"), "pof3d"), 32, "code",
        "ffhq.sh / cat.sh --batch 32 (the seed 000 presets keep HyperPose's 48)"),
    # ---------------------------------------------------------------- seed 002: Ko et al. supplement
    Row("002 Alg. 1, line 6", "what drives the pose step", "L(G(w, π), projected): the reprojection (warp) loss",
        "pose.pose_image_weight", ("invert:ko/1",), 0.0, "paper", "1 = the public code's summed loss (option)"),
    Row("002 Alg. 1", "warp loss in the pose step", "depth-based reprojection", "pose.warp_weight", ("invert:ko/1",),
        1.0, "code", "training/warping_loss.py weight 1"),
    Row("002 Alg. 2", "camera in Alg. 2", "GT camera π* kept fixed", "pose_opt", ("invert:ko/2",), False, "paper",
        "--pose-opt --algorithm 2 is a usage error"),
    Row("002 A.3", "pseudo pairs", "30,000 human faces (10,000 cats)", "pairs", ("ko-distill",), 30000),
    Row("002 (code)", "stage-2 LPIPS resolution", "full SR image; early stop at LPIPS 0.06", "tune.lpips_resolution",
        ("invert:ko/1",), None, "code", "Ko et al.'s coach: LPIPS on the 512 image; the threshold assumes it"),
    Row("002 (code)", "stage-2 early stop", "LPIPS ≤ 0.06", "tune.lpips_threshold", ("invert:ko/1",), 0.06, "code",
        "configs/hyperparameters.py LPIPS_value_threshold"),
    Row("002 (code)", "steps", "400 pivot/pose + 400 tuning", "projector.steps", ("invert:ko/1",), 400, "code",
        "configs/hyperparameters.py"),
    *(Row("002 A.1 (e4e)", q, f"\"training strategy of e4e\"; e4e: {said}", f"e4e.{f}", ("ko-distill",), v, "code",
          f"omertov/encoder4editing {src}") for q, said, f, v, src in (
        ("delta 1 starts", "--progressive_start 20000", "progressive_start", 20000, "README training command"),
        ("steps per new delta", "--progressive_step_every 2000", "progressive_step_every", 2000,
         "options/train_options.py default"),
        ("delta regulariser norm", "‖w_i − w_0‖₂ (not squared)", "delta_norm", 2, "--delta_norm default"),
        ("delta regulariser λ", "--delta_norm_lambda 2e-4", "delta_norm_lambda", 2e-4, "options default"),
        ("latent D λ", "--w_discriminator_lambda 0.1", "w_discriminator_lambda", 0.1, "README training command"),
        ("latent D learning rate", "Adam, --w_discriminator_lr 2e-5", "w_discriminator_lr", 2e-5, "options default"),
        ("latent D R1", "--r1 10 on real w", "r1", 10.0, "options default"),
        ("latent D R1 interval", "--d_reg_every 16 (lazy)", "d_reg_every", 16, "options default"),
        ("w pool", "--use_w_pool, --w_pool_size 50", "w_pool_size", 50, "README command + options default"),
        ("latent D depth", "LatentCodesDiscriminator(512, 4)", "d_layers", 4, "training/coach.py"),
        ("E's optimiser", "--optim_name ranger (RAdam + GC + Lookahead)", "optimizer", "ranger",
         "options default, training/ranger.py"))),
    Row("002 A.1 (e4e)", "learning rate", "e4e: --learning_rate 1e-4; Ko et al.'s P code: Adam 1e-4", "lr",
        ("ko-distill",), 1e-4, "code", "encoder4editing options default = scripts/train_pose_estimator.py"),
    Row("002 A.2 eq. (5)", "L_lpips weight", "L_lpips + λ_adv L_adv + λ_reg L_reg", "lpips_weight", ("ko-distill",),
        1.0),
    Row("002 A.2 eq. (5)", "λ_adv (image D)", "not given", "lambda_adv", ("ko-distill",), 0.1, "choice",
        "the magnitude of e4e's w_discriminator_lambda"),
    Row("002 A.2 eq. (5)", "λ_reg on ‖Δw‖²", "not given", "lambda_reg", ("ko-distill",), 2e-4, "choice",
        "the magnitude of e4e's delta_norm_lambda"),
    Row("002 A.1 (e4e)", "pixel ℓ2", "e4e: --l2_lambda 1 (the seed names LPIPS only)", "l2_weight", ("ko-distill",),
        1.0, "code", "encoder4editing options default; ID loss (e4e's id_lambda) left out: eq. (5) has none"),
    # ---------------------------------------------------------------- seed 003: LP3D
    Row("003 A2", "SR latent", "replaced with a constant 1", "generator.superres.latent", ("stage:lp3d-sr",), "one"),
    Row("003 A2", "SR latent of the student", "constant 1", "lp3d.sr_latent", ("distill:paper/lp3d",), "one"),
    Row("003 A2", "generator fine-tune length", "6.8M images", "run.kimg", ("stage:lp3d-sr",), 6800.0),
    Row("003 A2", "depth samples", "48 coarse + 48 fine in training", "generator.rendering.depth_resolution",
        ("train:ffhq512/eg3d",), 48),
    Row("003 A2", "depth samples (fine)", "48 coarse + 48 fine in training",
        "generator.rendering.depth_resolution_importance", ("train:ffhq512/eg3d",), 48),
    Row("003 §4.2", "λ1 (reference view)", "0.1", "loss.adv_ref", ("distill:paper/lp3d",), 0.1),
    Row("003 §4.2", "λ1 (multiview)", "0.025", "loss.adv_mv", ("distill:paper/lp3d",), 0.025),
    Row("003 §4.2", "λ2 (faces)", "1 with ArcFace identity (0 for cats)", "loss.identity", ("distill:paper/lp3d",),
        1.0),
    Row("003 §4.2", "batch", "32", "optim.batch", ("distill:paper/lp3d",), 32),
    Row("003 A2", "stage 1 length", "30k iterations", "lp3d.stage1_steps", ("distill:paper/lp3d",), 30000),
    Row("003 A2", "stage 1 reference views", "once every 10 tri-plane syntheses", "lp3d.stage1_ref_every",
        ("distill:paper/lp3d",), 10),
    Row("003 A2", "stage 2 reference views", "every 2 gradient passes", "lp3d.stage2_ref_every",
        ("distill:paper/lp3d",), 2),
    Row("003 A2", "both views every step from", "37.5k iterations", "lp3d.both_every_step_from",
        ("distill:paper/lp3d",), 37500),
    Row("003 A2", "total iterations", "220k", "run.steps", ("distill:paper/lp3d",), 220000),
    Row("003 A2", "stage 2 feature loss", "removed", "lp3d.stage2_feature", ("distill:paper/lp3d",), 0.0),
    Row("003 A2", "stage 2 tri-plane weight", "unreadable in the supplement", "lp3d.stage2_triplane",
        ("distill:paper/lp3d",), 0.1, "choice", "the digits left legible"),
    Row("003 A2", "encoder lr", "1e-4", "optim.lr", ("distill:paper/lp3d",), 1e-4),
    Row("003 A2", "Transformer lr", "5e-5", "optim.lr_transformer", ("distill:paper/lp3d",), 5e-5),
    Row("003 A2", "D", "the same settings as EG3D", "optim.dlr", ("distill:paper/lp3d",), 0.002),
    Row("003 §4.2", "reference yaw range", "49°", "cameras.yaw_range_deg", ("distill:paper/lp3d",), 49.0, "choice",
        "read as U(±49°): the paper gives ranges, not distributions"),
    Row("003 §4.2", "reference pitch range", "26°", "cameras.pitch_range_deg", ("distill:paper/lp3d",), 26.0, "choice",
        "read as U(±26°)"),
    Row("003 §4.2", "multiview yaw range", "36°", "cameras.mv_yaw_range_deg", ("distill:paper/lp3d",), 36.0, "choice",
        "read as U(±36°)"),
    Row("003 A2", "FFHQ focal σ", "normal, σ 1 about 18.83", "cameras.fov_std_deg", ("distill:paper/lp3d",), 1.0),
    Row("003 A2", "FFHQ radius σ", "normal about 2.7, σ 0.1", "cameras.radius_std", ("distill:paper/lp3d",), 0.1),
    Row("003 A2", "FFHQ principal point σ", "σ 14 px about 256 (at 512²)", "cameras.principal_std",
        ("distill:paper/lp3d",), 14 / 512),
    Row("003 A2", "FFHQ roll σ", "2°", "cameras.roll_std_deg", ("distill:paper/lp3d",), 2.0),
    Row("003 §5", "pose head", "none: poses from an off-the-shelf estimator [Deng et al.]", "pose_head",
        ("lp3d-model",), False),
    # ---------------------------------------------------------------- seed 004: TriPlaneNet supplement
    Row("004 A", "λ_m", "0.1", "loss.mirror", ("distill:paper/triplanenet-v2",), 0.1),
    Row("004 A eq. (5)", "σ(x_m)", "\"pre-trained network from [19]\" (unsup3d), 64² in, up to 256²", "random_init",
        ("distill:paper/triplanenet-v2",), False, "paper",
        "False: unsup3d's CelebA ConfNet is required (`weights add ... --name unsup3d-celeba`), frozen; as the "
        "public conf_map.py: flip channel of the original's map, mirrored; eq. (4)'s jointly trained σ only with "
        "--random-init"),
    Row("004 A", "λ1 = λ4 (L2 / L_symm)", "1.0", "loss.rec_l2", ("distill:paper/triplanenet-v2",), 1.0),
    Row("004 A", "λ4 (L_symm)", "1.0", "loss.symm", ("distill:paper/triplanenet-v2",), 1.0),
    Row("004 A", "λ2 (LPIPS)", "1.0", "loss.rec_lpips", ("distill:paper/triplanenet-v2",), 1.0),
    Row("004 A", "λ5 (mirror LPIPS)", "1.0", "loss.mirror_lpips", ("distill:paper/triplanenet-v2",), 1.0),
    Row("004 A", "λ3 (ID)", "0.1", "loss.rec_id", ("distill:paper/triplanenet-v2",), 0.1),
    Row("004 A", "λ6 (mirror ID)", "0.1", "loss.mirror_id", ("distill:paper/triplanenet-v2",), 0.1),
    Row("004 A", "batch", "3", "optim.batch", ("distill:paper/triplanenet-v2",), 3),
    Row("004 A", "optimiser", "Ranger (RAdam + Lookahead)", "optim.optimizer", ("distill:paper/triplanenet-v2",),
        "ranger"),
    *(Row("004 A", q, f"Ranger; triplanenet: {said}", f"optim.{f}", ("distill:paper/triplanenet-v1",
                                                                     "distill:paper/triplanenet-v2"), v, "code",
          f"anantarb/triplanenet training/ranger.py {src}") for q, said, f, v, src in (
        ("Ranger betas", "betas=(.95, 0.999)", "ranger_betas", (0.95, 0.999), "defaults (coach.py passes lr only)"),
        ("Ranger eps", "eps=1e-5", "ranger_eps", 1e-5, "default"),
        ("gradient centralisation", "use_gc=True, gc_conv_only=False: every weight of > 1 dim", "ranger_gc", True,
         "defaults"),
        ("Lookahead period", "k=6", "ranger_k", 6, "default"),
        ("Lookahead α", "alpha=0.5", "ranger_alpha", 0.5, "default"))),
    Row("004 A", "learning rate", "0.0001", "optim.lr", ("distill:paper/triplanenet-v2",), 1e-4),
    Row("004 A", "second branch from", "20K steps", "triplanenet.offset_start", ("distill:paper/triplanenet-v2",),
        20000),
    Row("004 A", "first branch frozen at", "500K", "triplanenet.psp_stop", ("distill:paper/triplanenet-v2",), 500000),
    Row("004 A", "total steps", "1.5M", "run.steps", ("distill:paper/triplanenet-v2",), 1500000),
    Row("004 A", "loss resolution", "256×256 except L_id", "triplanenet.loss_resolution",
        ("distill:paper/triplanenet-v2",), 256),
    Row("004 A", "synthetic samples", "no truncation (ψ = 1)", "run.truncation_psi", ("distill:paper/triplanenet-v2",),
        1.0),
    Row("004 A", "real / synthetic mix", "FFHQ plus 0–150K pre-rendered EG3D samples (Table 1)",
        "triplanenet.real_fraction", ("distill:paper/triplanenet-v2",), 0.5, "choice",
        "no per-batch ratio is given; half and half"),
    Row("004 A", "mirroring", "the training set augmented by mirroring", "triplanenet.mirror_prob",
        ("distill:paper/triplanenet-v2",), 0.5, "choice", "each item mirrored with probability 1/2"),
    Row("004 (code)", "adversarial stage", "from 600k, λ 0.005", "triplanenet.adv_start",
        ("distill:paper/triplanenet-v2",), 600000, "code", "anantarb/triplanenet train_v2 (methods.md §6.3)"),
)


def _config(target: Target) -> Any:
    kind, _, name = target.partition(":")
    if kind == "train":
        from .train.config import train_preset

        preset, method = name.split("/")
        return train_preset(preset, method)
    if kind == "stage":
        from .train.config import TRAIN_STAGES, train_preset

        return TRAIN_STAGES[name](train_preset("ffhq512"), "G.safetensors")
    if kind == "distill":
        from .encoders.config import DISTILL_PRESETS

        preset, arch = name.split("/")
        return DISTILL_PRESETS[preset](arch)
    if kind == "invert":
        from .invert.config import preset as invert_preset

        method, algorithm = name.split("/")
        return invert_preset(method, int(algorithm))
    if kind == "prior":
        from .cameras.priors import get_prior

        return get_prior(name)
    if kind == "lp3d-model":
        from .encoders.lp3d import LP3DConfig

        return LP3DConfig()
    if kind == "ko-distill":
        from .encoders.ko import KoDistillConfig

        return KoDistillConfig()
    raise ValueError(f"unknown recipe target {target!r}")


def value(target: Target, field: str) -> Any:
    """The value of `field` ('a.b', or 'a.b * c.d') in the config `target` names."""
    cfg = _config(target)
    resolve = getattr(cfg, "resolve_key", lambda key: key)  # a TrainConfig's method sections: `pof3d.x`
    parts = [reduce(getattr, resolve(f.strip()).split("."), cfg) for f in field.split("*")]
    return parts[0] if len(parts) == 1 else math.prod(parts)


def matches(actual: Any, expected: Any) -> bool:
    if isinstance(expected, float) and isinstance(actual, (int, float)) and not isinstance(actual, bool):
        return math.isclose(actual, expected, rel_tol=1e-9, abs_tol=1e-12)
    return actual == expected


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    return f"`{v}`" if isinstance(v, str) else str(v)


def render() -> str:
    """docs/recipes.md, every value read from the presets."""
    lines = [
        "# Recipes: what the seeds state, where it lives, what each preset holds",
        "",
        "Generated by `python3 -m gan3dkit.recipes > docs/recipes.md` from the presets; `tests/test_recipes.py` fails",
        "when a preset drifts from a row or this file from the presets. Kind: **paper** = the seed states it; "
        "**code** =",
        "the method's public code where the seed is silent (file named); **choice** = gan3dkit chooses, and says why.",
        "Presets: `train:<preset>/<method>` (`gan3dkit train --preset P --method M`), `stage:lp3d-sr`",
        "(`train --stage lp3d-sr`), `distill:<preset>/<arch>`, `invert:<method>/<algorithm>`, `prior:<name>` (pose",
        "priors; uniform yaw: `std` is the half-width), `lp3d-model` (LP3DConfig), `ko-distill` (KoDistillConfig).",
        "",
        "| seed, section | quantity | the seed says | config field | preset → value | kind |",
        "|---|---|---|---|---|---|",
    ]
    for r in ROWS:
        vals = "; ".join(f"{t} → {_fmt(value(t, r.field))}" for t in r.targets)
        kind = r.kind + (f": {r.why}" if r.why else "")
        lines.append(f"| {r.seed} | {r.quantity} | {r.stated} | `{r.field}` | {vals} | {kind} |")
    lines += [
        "",
        "Not in this table yet (their rows come with the changes that make them configurable): the architecture",
        "numbers (14 styles, skip taps 3/7/21/22, LP3D's 87M/63M encoders).",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    print(render(), end="")
