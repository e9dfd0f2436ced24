"""Write pickles in VivianSZF/pof3d's snapshot format (EG3D's records, PoF3D's names) from gan3dkit modules."""

from __future__ import annotations

import copy
import pickle
from typing import Any

import torch

from gan3dkit.networks import DualDiscriminator, TriPlaneGenerator
from gan3dkit.networks.pose_heads import PoseHeadDiscriminator

from .eg3d_format import SOURCE, EasyDict, d_kwargs, eg3d_kwargs, fake_modules, to_records

#: What PoF3D's train.py copies into rendering_kwargs for ffhq.sh besides EG3D's keys.
POF3D_RENDERING = {"h_mean": 1.5707963267948966, "wrong": True, "dis_cam_weight": 2.0, "pose_gd_weight": 1.0,
                   "flip_to_dis": True, "flip_to_disd": True, "flip_to_disd_weight": 1.0, "flip_type": "flip_both",
                   "detach_w_superres": False, "rnd_pose_ford": False, "learn_fov": False}  # fmt: skip


def g_kwargs(G: TriPlaneGenerator, **over: Any) -> dict[str, Any]:
    cfg, lp = G.config, G.config.learned_pose
    assert lp is not None
    kw = eg3d_kwargs(cfg)
    kw["c_dim"], kw["bg_kwargs"] = 25, None
    kw["mapping_kwargs"] = EasyDict(num_layers=cfg.mapping.num_layers, linear_pose=lp.linear, cam_dim=2,
                                    learn_fov=False, uniform_sampling=False, lr_multiplier=cfg.mapping.lr_multiplier,
                                    lr_multiplier_pose=lp.lr_multiplier)  # fmt: skip
    kw["rendering_kwargs"] = {**kw["rendering_kwargs"], **POF3D_RENDERING}
    for key, value in over.items():
        if key in POF3D_RENDERING or key in ("clamp_h", "clamp_v"):
            kw["rendering_kwargs"][key] = value
        else:
            kw[key] = value
    return kw


def _g_record(G: TriPlaneGenerator, kwargs: dict[str, Any], pose_names: dict[str, str]) -> Any:
    cfg = copy.deepcopy(G.config)
    cfg.learned_pose = None
    plain = TriPlaneGenerator(cfg)
    plain.load_state_dict({k: v for k, v in G.state_dict().items() if not k.startswith("pose_mapping.")})
    attrs = {"neural_rendering_resolution": G.neural_rendering_resolution,
             "rendering_kwargs": kwargs["rendering_kwargs"], "_last_planes": None}  # fmt: skip
    rec = to_records(plain, kwargs, attrs)
    mapping = rec.meta["state"]["_modules"]["backbone"].meta["state"]["_modules"]["mapping"]
    for r, name in ((rec, "TriPlaneGeneratorPose"), (mapping, "MappingNetworkPose")):
        r.meta["class_name"], r.meta["module_src"] = name, SOURCE.format(name=name)
    for ours, theirs in pose_names.items():
        mapping.meta["state"]["_modules"][theirs] = to_records(G.pose_mapping._modules[ours])
    return rec


def _d_record(D: PoseHeadDiscriminator) -> Any:
    plain = DualDiscriminator(D.config)
    plain.load_state_dict({k: v for k, v in D.state_dict().items() if not k.startswith("pose_head.")})
    kwargs = d_kwargs(plain)
    kwargs["epilogue_kwargs"].update(dis_cam_weight=2.0, pose_gd_weight=1.0, dis_linear_pose=False)
    rec = to_records(plain, kwargs)
    b4 = rec.meta["state"]["_modules"]["b4"]
    b4.meta["state"]["_modules"]["cam_out1"] = to_records(D.pose_head.fc0)
    b4.meta["state"]["_modules"]["cam_out2"] = to_records(D.pose_head.fc1)
    return rec


def pof3d_snapshot_bytes(G: TriPlaneGenerator, D: PoseHeadDiscriminator | None, g_over: dict | None = None,
                         pose_names: dict[str, str] | None = None) -> bytes:  # fmt: skip
    """``pickle.dump(dict(training_set_kwargs, G, D, G_ema, augment_pipe))`` as PoF3D's training loop writes it;
    ``pose_names`` maps gan3dkit's pose-mapping layers to the file's (default: PoF3D's affine_layer1/2)."""
    names = pose_names or {"fc0": "affine_layer1", "fc1": "affine_layer2"}
    with fake_modules(), torch.no_grad():
        kwargs = g_kwargs(G, **(g_over or {}))
        data = {"training_set_kwargs": {"resolution": G.img_resolution, "use_labels": True},
                "G": _g_record(G, kwargs, names), "D": None if D is None else _d_record(D),
                "G_ema": _g_record(G, kwargs, names), "augment_pipe": None}  # fmt: skip
        return pickle.dumps(data, protocol=4)
