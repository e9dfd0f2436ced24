"""anantarb/triplanenet checkpoints (v1, v2) -> a gan3dkit TriPlaneNet encoder checkpoint that ``encode`` loads.

The released ``best_model.pt`` is ``torch.save({state_dict: TriPlaneNet.state_dict(), opts, best_val_loss, step,
*_optimizer[, dis_state_dict]})``; its state dict holds ``psp_encoder.*`` (pSp GradualStyleEncoder, IR-SE-50),
``triplanenet_encoder.*`` (the offset U-Net) and ``decoder.*`` (the EG3D generator it inverts). ``latent_avg`` is a
plain attribute of the public module, so it is only in the file when someone put it there; otherwise G's tracked
``w_avg`` is used (what EG3D's mean latent is) and a note says so.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import torch

from ..encoders.config import DistillConfig
from ..encoders.triplanenet import ConfidenceNet, TriPlaneNetConfig, TriPlaneNetEncoder
from ..networks import DualDiscriminator, TriPlaneGenerator
from ..train.config import train_preset
from .eg3d import ArchitectureMismatch, match_state
from .encoders import ConvertedEncoder, four, irse_layout, load_mapped, read_state, split_prefix

PREFIXES = ("psp_encoder.", "triplanenet_encoder.", "decoder.")


def tpn_file_key(key: str, version: int) -> str:
    """gan3dkit TriPlaneNetEncoder state-dict key -> the public ``TriPlaneNet`` state-dict key."""
    if key.startswith("psp."):
        return "psp_encoder." + key[4:]
    if key == "latent_avg":
        return key
    k = key[len("offsets.") :]
    k = re.sub(r"^up(\d)\.", r"up\1.conv.double_conv.", k)
    k = re.sub(r"^head\.", "final_head." if version == 1 else "final_head_two.", k)
    return "triplanenet_encoder." + k


def tpn_config(sd: dict[str, torch.Tensor], opts: dict, gen) -> TriPlaneNetConfig:
    """The released architecture, read from the tensor shapes (version, IR-SE layout, upsampling, widths).
    Input resolution: the public code's 256 (``max(64, min(256, img_resolution))`` for smaller generators)."""
    first = sd.get("triplanenet_encoder.input_layer.0.weight")
    if first is None or first.shape[1] not in (6, 9):
        raise ArchitectureMismatch("not a TriPlaneNet checkpoint: no triplanenet_encoder.input_layer.0.weight "
                                   "with 6 (v1) or 9 (v2) input channels")  # fmt: skip
    version = 1 if first.shape[1] == 6 else 2
    widths, units = irse_layout(sd, "psp_encoder.")
    owidths, ounits = irse_layout(sd, "triplanenet_encoder.")
    key = "triplanenet_encoder.up{}.conv.double_conv.1.weight"
    if not all(key.format(i) in sd for i in range(1, 5)):
        raise ArchitectureMismatch(f"not a TriPlaneNet checkpoint: {key.format('1..4')} missing")
    dec = four([int(sd[key.format(i)].shape[0]) for i in range(1, 5)], "triplanenet_encoder decoder widths")
    shuffle = version == 1 or sd[key.format(2)].shape[1] == dec[0] // 4 + owidths[2]
    if version == 2 and "use_pixelshuffle" in opts and bool(opts["use_pixelshuffle"]) != shuffle:
        raise ArchitectureMismatch(f"opts.use_pixelshuffle={opts['use_pixelshuffle']} but the U-Net shapes say "
                                   f"{'pixel shuffle' if shuffle else 'nearest'}")  # fmt: skip
    head_w = sd.get(f"triplanenet_encoder.{'final_head' if version == 1 else 'final_head_two'}.0.weight")
    num_ws = len({k.split(".")[2] for k in sd if k.startswith("psp_encoder.styles.")})
    if not num_ws or head_w is None:
        raise ArchitectureMismatch("not a TriPlaneNet checkpoint: no psp_encoder.styles.* or no final head")
    return TriPlaneNetConfig(
        version=version, input_resolution=max(64, min(256, gen.img_resolution)),
        triplane_resolution=gen.triplane_resolution, triplane_channels=gen.triplane_channels, num_ws=num_ws,
        w_dim=int(sd["psp_encoder.styles.0.linear.weight"].shape[0]), widths=widths, units=units,
        offset_widths=owidths, offset_units=ounits, decoder_widths=dec, head_channels=int(head_w.shape[0]),
        upsample="pixelshuffle" if shuffle else "nearest", pose_head=False,
    )  # fmt: skip


