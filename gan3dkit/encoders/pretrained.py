"""Pretrained backbones for the encoders: ImageNet ResNet34 (LP3D with BN folded into convs; Ko et al.'s P as is),
IR-SE-50 (TriPlaneNet, e4e) and unsup3d's confidence net (TriPlaneNet v2).

Files come through ``metrics.weights.fetch`` (a user path or URL, an installed package, the cache filled by
``gan3dkit weights add``, or the standard URL). The papers start from them, so a missing file is an error
(``require_pretrained``) unless the run asks for ``--random-init``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, cast

import torch
from torch import Tensor, nn

from ..metrics.identity import ARCFACE
from ..metrics.weight_registry import RESNET34, UNSUP3D_CELEBA
from ..metrics.weights import fetch

if TYPE_CHECKING:
    from .psp import GradualStyleEncoder
    from .triplanenet import TriPlaneNetEncoder

IRSE50 = ARCFACE  # one registry entry for model_ir_se50.pth (metrics.weight_registry "ir-se50")


def _fold_bn(sd: dict[str, Tensor], conv: str, bn: str, eps: float = 1e-5) -> tuple[Tensor, Tensor]:
    """(weight, bias) of conv followed by inference-mode BN: w * g / sqrt(v + eps), beta - mean * g / sqrt(v + eps)."""
    scale = sd[f"{bn}.weight"] / torch.sqrt(sd[f"{bn}.running_var"] + eps)
    return sd[f"{conv}.weight"] * scale.view(-1, 1, 1, 1), sd[f"{bn}.bias"] - sd[f"{bn}.running_mean"] * scale


def load_resnet34_nobn(backbone: nn.Module, sd: dict[str, Tensor]) -> int:
    """Copy torchvision ResNet34 weights into ``ResNetNoBN`` with each BN folded into the conv before it.

    LP3D removes the batch norms and reintroduces conv biases; folding keeps the pretrained function at the start.
    The two coordinate input channels start at zero. Returns the number of tensors written.
    """
    own = backbone.state_dict()
    new: dict[str, Tensor] = {}
    w, b = _fold_bn(sd, "conv1", "bn1")
    w5 = torch.zeros_like(own["conv1.weight"])
    w5[:, :3] = w
    new["conv1.weight"], new["conv1.bias"] = w5, b
    for key in own:
        if not key.startswith("layer") or not key.endswith(".weight"):
            continue
        mod = key[: -len(".weight")]
        if mod.endswith("downsample"):
            new[key], new[f"{mod}.bias"] = _fold_bn(sd, f"{mod}.0", f"{mod}.1")
        else:
            new[key], new[f"{mod}.bias"] = _fold_bn(sd, mod, mod.replace("conv", "bn"))
    for key, value in new.items():
        if own[key].shape != value.shape:
            raise ValueError(
                f"pretrained {key} has shape {tuple(value.shape)}, the encoder needs {tuple(own[key].shape)}"
            )
    backbone.load_state_dict({**own, **new})
    return len(new)


def load_irse50_body(input_layer: nn.Module, body: nn.Module, sd: dict[str, Tensor]) -> int:
    """Copy pSp's IR-SE-50 (``input_layer.*``, ``body.N.*``) into a body of the same layout; extra input channels
    keep their init (TriPlaneNet's offset branch reads 6 or 9 channels; the public code fills them with randn)."""
    own = {**{f"input_layer.{k}": v for k, v in input_layer.state_dict().items()},
           **{f"body.{k}": v for k, v in body.state_dict().items()}}  # fmt: skip
    missing = sorted(k for k in own if k not in sd)
    if missing:
        raise ValueError(f"IR-SE-50 weights lack {len(missing)} tensors the encoder needs, e.g. {missing[:3]}")
    for k in list(own):
        v = sd[k]
        if k == "input_layer.0.weight" and own[k].shape[1] != v.shape[1]:
            own[k][:, : v.shape[1]] = v
        elif own[k].shape != v.shape:
            raise ValueError(f"IR-SE-50 {k} has shape {tuple(v.shape)}, the encoder needs {tuple(own[k].shape)}")
        else:
            own[k] = v
    input_layer.load_state_dict({k[12:]: v for k, v in own.items() if k.startswith("input_layer.")})
    body.load_state_dict({k[5:]: v for k, v in own.items() if k.startswith("body.")})
    return len(own)


def load_backbone_weights(encoder: nn.Module, family: str, source: str | Path | None) -> str:
    """Load the pretrained backbone of an encoder from ``source`` (path or URL); returns a one-line description."""
    spec = RESNET34 if family == "lp3d" else IRSE50
    path = fetch(spec, source)
    sd = torch.load(path, map_location="cpu", weights_only=True)
    if family == "lp3d":
        n = load_resnet34_nobn(cast(nn.Module, encoder.backbone), sd)
    else:
        tpn = cast("TriPlaneNetEncoder", encoder)
        n = load_irse50_body(tpn.psp.input_layer, tpn.psp.body, sd)
        n += load_irse50_body(tpn.offsets.input_layer, tpn.offsets.body, sd)
    return f"{spec.name} from {Path(path).name} ({n} tensors)"


def require_pretrained(what: str, load):
    """``load()``, or a one-line error naming ``gan3dkit weights add`` and ``--random-init`` if the file is missing."""
    from ..metrics.weights import WeightsUnavailable

    try:
        return load()
    except WeightsUnavailable as exc:
        raise WeightsUnavailable(f"{what}: {str(exc).split('. Options:')[0]}. The paper uses it pretrained: add the "
                                 "file with `gan3dkit weights add FILE` (see `gan3dkit weights list`), pass its path, "
                                 "or train from scratch with --random-init") from None


def load_ko_backbone(net: nn.Module, arch: str, source: str | Path | None) -> str:
    """Ko et al.'s inits: P from torchvision's ImageNet ResNet34 (conv1, bn1, layer1-4, fc: the same names, as
    ``resnet34(pretrained=True)``), E from IR-SE-50 (e4e's encoder init). Returns a one-line description."""
    spec = RESNET34 if arch == "ko-pose" else IRSE50
    path = fetch(spec, source)
    sd = torch.load(path, map_location="cpu", weights_only=True)
    if arch == "ko-pose":
        own = net.state_dict()
        part = {k: v for k, v in sd.items() if k in own and not k.startswith(("fc2.", "fc3."))}
        bad = [k for k, v in part.items() if v.shape != own[k].shape]
        if bad or len(part) < len([k for k in own if not k.startswith(("fc2.", "fc3."))]):
            raise ValueError(f"{path} is not a ResNet34 for this P (shape or key mismatch, e.g. {bad[:2]})")
        net.load_state_dict({**own, **part})
        n = len(part)
    else:
        e = cast("GradualStyleEncoder", net.encoder)
        n = load_irse50_body(e.input_layer, e.body, sd)
    return f"{spec.name} from {Path(path).name} ({n} tensors)"


def load_confidence(net: nn.Module, source: str | Path | None) -> str:
    """unsup3d's ConfNet into TriPlaneNet's confidence net, from its checkpoint (the ``netC`` entry) or a bare state
    dict; strict. Returns a one-line description."""
    path = fetch(UNSUP3D_CELEBA, source)
    sd = torch.load(path, map_location="cpu", weights_only=True)
    sd = sd.get("netC", sd)
    try:
        net.load_state_dict(sd)
    except RuntimeError as exc:
        raise ValueError(f"{path} is not unsup3d's ConfNet (netC): {str(exc).splitlines()[0]}") from None
    return f"{UNSUP3D_CELEBA.name} from {Path(path).name} ({len(sd)} tensors)"
