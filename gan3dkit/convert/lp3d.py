"""Dong142857/Live3DPortrait's released LP3D / LP3D-LT files -> a gan3dkit LP3D encoder checkpoint for `encode`.

The release is ``torch.save({encoder_state_dict, renderer_state_dict[, ...]})`` (``scripts/inference.py`` loads
these two): the state dict of ``EG3DInvEncoder`` (smp DeepLabV3's ``encoder.*`` / ``decoder.*`` without BN,
``F_encoder``, ``EHigh_encoder``, ``Final_encoder``) and of ``TriplaneRenderer`` (the fine-tuned OSG decoder and SR,
and the learned constant SR latent ``const``). The generator is not in the file (the public code loads EG3D's
ffhq512-128 separately): ``--generator`` names a gan3dkit generator checkpoint (``convert eg3d-pkl``).
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import torch

from ..encoders.config import DistillConfig
from ..encoders.lp3d_release import LP3DReleaseConfig, LP3DReleaseEncoder, lt_defaults
from ..encoders.render import PlaneRenderer
from ..generate.loading import load_generator
from ..networks import DualDiscriminator
from .eg3d import ArchitectureMismatch, match_state
from .encoders import ConvertedEncoder, load_mapped
from .torchfile import read_torch_file

#: gan3dkit key prefix -> the release's (EG3DInvEncoder). Within blocks, smp's ``mlp.dwconv.dwconv``.
E_PREFIXES = (("backbone.", "encoder."), ("deeplab.", "decoder."), ("f_embed.", "F_encoder.patchembed."),
              ("f_blocks.", "F_encoder.blocks."), ("f_net.", "F_encoder.net."), ("high.", "EHigh_encoder.net."),
              ("final_net.", "Final_encoder.net."), ("final_embed.", "Final_encoder.pathembed."),
              ("final_block.", "Final_encoder.block."), ("output_net.", "Final_encoder.output_net."))  # fmt: skip
ASPP = {"branches.0.": "0.convs.0.0.", "branches.1.": "0.convs.1.0.", "branches.2.": "0.convs.2.0.",
        "branches.3.": "0.convs.3.0.", "pool.": "0.convs.4.1.", "project.": "0.project.0.", "conv.": "1."}  # fmt: skip
#: Stages smp's ResNet34 builds but encoder_depth 3 never runs (present in files written with smp <= 0.4).
UNUSED = re.compile(r"^encoder\.layer[34]\.")


def release_key(key: str) -> str:
    """The release's name of gan3dkit LP3D-release key ``key``."""
    for ours, theirs in E_PREFIXES:
        if key.startswith(ours):
            rest = key[len(ours) :]
            if ours == "deeplab.":
                rest = next(t + rest[len(o) :] for o, t in ASPP.items() if rest.startswith(o))
            rest = rest.replace(".downsample.", ".downsample.0.").replace("mlp.dwconv.", "mlp.dwconv.dwconv.")
            return theirs + rest
    return key


def release_config(sd: dict[str, torch.Tensor], triplane_resolution: int, triplane_channels: int
                   ) -> LP3DReleaseConfig:  # fmt: skip
    """Normal or LT and the widths from the file's shapes (LT's E_high has 7 convs). Not stored in the weights and
    taken from the release: the ASPP rates (12, 24, 36), the heads (4; fusion 2, sr 2) and the input size (twice
    the planes': 512 for EG3D's 256² planes)."""
    lt = "EHigh_encoder.net.12.weight" in sd
    out1 = f"Final_encoder.output_net.{3 if lt else 2}.weight"  # LT upsamples before its second conv
    need = ("encoder.conv1.weight", "encoder.layer2.0.conv1.weight", "decoder.1.weight",
            "F_encoder.patchembed.proj.weight", "F_encoder.net.0.weight", "EHigh_encoder.net.2.weight",
            "Final_encoder.net.0.weight", out1)  # fmt: skip
    missing = [k for k in need if k not in sd]
    if missing:
        raise ArchitectureMismatch(f"not an LP3D encoder_state_dict (no {', '.join(missing[:4])})")
    base = lt_defaults() if lt else LP3DReleaseConfig()

    def count(prefix: str) -> int:
        return len({k[len(prefix) :].split(".")[0] for k in sd if k.startswith(prefix)})

    shape = {k: int(sd[k].shape[0]) for k in need}
    return dataclasses.replace(
        base, input_resolution=2 * triplane_resolution, triplane_resolution=triplane_resolution,
        triplane_channels=triplane_channels,
        resnet_widths=(shape["encoder.conv1.weight"], shape["encoder.layer2.0.conv1.weight"]),
        resnet_blocks=(count("encoder.layer1."), count("encoder.layer2.")),
        deeplab_channels=shape["decoder.1.weight"], vit_dim=shape["F_encoder.patchembed.proj.weight"],
        f_blocks=count("F_encoder.blocks."), f_channels=shape["F_encoder.net.0.weight"],
        high_channels=shape["EHigh_encoder.net.2.weight"],
        fuse_channels=(shape["Final_encoder.net.0.weight"], shape[out1]),
    )  # fmt: skip