def convert_triplanenet(path: str | Path, preset: str = "ffhq512", nrr: int = 128) -> ConvertedEncoder:
    """Read a TriPlaneNet v1/v2 checkpoint without running code and build the gan3dkit encoder and generator."""
    sd, rest = read_state(path, "TriPlaneNet")
    opts = rest["opts"] if isinstance(rest.get("opts"), dict) else {}
    other = sorted(k for k in sd if not k.startswith(PREFIXES) and k != "latent_avg")
    if other:
        raise ArchitectureMismatch(f"{path}: unexpected keys (not psp_encoder/triplanenet_encoder/decoder): "
                                   f"{', '.join(other[:6])}")  # fmt: skip
    notes: list[str] = []
    tcfg = train_preset(preset)
    tcfg.generator.neural_rendering_resolution = nrr
    tcfg.loss.nrr_initial, tcfg.loss.nrr_final = nrr, None
    G = TriPlaneGenerator(tcfg.generator)
    dec = split_prefix(sd, "decoder.")
    if not dec:
        raise ArchitectureMismatch(f"{path}: no decoder.* (the EG3D generator TriPlaneNet inverts) in the file")
    try:
        G.load_state_dict(match_state("decoder", dec, G))
    except ArchitectureMismatch as exc:
        raise ArchitectureMismatch(f"{path}: {exc} (preset {preset}; pass --preset)") from None
    G.neural_rendering_resolution = nrr
    cfg = tpn_config(sd, opts, tcfg.generator)
    E = TriPlaneNetEncoder(cfg, G)
    src = dict(sd)
    if "latent_avg" in rest and torch.is_tensor(rest["latent_avg"]):
        src["latent_avg"] = rest["latent_avg"]
    if "latent_avg" in src:
        src["latent_avg"] = src["latent_avg"].reshape(-1, cfg.w_dim).expand(cfg.num_ws, -1).clone()
    else:
        src["latent_avg"] = G.backbone.mapping.w_avg.reshape(1, -1).repeat(cfg.num_ws, 1)
        notes.append("latent_avg is not in the file: G's w_avg is used (the mean latent the public code loads)")
    enc_src = {k: v for k, v in src.items() if not k.startswith("decoder.")}
    load_mapped(E, enc_src, lambda k: tpn_file_key(k, cfg.version), "TriPlaneNet encoder", path)
    arch = f"triplanenet-v{cfg.version}"
    dcfg = DistillConfig(
        arch=arch, size="paper", model=dataclasses.asdict(cfg), generator=f"{Path(path).name} (decoder.*)"
    )
    dcfg.run.nrr = nrr
    dcfg.optim.batch, dcfg.optim.optimizer = 3, "ranger"
    modules: dict[str, torch.nn.Module] = {"E": E, "G": G}
    if cfg.version == 2:
        dis = rest.get("dis_state_dict")
        if isinstance(dis, dict) and dis:
            D = DualDiscriminator(tcfg.discriminator)
            D.load_state_dict(match_state("dis_state_dict", dict(dis), D))
            modules["D"] = D
        else:
            dcfg.loss.adv_tpn = 0.0
            notes.append("no dis_state_dict in the file: the adversarial loss is off for fine-tuning (loss.adv_tpn 0)")
        modules["C"] = ConfidenceNet()
        notes.append("C (confidence net) is not part of the release (the public code reads unsup3d maps from disk): "
                     "it starts as distill-encoder starts it, trained jointly (eq. 4)")  # fmt: skip
    for k in sorted(set(rest) - {"opts", "latent_avg", "dis_state_dict"}):
        notes.append(f"not converted: {k}")
    extra = {"generator_config": tcfg.to_dict(), "nrr": nrr, "arch": arch,
             "backbone": f"released TriPlaneNet v{cfg.version} weights ({Path(path).name})",
             "identity": "n/a (converted)", "lpips": "n/a (converted)"}  # fmt: skip
    summary = {"arch": arch, "upsample": cfg.upsample, "preset": preset, "neural_rendering_resolution": nrr,
               "encoder_parameters": sum(p.numel() for p in E.parameters())}  # fmt: skip
    return ConvertedEncoder(arch, modules, dcfg.to_dict(), extra, notes, summary)
