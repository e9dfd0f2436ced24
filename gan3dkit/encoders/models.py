"""The frozen teacher (generator + its D), the student (encoder, renderer, D, confidence net); encoder checkpoints."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from ..cameras.camera import Cameras
from ..generate.loading import load_generator
from ..networks import DualDiscriminator, TriPlaneGenerator
from ..train.checkpoint import CheckpointError, check_finite, expect_kind, load_tensors, read_header
from ..train.config import TrainConfig
from .base import CameraModel, EncoderOutput
from .config import DistillConfig
from .registry import arch_config, build_encoder, get_arch
from .render import PlaneRenderer

if TYPE_CHECKING:
    from ..metrics.perceptual_loss import PerceptualLoss
    from .losses import IdentityLoss


@dataclass
class Teacher:
    G: TriPlaneGenerator
    train_config: dict[str, Any]
    nrr: int
    cam: CameraModel
    D_state: dict[str, Tensor] | None = None
    path: str = ""

    def frontal_cameras(self, n: int, device: torch.device) -> Cameras:
        return self.cam.cameras(torch.zeros(n, 3, device=device))

    def frontal(self, n: int, device: torch.device) -> Tensor:  # [n, 25]: the mapping's input and file records
        return self.frontal_cameras(n, device).to_label()

    def mapping(self, z: Tensor, cams: Cameras, run: Any) -> Tensor:
        """ws for z; the mapping sees the frontal camera or the render camera (``run.conditioning``), as labels."""
        cond = self.frontal(len(z), z.device) if run.conditioning == "frontal" else cams.to_label()
        return self.G.mapping(z, cond, truncation_psi=run.truncation_psi)


def load_teacher(path: str | Path, device: torch.device, nrr: int | None = None) -> Teacher:
    """The generator (G_ema, frozen, eval) of a gan3dkit checkpoint, its rendering resolution and its D weights."""
    if not str(path):
        raise ValueError("no generator checkpoint given (--ckpt)")
    header = read_header(path)
    if "generator_config" in header.get("extra", {}):  # an encoder checkpoint (converted or distilled) carries its G
        tcfg = TrainConfig.from_dict(header["extra"]["generator_config"])
        G = TriPlaneGenerator(tcfg.generator)
        g_state = load_tensors(path, "G")
        check_finite(path, g_state, "G")
        G.load_state_dict(g_state)
        G = G.to(device).eval().requires_grad_(False)
        trained = int(header["extra"].get("nrr") or tcfg.loss.nrr_initial)
    else:
        G, tcfg = load_generator(path, device=device)
        trained = int(header.get("progress", {}).get("nrr", tcfg.loss.nrr_initial))
    G.neural_rendering_resolution = nrr or trained
    d_state = load_tensors(path, "D") or None
    if d_state is not None:
        check_finite(path, d_state, "D")
    return Teacher(G, tcfg.to_dict(), int(G.neural_rendering_resolution), CameraModel.from_generator(G), d_state,
                   str(path))  # fmt: skip


@dataclass
class Student:
    family: str
    encoder: nn.Module
    teacher: Teacher
    renderer: PlaneRenderer | None = None
    D: nn.Module | None = None
    conf: nn.Module | None = None
    provenance: dict[str, str] = field(default_factory=dict)
    lpips: PerceptualLoss | None = None
    identity: IdentityLoss | None = None

    def modules(self) -> dict[str, nn.Module]:
        mods: dict[str, nn.Module] = {"E": self.encoder, "G": self.teacher.G}
        for key, m in (("R", self.renderer), ("D", self.D), ("C", self.conf)):
            if m is not None:
                mods[key] = m
        return mods

    def eval(self) -> None:
        for k, m in self.modules().items():
            if k != "G":
                m.eval()

    def train(self) -> None:
        for k, m in self.modules().items():
            if k != "G":
                m.train()

    def encode(self, image: Tensor, camera: Cameras | Tensor | None = None) -> EncoderOutput:
        return self.encoder(image, camera)

    def render(self, out: EncoderOutput, cams: Cameras | Tensor, nrr: int, deterministic: bool = True
               ) -> dict[str, Tensor]:
        if self.renderer is not None:
            return self.renderer(out.planes, cams, nrr, deterministic=deterministic)
        assert out.ws is not None  # a W+ encoder (TriPlaneNet) when there is no plane renderer
        return self.teacher.G.render_planes(out.planes, cams, out.ws.detach(), neural_rendering_resolution=nrr,
                                            deterministic_render=deterministic)


def _discriminator(teacher: Teacher, device: torch.device) -> tuple[nn.Module, str]:
    dcfg = TrainConfig.from_dict(teacher.train_config).discriminator
    D = DualDiscriminator(dataclasses.replace(dcfg, num_fp16_res=0)).to(device)
    if teacher.D_state:
        D.load_state_dict(teacher.D_state, strict=True)
        return D, f"fine-tuned from the generator checkpoint's D ({teacher.path})"
    return D, "RANDOM INIT (the generator checkpoint has no D)"


def build_student(cfg: DistillConfig, teacher: Teacher, device: torch.device, training: bool = True) -> Student:
    """Encoder (+ renderer, D, confidence net) for ``cfg``; fills ``cfg.model`` with the resolved arch config.

    ``training=False`` (loading a checkpoint) skips pretrained files and the loss networks.
    """
    from .pretrained import load_backbone_weights, require_pretrained
    from .triplanenet import ConfidenceNet

    spec = get_arch(cfg.arch)
    model_cfg = arch_config(cfg.arch, teacher.G, cfg.size, cfg.model or None)
    cfg.model = dataclasses.asdict(model_cfg)
    enc = build_encoder(cfg.arch, model_cfg, teacher.G).to(device)
    prov = {"arch": cfg.arch, "backbone": "RANDOM INIT (--random-init; not calibrated)"}
    if training:
        prov["random_init"] = "yes (--random-init): nothing pretrained was loaded" if cfg.random_init else "no"
    if training and cfg.init_from:
        prov["backbone"] = f"from --init {Path(cfg.init_from).name}"
    elif training and not cfg.random_init:
        load = spec.load_backbone or (lambda e, source: load_backbone_weights(e, spec.family, source))
        prov["backbone"] = require_pretrained("encoder backbone", lambda: load(enc, cfg.backbone_weights))
    st = Student(spec.family, enc, teacher, provenance=prov)
    if spec.family == "lp3d":
        st.renderer = PlaneRenderer(teacher.G, cfg.lp3d.sr_latent).to(device).requires_grad_(True)
        uses_d = cfg.loss.adv_ref > 0 or cfg.loss.adv_mv > 0
    else:
        uses_d = model_cfg.version == 2 and cfg.loss.adv_tpn > 0
        if model_cfg.version == 2:
            st.conf = ConfidenceNet().to(device)
            if training and cfg.random_init and not cfg.confidence_weights:
                prov["confidence"] = "RANDOM INIT, trained jointly (eq. 4 likelihood) [--random-init]"
            elif training:
                from .pretrained import load_confidence

                desc = require_pretrained("confidence net", lambda: load_confidence(st.conf, cfg.confidence_weights))
                st.conf.requires_grad_(False)
                prov["confidence"] = f"pretrained, frozen (eq. 5): {desc}"
    if uses_d:
        st.D, prov["discriminator"] = _discriminator(teacher, device)
        st.D.requires_grad_(False)
    if training:
        from ..metrics.perceptual_loss import PerceptualLoss
        from .losses import IdentityLoss

        if cfg.random_init:
            st.lpips = PerceptualLoss.load(cfg.lpips_net, random_backbone=True).to(device)
            prov["lpips"] = st.lpips.description + " [--random-init]"
            prov["identity"] = "off (--random-init)"
        else:
            st.lpips = require_pretrained("LPIPS backbone",
                                          lambda: PerceptualLoss.load(cfg.lpips_net, cfg.lpips_backbone)).to(device)
            prov["lpips"] = st.lpips.description
            if cfg.loss.identity > 0:
                st.identity = require_pretrained("identity loss (ArcFace IR-SE-50)",
                                          lambda: IdentityLoss(cfg.identity_weights)).to(device)
                prov["identity"] = st.identity.description
    return st


def load_encoder(path: str | Path, device: str | torch.device = "cpu",
                 option: str = "--ckpt") -> tuple[Student, DistillConfig, dict]:  # fmt: skip
    """(student in eval mode, its DistillConfig, header) from a distill-encoder checkpoint (self-contained: the
    generator's weights and config are inside); refuses another kind of file and NaN/inf weights."""
    expect_kind(path, "encoder", option)
    header = read_header(path)
    try:
        cfg = DistillConfig.from_dict(header["config"])
        gcfg = TrainConfig.from_dict(header["extra"]["generator_config"])
    except (KeyError, ValueError) as exc:
        raise CheckpointError(f"{path} is not a distill-encoder checkpoint ({exc})") from None
    device = torch.device(device)
    G = TriPlaneGenerator(gcfg.generator).to(device)
    teacher = Teacher(G, gcfg.to_dict(), cfg.run.nrr or int(header["extra"].get("nrr", 0)) or 0,
                      CameraModel.from_generator(G), path=str(path))  # fmt: skip
    st = build_student(cfg, teacher, device, training=False)
    tensors = load_tensors(path)
    check_finite(path, {k: v for k, v in tensors.items() if k.split(".")[0] in st.modules()}, "encoder")
    for name, module in st.modules().items():
        sd = {k[len(name) + 1 :]: v for k, v in tensors.items() if k.startswith(name + ".")}
        missing, unexpected = module.load_state_dict(sd, strict=False)
        if missing or unexpected:
            raise CheckpointError(f"{path}: {name} does not match its config: {missing[:3]} {unexpected[:3]}")
    teacher.nrr = int(header["extra"].get("nrr") or gcfg.loss.nrr_initial)
    G.neural_rendering_resolution = teacher.nrr
    G.eval().requires_grad_(False)
    st.eval()
    st.provenance = {**header["extra"], **{k: v for k, v in st.provenance.items() if k == "arch"}}
    st.provenance.pop("generator_config", None)
    return st, cfg, header