def convert_lp3d(path: str | Path, generator: str | Path) -> ConvertedEncoder:
    """Read a released LP3D / LP3D-LT file without running code; E, R (decoder, SR, const) and the given G."""
    path = Path(path)
    data = read_torch_file(path)
    if not isinstance(data, dict) or not isinstance(data.get("encoder_state_dict"), dict):
        got = sorted(map(str, data))[:8] if isinstance(data, dict) else type(data).__name__
        raise ArchitectureMismatch(f"{path}: not a Live3DPortrait checkpoint (expected encoder_state_dict, "
                                   f"renderer_state_dict; got {got})")  # fmt: skip
    sd = dict(data["encoder_state_dict"])
    unused = sorted(k for k in sd if UNUSED.match(k))
    sd = {k: v for k, v in sd.items() if k not in unused}
    G, tcfg = load_generator(generator, option="--generator")
    cfg = release_config(sd, G.config.triplane_resolution, G.config.triplane_channels)
    E = LP3DReleaseEncoder(cfg)
    load_mapped(E, sd, release_key, "LP3D encoder (encoder_state_dict)", path)
    notes = []
    if unused:
        n = sum(data["encoder_state_dict"][k].numel() for k in unused)
        notes.append(f"encoder.layer3/layer4 ({len(unused)} tensors, {n:,} parameters) are in the file but never run "
                     "(smp DeepLabV3 at encoder_depth 3): not converted")
    R = PlaneRenderer(G, "learned")
    rsd = data.get("renderer_state_dict")
    if not isinstance(rsd, dict):
        raise ArchitectureMismatch(f"{path}: no renderer_state_dict (the fine-tuned decoder, SR and const latent)")
    load_mapped(R, dict(rsd), lambda k: "const" if k == "const_w" else k, "LP3D renderer (renderer_state_dict)", path)
    arch = "lp3d-lt-release" if cfg.lt else "lp3d-release"
    dcfg = DistillConfig(arch=arch, size="paper", model=dict(cfg.__dict__), generator=Path(generator).name)
    dcfg.lp3d.sr_latent = "learned"
    dcfg.run.nrr = G.neural_rendering_resolution
    modules: dict[str, torch.nn.Module] = {"E": E, "G": G, "R": R}
    dis = data.get("discriminator_state")
    if isinstance(dis, dict) and dis:  # the coach's D (EG3D's dual D, fine-tuned on the encoder's renders)
        D = DualDiscriminator(dataclasses.replace(tcfg.discriminator, num_fp16_res=0))
        D.load_state_dict(match_state("discriminator_state", dict(dis), D))
        modules["D"] = D
    else:
        dcfg.loss.adv_ref = dcfg.loss.adv_mv = 0.0
        notes.append("no discriminator_state in the file: the adversarial losses are off for fine-tuning")
    for k in sorted(set(map(str, data)) - {"encoder_state_dict", "renderer_state_dict", "discriminator_state"}):
        notes.append(f"not converted: {k}")
    extra = {"generator_config": tcfg.to_dict(), "nrr": G.neural_rendering_resolution, "arch": arch,
             "backbone": f"released LP3D{'-LT' if cfg.lt else ''} weights ({path.name})",
             "identity": "n/a (converted)", "lpips": "n/a (converted)"}  # fmt: skip
    summary = {"arch": arch, "encoder_parameters": sum(p.numel() for p in E.parameters()),
               "file_encoder_parameters": sum(v.numel() for v in data["encoder_state_dict"].values())}  # fmt: skip
    return ConvertedEncoder(arch, modules, dcfg.to_dict(), extra, notes, summary)
