"""cvlab-kaist/3DGAN-Inversion's released initialisers -> gan3dkit Ko encoder files that ``invert`` loads.

- ``pose_estimator.pt`` / ``pose_estimator_quat.pt`` / ``pose_estimator_afhq.pt``: ``torch.save(resnet34(k)
  .state_dict())`` with k = 2 (euler), 4 (quaternion), 6 (6D, AFHQ); names as torchvision plus ``fc2``, ``fc3``.
- ``e4e_ffhq.pt`` / ``e4e_afhq.pt``: the state dict of ``DataParallel(pSp2())``: ``module.encoder.*`` of e4e's
  ``Encoder4Editing`` (IR-SE-50, 18 styles). e4e's own ``{state_dict: {encoder.*, decoder.*}, latent_avg}`` files
  are read too (the StyleGAN2 decoder and its latent_avg are not used).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..encoders.ko import KO_FORMAT, KO_VERSION, KoDistillConfig, save_ko_encoder
from ..encoders.ko_nets import ROT_DIMS, KoLatentEncoder, KoPoseEstimator
from ..utils.config import to_dict
from ..utils.files import sha256_file
from .eg3d import ArchitectureMismatch
from .encoders import four, irse_layout, load_mapped, read_state, split_prefix
from .writer import safetensors_out

REPRESENTATIONS = {v: k for k, v in ROT_DIMS.items()}
#: Ko et al.'s projector: radius 2.7, focal 4.2647 (FFHQ and AFHQ).
KO_RADIUS, KO_FOCAL = 2.7, 4.2647


def _header(arch: str, cfg: KoDistillConfig, path: Path, notes: list[str], **extra: Any) -> dict:
    return {"format": KO_FORMAT, "version": KO_VERSION, "arch": arch, "config": to_dict(cfg), "notes": notes,
            "converted_from": _source(path), "steps": 0, **extra}  # fmt: skip


def _source(path: Path) -> dict[str, str]:
    return {"file": path.name, "sha256": sha256_file(path)}


def convert_ko_pose(path: str | Path, out: str | Path, radius: float = KO_RADIUS, focal: float = KO_FOCAL) -> dict:
    """P: the representation is read from ``fc3``'s size, the ResNet depth from the ``layerN.M`` keys."""
    path = Path(path)
    sd, _ = read_state(path, "pose estimator")
    sd = {k.removeprefix("module."): v for k, v in sd.items()}
    fc3 = sd.get("fc3.weight")
    if fc3 is None or fc3.shape[0] not in REPRESENTATIONS or "conv1.weight" not in sd:
        raise ArchitectureMismatch(f"{path}: not a Ko et al. pose estimator (no conv1/fc3 with 2, 4 or 6 outputs)")
    blocks = four([len({k.split(".")[1] for k in sd if k.startswith(f"layer{i}.")}) for i in range(1, 5)],
                  f"{path}: ResNet blocks per stage")
    cfg = KoDistillConfig(representation=REPRESENTATIONS[int(fc3.shape[0])], width=int(sd["conv1.weight"].shape[0]),
                          blocks=blocks)  # fmt: skip
    net = KoPoseEstimator(cfg, radius, focal)
    load_mapped(net, sd, lambda k: k, "pose estimator", path)
    notes = [f"{cfg.representation} pose estimator; camera radius {radius}, focal {focal}"]
    header = _header("ko-pose", cfg, path, notes, radius=radius, focal=focal, w_dim=512)
    save_ko_encoder(net, header, safetensors_out(out))
    return {"out": str(out), "arch": "ko-pose", "kind": "ko-pose", "source": header["converted_from"],
            "representation": cfg.representation,
            "parameters": {"P": sum(p.numel() for p in net.parameters())}, "notes": notes}  # fmt: skip


def convert_e4e(path: str | Path, out: str | Path) -> dict:
    """E: e4e's encoder; the IR-SE layout and the number of styles come from the tensors."""
    path = Path(path)
    sd, _ = read_state(path, "e4e")
    notes: list[str] = []
    sd = {k.removeprefix("module."): v for k, v in sd.items()}
    enc = split_prefix(sd, "encoder.")
    other = sorted(k for k in sd if not k.startswith("encoder."))
    if other and all(k.startswith("decoder.") for k in other):
        notes.append(f"not converted: the StyleGAN2 decoder ({len(other)} tensors) and latent_avg of e4e's file")
    elif other:
        raise ArchitectureMismatch(f"{path}: unexpected keys (not encoder.*): {', '.join(other[:6])}")
    if "styles.0.linear.weight" not in enc:
        raise ArchitectureMismatch(f"{path}: not an e4e encoder (no encoder.styles.0.linear.weight)")
    widths, units = irse_layout(enc, "")
    styles = len({k.split(".")[1] for k in enc if k.startswith("styles.")})
    cfg = KoDistillConfig(irse_widths=widths, irse_units=units, e4e_styles=styles)
    w_dim = int(enc["styles.0.linear.weight"].shape[0])
    net = KoLatentEncoder(cfg, w_dim)
    src = {f"encoder.{k}": v for k, v in enc.items()} | {"w_avg": net.w_avg}
    load_mapped(net, src, lambda k: k, "e4e encoder", path)
    notes.append("w_avg comes from the generator when loaded (Ko et al.'s projector: 10,000 z, psi 0.7)")
    header = _header("ko-latent", cfg, path, notes, w_dim=w_dim, w_avg="generator")
    save_ko_encoder(net, header, safetensors_out(out))
    return {"out": str(out), "arch": "ko-latent", "kind": "e4e", "source": header["converted_from"], "styles": styles,
            "parameters": {"E": sum(p.numel() for p in net.parameters())}, "notes": notes}  # fmt: skip


