"""Typed settings of every inversion stage (W/W+ projector, PTI tuning, Ko et al. pose optimisation), sources named."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..utils.config import from_dict, to_dict

METHODS = ("w", "wplus", "pti", "ko")
#: Seed 002 (Ko et al. supplement) algorithms: 1 = alternating w / pose with the warp loss, then tuning with depth
#: smoothness; 2 = fixed (given) camera, optional pivotal tuning; 3 = joint gradient descent on (w, pose).
ALGORITHMS = (1, 2, 3)
POSE_REPRESENTATIONS = ("euler", "quaternion", "6d")
PERCEPTUAL_CHOICES = ("auto", "vgg-lpips", "alex-lpips", "random-vgg-lpips", "none")


@dataclass
class ProjectorConfig:
    """The w / w+ projector (PTI `training/projectors/w_projector.py`, StyleGAN2-ADA `projector.py`).

    PTI configures `first_inv_lr = 5e-3` but overwrites it every step with the schedule below (peak 0.01); the peak
    is what ran, so it is the default here (reference methods.md §7.2). w_avg uses the *frontal* conditioning camera
    (methods.md §0), at `w_avg_psi`.
    """

    steps: int = 450
    """Optimisation steps (PTI `first_inv_steps` 450; EG3D-projector 500-1000; Ko et al. 400 incl. 50 pose-only)."""
    lr: float = 0.01
    """Peak learning rate of the ramp (PTI/StyleGAN projector `initial_learning_rate`)."""
    lr_rampdown: float = 0.25
    """Cosine ramp-down length as a fraction of the steps."""
    lr_rampup: float = 0.05
    """Linear ramp-up length as a fraction of the steps."""
    noise_factor: float = 0.05
    """w-noise std = noise_factor * sigma_w * max(0, 1 - t / noise_ramp)^2 (`initial_noise_factor`)."""
    noise_ramp: float = 0.75
    """Fraction of the steps over which the w-noise decays to zero (`noise_ramp_length`)."""
    noise_reg_weight: float = 1e5
    """Weight of the noise-buffer autocorrelation penalty (`regularize_noise_weight`)."""
    w_avg_samples: int = 600
    """z samples for w_avg and sigma_w (PTI passes 600; EG3D-projector 10,000; Ko et al. 5,000)."""
    w_avg_psi: float = 1.0
    """Truncation of those samples (PTI 1.0; Ko et al. 0.7)."""
    l2_weight: float = 0.0
    """Extra pixel MSE weight ([-1, 1] images); 0 in PTI's projector. With `perceptual none` (asked for) it is at
    least 1 (said in the report)."""
    perceptual_resolution: int = 256
    """Images larger than this are area-downsampled before the perceptual net (PTI: 256)."""
    optimize_noise: bool = True
    """Optimise the backbone's (and SR's) noise buffers, as PTI and Ko et al. do."""
    seed: int = 0
    """Seed of the w_avg samples, the w-noise and the noise-buffer initialisation."""


@dataclass
class TuneConfig:
    """Generator tuning with the pivot fixed (PTI `configs/hyperparameters.py`; Ko et al. stage 2)."""

    steps: int = 350
    """PTI `max_pti_steps` 350; Ko et al. 400."""
    lr: float = 3e-4
    """Adam learning rate on all generator parameters (`pti_learning_rate`)."""
    l2_weight: float = 1.0
    """`pt_l2_lambda`: MSE on [-1, 1] images."""
    lpips_weight: float = 1.0
    """`pt_lpips_lambda` (PTI uses LPIPS-alex)."""
    lpips_threshold: float = 0.06
    """Early stop when the (calibrated) LPIPS falls below it (`LPIPS_value_threshold`); off when uncalibrated."""
    lpips_resolution: int | None = 256
    """Images larger than this are area-downsampled before the tuning LPIPS; None = the target's full resolution.
    Ko et al. (stage 2, methods.md §4.4) compute it on the 512 SR image, and their 0.06 early stop assumes that: the
    ko preset sets None. 256 (the projector's resolution) stays for pti, gan3dkit's earlier choice."""
    raw_weight: float = 0.0
    """Ko et al. also apply L2 + LPIPS to `image_raw` vs the area-downsampled target (their value 1)."""
    depth_tv_weight: float = 0.0
    """Ko et al.'s depth smoothness mean((d00-d01)^2 + (d00-d10)^2) (their value 1; 0 in PTI)."""
    locality: bool = False
    """PTI locality regularisation (off by default in PTI and Ko et al.)."""
    locality_alpha: float = 30.0
    """w_r = w_p + alpha (w_z - w_p) / |w_z - w_p| (`regulizer_alpha`)."""
    locality_l2: float = 0.1
    """`regulizer_l2_lambda`."""
    locality_lpips: float = 0.1
    """`regulizer_lpips_lambda`."""
    locality_interval: int = 1
    """`locality_regularization_interval`."""
    locality_psi: float = 0.5
    """Truncation of w_z (PTI samples at 0.5)."""


@dataclass
class PoseOptConfig:
    """An inversion's pose optimisation, Ko et al. stage 1: pose and pivot together (seed 002 Alg. 1 / 3; code
    `training/coaches/base_coach.py`). Not `methods.posefree.PoseConfig`, which is a training run's pose prior."""

    representation: str = "quaternion"
    """Camera rotation parameters: 'quaternion' (the code's default estimator; keeps a given roll), 'euler' (yaw,
    pitch: the paper's theta/phi; a camera's roll, e.g. from PnP, is dropped at the start) or '6d' (Zhou et al.,
    seed 002 §A.1)."""
    lr: float = 3e-3
    """Adam lr of the pose tensor when optimised directly (Ko et al. fine-tune the estimator's weights instead at
    6e-7 / 6e-6; a free tensor needs a larger step). Used with `encoder_lr` when a pose encoder is given."""
    encoder_mode: str = "finetune"
    """With a pose encoder P: 'finetune' (Ko et al.'s code: P's weights are the pose variables, fine-tuned per
    image) or 'init' (P only initialises the free pose tensor)."""
    encoder_lr: float = 6e-6
    """Adam lr when the pose encoder's weights are fine-tuned per image (Ko et al.: 6e-6 for 2D/6D, 6e-7 quat)."""
    translation: bool = True
    """Learnable 3-vector translation (camera frame), renormalised to the radius (seed 002 §A.1, §B.2)."""
    translation_lr: float = 2e-4
    """Ko et al.'s translation lr."""
    warmup_steps: int = 50
    """Steps 0..warmup-1 update only the pose ('cam preheat'); the w schedule runs over the rest."""
    warp_weight: float = 1.0
    """Weight of the depth-based reprojection (warp) loss (Ko et al.: 1; 0 = the 'no warp' ablation)."""
    pose_image_weight: float = 0.0
    """Weight of the image loss in the pose step of Alg. 1. The paper's Alg. 1 line 6 drives the pose by the warp
    term only (0, the default); the public code sums everything into one loss that also drives the pose (1)."""
    warp_features: str = "auto"
    """'vgg-conv3_3' or 'auto' (torchvision VGG16 up to layer 15, as the code; ImageNet weights required) or 'rgb'
    (pixels; only when asked for, recorded in metrics.json)."""


def pose_mode(method: str, algorithm: int, pose_opt: bool) -> str:
    """Whether and how an inversion optimises the camera, decided here only: 'fixed' (PTI; Ko et al.'s Alg. 2 keeps
    the given camera), 'joint' (--pose-opt for w/wplus/pti; Alg. 3: one loss, one step on (w, pose)) or
    'alternating' (Alg. 1: w and pose steps in turn, with the warp loss). --pose-opt with Alg. 2 is a contradiction.
    """
    if method != "ko":
        return "joint" if pose_opt else "fixed"
    if algorithm == 2 and pose_opt:
        raise ValueError("--pose-opt contradicts --algorithm 2 (seed 002 Alg. 2 keeps the given camera fixed); "
                         "use --algorithm 1 or 3 to optimise the pose")
    return {1: "alternating", 3: "joint"}.get(algorithm, "fixed")


@dataclass
class InvertConfig:
    """One inversion: method, algorithm and the stage settings (saved as `config.json` beside the outputs)."""

    method: str = "w"
    """'w' / 'wplus' (projector only), 'pti' (w pivot + tuning), 'ko' (Ko et al.)."""
    algorithm: int = 1
    """For 'ko': seed 002 Alg. 1 (alternating w / pose + warp, then tuning with depth smoothness), Alg. 2 (given
    camera, pivotal tuning) or Alg. 3 (joint gradient descent on (w, pose), then tuning)."""
    pose_opt: bool = False
    """Optimise the pose in the projector of 'w'/'wplus'/'pti' too (Alg. 3 style); 'ko' decides by algorithm."""
    perceptual: str = "auto"
    """Projector / pose loss network: 'vgg-lpips' (NVIDIA's projector feature distance = LPIPS-VGG), 'alex-lpips',
    'random-vgg-lpips' (uncalibrated, for tests), 'none' (pixel L2 only) or 'auto' (VGG-LPIPS, pretrained: a
    missing backbone is an error naming `gan3dkit weights add`, never a fallback)."""
    tune_perceptual: str = "auto"
    """Tuning loss network; PTI uses LPIPS-alex. Same choices; 'auto' = alex-lpips, pretrained (else an error)."""
    deterministic_render: bool = True
    """No depth jitter / random importance samples while optimising (EG3D's projector uses the stochastic default;
    deterministic rendering makes the loss a function of the variables and the run reproducible)."""
    projector: ProjectorConfig = field(default_factory=ProjectorConfig)
    tune: TuneConfig = field(default_factory=TuneConfig)
    pose: PoseOptConfig = field(default_factory=PoseOptConfig)

    def validate(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"unknown method {self.method!r}; choose {', '.join(METHODS)}")
        if self.algorithm not in ALGORITHMS:
            raise ValueError(f"--algorithm must be 1, 2 or 3 (seed 002), got {self.algorithm}")
        pose_mode(self.method, self.algorithm, self.pose_opt)  # raises on a contradiction
        if self.method != "ko" and self.algorithm != 1:
            raise ValueError(f"--algorithm {self.algorithm} is for --method ko (seed 002's algorithms); --method "
                             f"{self.method} takes --pose-opt instead")
        if (self.method == "ko" and self.algorithm == 1 and self.pose.warp_weight <= 0
                and self.pose.pose_image_weight <= 0):
            raise ValueError("pose.warp_weight=0 with pose.pose_image_weight=0 leaves Alg. 1's pose step without a "
                             "loss; set pose.pose_image_weight=1 for the 'no warp' ablation")
        for name in ("perceptual", "tune_perceptual"):
            if getattr(self, name) not in PERCEPTUAL_CHOICES:
                raise ValueError(f"{name} must be one of {', '.join(PERCEPTUAL_CHOICES)}, got {getattr(self, name)!r}")
        if self.pose.representation not in POSE_REPRESENTATIONS:
            raise ValueError(f"pose representation must be one of {POSE_REPRESENTATIONS}")
        if self.pose.encoder_mode not in ("finetune", "init"):
            raise ValueError("pose.encoder_mode must be finetune or init")
        if self.pose.warp_features not in ("auto", "vgg-conv3_3", "rgb"):
            raise ValueError("pose.warp_features must be auto, vgg-conv3_3 or rgb")
        if self.projector.steps < 1 or self.tune.steps < 0:
            raise ValueError("projector.steps must be >= 1 and tune.steps >= 0")
        if self.optimizes_pose and self.pose.warmup_steps >= self.projector.steps:
            raise ValueError("pose.warmup_steps must be smaller than projector.steps")

    @property
    def pose_mode(self) -> str:
        """'fixed', 'joint' or 'alternating' (see `pose_mode`)."""
        return pose_mode(self.method, self.algorithm, self.pose_opt)

    @property
    def optimizes_pose(self) -> bool:
        return self.pose_mode != "fixed"

    @property
    def tunes_generator(self) -> bool:
        return self.method in ("pti", "ko") and self.tune.steps > 0

    def to_dict(self) -> dict:
        return to_dict(self)

    @classmethod
    def from_dict(cls, data: dict) -> InvertConfig:
        return from_dict(cls, data)


def preset(method: str, algorithm: int = 1) -> InvertConfig:
    """Defaults of each method's source: PTI (450 + 350 steps) for w/wplus/pti, Ko et al. (400 + 400) for ko."""
    cfg = InvertConfig(method=method, algorithm=algorithm)
    if method == "ko":
        cfg.projector = ProjectorConfig(steps=400, w_avg_samples=5000, w_avg_psi=0.7)
        cfg.tune = TuneConfig(steps=400, raw_weight=1.0, depth_tv_weight=1.0, lpips_resolution=None)
        if algorithm != 1:  # Alg. 2 / 3 are the 2D-inversion baselines: plain pivotal tuning, no warp, no preheat
            cfg.tune.raw_weight, cfg.tune.depth_tv_weight = 0.0, 0.0
            cfg.pose.warp_weight, cfg.pose.warmup_steps = 0.0, 0
    cfg.validate()
    return cfg
