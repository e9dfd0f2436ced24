"""VivianSZF/pof3d snapshots (EG3D's persistence pickle with the learned pose mapping) -> the `pof3d` method.

The release is ``pickle.dump(dict(training_set_kwargs, G, D, G_ema, augment_pipe))`` of PoF3D's
``TriPlaneGeneratorPose`` (EG3D's tri-plane generator whose ``backbone.mapping`` is ``MappingNetworkPose``: the
StyleGAN2 mapping without a camera input plus ``affine_layer1/2`` reading (h, v) from w) and its
``DualDiscriminator`` (a camera head ``b4.cam_out1/2`` on the 4x4 features, the logits conditioned on the detached
prediction: ``c_dim`` 2). Facts from ``training/triplane_autopose.py``, ``training/networks_stylegan2.py``,
``training/dual_discriminator.py``, ``train.py`` at 6666513. Nothing from the file is run.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch

from ..methods.pof3d import PoF3DConfig, PoF3DMethodConfig
from ..networks import DiscriminatorConfig, GeneratorConfig, TriPlaneGenerator
from ..networks.config import LearnedPoseConfig
from ..networks.pose_heads import PoseHeadConfig, PoseHeadDiscriminator
from ..train.config import TrainConfig
from .eg3d import (
    EG3D_RECORD_CLASSES,
    NETWORKS,
    ArchitectureMismatch,
    Converted,
    check_tree,
    discriminator_config,
    generator_config,
    train_config,
)
from .encoders import load_mapped
from .torchfile import module_state
from .unpickler import PersistentRecord, read_pickle

POF3D_RECORD_CLASSES = EG3D_RECORD_CLASSES | {"TriPlaneGeneratorPose", "MappingNetworkPose"}
#: gan3dkit key prefix -> the release's (the pose mapping lives in G's mapping, D's camera head in its epilogue).
G_RENAMES = {"pose_mapping.fc0.": "backbone.mapping.affine_layer1.",
             "pose_mapping.fc1.": "backbone.mapping.affine_layer2.",
             "pose_mapping.fc.": "backbone.mapping.affine_layer."}  # fmt: skip
D_RENAMES = {"pose_head.fc0.": "b4.cam_out1.", "pose_head.fc1.": "b4.cam_out2."}


def release_key(key: str, renames: dict[str, str]) -> str:
    """The release's name of gan3dkit state-dict key ``key``."""
    for ours, theirs in renames.items():
        if key.startswith(ours):
            return theirs + key[len(ours) :]
    return key


def _refuse_unsupported(kw: dict[str, Any], rk: dict[str, Any], mk: dict[str, Any]) -> None:
    """Options of PoF3D's code with no gan3dkit counterpart are refused by name (none is used by the scripts)."""
    checks = [
        (kw.get("bg_kwargs") is not None, "bg_kwargs (--bg_modeling: the background NeRF)"),
        (int(mk.get("cam_dim", 2)) != 2, f"mapping_kwargs.cam_dim={mk.get('cam_dim')} (learned radius/fov)"),
        (bool(mk.get("learn_fov", False)) or bool(rk.get("learn_fov", False)), "learn_fov=True"),
        (bool(mk.get("uniform_sampling", False)), "mapping_kwargs.uniform_sampling=True (random poses)"),
        (not bool(rk.get("wrong", True)), "rendering_kwargs.wrong=False (PoF3D's (x,y), (x,z), (z,y) planes)"),
    ]
    bad = [what for hit, what in checks if hit]
    if bad:
        raise ArchitectureMismatch(f"G uses {', '.join(bad)}: gan3dkit's pof3d method has no counterpart")


def pof3d_generator_config(rec: PersistentRecord, tensors: dict[str, torch.Tensor], focal: float | None
                           ) -> GeneratorConfig:  # fmt: skip
    """EG3D's mapping of kwargs and shapes, plus PoF3D's differences: no camera input to the mapping (its
    ``embed_features`` is forced to 0), the learned pose, and SR resizing without antialiasing (PoF3D's
    super-resolution modules comment ``antialias`` out whatever ``sr_antialias`` says)."""
    kw, rk = rec.init_kwargs, dict(rec.init_kwargs.get("rendering_kwargs") or {})
    mk = dict(kw.get("mapping_kwargs") or {})
    _refuse_unsupported(kw, rk, mk)
    gen = generator_config(rec, tensors, focal)
    gen.mapping.c_dim, gen.c_gen_conditioning_zero, gen.superres.antialias = 0, True, False
    linear = bool(mk.get("linear_pose", False))
    clamp_h, clamp_v = rk.get("clamp_h"), rk.get("clamp_v")
    gen.learned_pose = LearnedPoseConfig(
        h_mean=math.pi / 2 if linear else float(rk.get("h_mean", math.pi / 2)),  # linear_pose adds pi/2 to both
        v_mean=math.pi / 2,
        linear=linear,
        lr_multiplier=float(mk.get("lr_multiplier_pose", 0.01)),
        clamp_h=None if clamp_h is None else (float(clamp_h[0]), float(clamp_h[1])),
        clamp_v=None if clamp_v is None else (float(clamp_v[0]), float(clamp_v[1])),
    )
    return gen


def pof3d_discriminator_config(rec: PersistentRecord, tensors: dict[str, torch.Tensor]
                               ) -> tuple[DiscriminatorConfig, int | None]:  # fmt: skip
    """EG3D's D mapping plus plain bilinear resizing of image_raw (PoF3D's ``filtered_resizing('antialiased')``
    has its antialias commented out) and the camera head's hidden width."""
    ek = dict(rec.init_kwargs.get("epilogue_kwargs") or {})
    if bool(ek.get("dis_linear_pose", False)):
        raise ArchitectureMismatch("D uses dis_linear_pose=True (a one-layer camera head): gan3dkit's has two")
    if "b4.cam_out1.weight" not in tensors:
        raise ArchitectureMismatch("D has no camera head (b4.cam_out1): PoF3D trained without --dis_cam_weight")
    disc = discriminator_config(rec)
    disc.raw_resize_mode = "none"
    hidden, features = tensors["b4.cam_out1.weight"].shape
    return disc, None if hidden == features // 2 else int(hidden)  # None: PoF3D's (and gan3dkit's) half width


def method_config(rk: dict[str, Any], head_hidden: int | None) -> PoF3DConfig:
    """The `pof3d` section from the loss settings PoF3D's train.py copies into rendering_kwargs."""
    flip_type = str(rk.get("flip_type", "flip_both"))
    if flip_type not in ("flip_both", "flip_both_shapenet"):
        raise ArchitectureMismatch(f"rendering_kwargs.flip_type={flip_type!r} has no gan3dkit counterpart")
    return PoF3DConfig(
        dis_cam_weight=float(rk.get("dis_cam_weight", 2.0)),
        pose_gd_weight=float(rk.get("pose_gd_weight", 1.0)),
        flip_to_dis=bool(rk.get("flip_to_dis", True)),
        flip_to_disd_weight=float(rk.get("flip_to_disd_weight", 1.0)),
        flip_type=flip_type,  # type: ignore[arg-type]
        head_hidden=head_hidden,
    )


def make_pose_d(cfg: TrainConfig) -> torch.nn.Module:
    """The pof3d method's D (as `build_pof3d` builds it) for a converted config."""
    if not isinstance(cfg.method, PoF3DMethodConfig):
        raise TypeError(f"make_pose_d needs a pof3d config, got {type(cfg.method).__name__}")
    return PoseHeadDiscriminator(cfg.discriminator, PoseHeadConfig(out_dim=2, hidden_dim=cfg.method.pof3d.head_hidden))


def _ours(path: Path, name: str, module: torch.nn.Module, tensors: dict[str, torch.Tensor],
          renames: dict[str, str]) -> dict[str, torch.Tensor]:  # fmt: skip
    """The file's tensors under gan3dkit's names, checked key by key (the report names the file's keys)."""
    load_mapped(module, tensors, lambda k: release_key(k, renames), name, path)
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def convert_pof3d_pickle(path: str | Path, focal: float | None = None, audit_source: bool = True) -> Converted:
    """Read a PoF3D snapshot (G, G_ema[, D]) without running it, for the `pof3d` method."""
    path = Path(path)
    data = read_pickle(path)
    if not isinstance(data, dict) or not all(k in data for k in ("G", "G_ema")):
        got = sorted(map(str, data)) if isinstance(data, dict) else type(data).__name__
        raise ArchitectureMismatch(f"{path}: not a PoF3D snapshot (expected a dict with G, G_ema[, D]; got {got})")
    trees, recs = {}, {}
    for name in NETWORKS:
        rec = data.get(name)
        if rec is None:
            continue
        want = "DualDiscriminator" if name == "D" else "TriPlaneGeneratorPose"
        if not isinstance(rec, PersistentRecord) or rec.class_name != want:
            what = rec.class_name if isinstance(rec, PersistentRecord) else type(rec).__name__
            hint = " (an EG3D snapshot: gan3dkit convert eg3d-pkl)" if what == "TriPlaneGenerator" else ""
            raise ArchitectureMismatch(f"{path}: {name} is a {what!r}; PoF3D's is {want}{hint}")
        trees[name], recs[name] = module_state(rec), rec
        check_tree(name, rec, trees[name], audit_source, POF3D_RECORD_CLASSES)
    notes = [f"not converted: {k}" for k in sorted(map(str, data)) if k not in NETWORKS and data[k] is not None]
    rk = dict(recs["G_ema"].init_kwargs.get("rendering_kwargs") or {})
    gen = pof3d_generator_config(recs["G_ema"], trees["G_ema"].tensors, focal)
    disc, hidden = pof3d_discriminator_config(recs["D"], trees["D"].tensors) if "D" in trees else (None, None)
    cfg = train_config(gen, disc, method="pof3d")
    if not isinstance(cfg.method, PoF3DMethodConfig):
        raise TypeError(f"the pof3d method's config is a {type(cfg.method).__name__}")
    cfg.method.pof3d = method_config(rk, hidden)
    if disc is None:
        notes.append("the file has no D: train --resume is not possible")
    try:
        cfg.validate()
    except ValueError as exc:
        raise ArchitectureMismatch(f"{path}: the converted config is inconsistent: {exc}") from None
    tensors = {}
    for name, tree in trees.items():
        if name == "D":
            tensors[name] = _ours(path, name, make_pose_d(cfg), tree.tensors, D_RENAMES)
        else:
            tensors[name] = _ours(path, name, TriPlaneGenerator(cfg.generator), tree.tensors, G_RENAMES)
    return Converted(cfg, tensors, gen.neural_rendering_resolution, {"kind": "pof3d-pkl"}, notes, make_pose_d)
