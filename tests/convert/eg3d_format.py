"""Write pickles in NVIDIA's EG3D snapshot format from gan3dkit modules, without NVIDIA's code.

A persistent class pickles as GLOBAL ``torch_utils.persistence._reconstruct_persistent_obj`` + REDUCE of
``(meta,)``, meta = {type, version, module_src, class_name, state=__dict__}; plain classes (OSGDecoder, the
renderer, Sequential) as NEWOBJ + BUILD; tensors and parameters through torch's own reducers. Fake modules with
those names are put in ``sys.modules`` only while pickling.
"""

from __future__ import annotations

import contextlib
import pickle
import sys
import types
from collections import OrderedDict
from typing import Any

import torch

from gan3dkit.networks import DualDiscriminator, GeneratorConfig, TriPlaneGenerator

#: gan3dkit class name -> EG3D persistent class name (None: a plain class, pickled by reference).
EG3D_NAMES = {
    "TriPlaneGenerator": "TriPlaneGenerator",
    "StyleGAN2Backbone": "Generator",
    "MappingNetwork": "MappingNetwork",
    "FullyConnectedLayer": "FullyConnectedLayer",
    "SynthesisNetwork": "SynthesisNetwork",
    "SynthesisBlock": "SynthesisBlock",
    "SynthesisLayer": "SynthesisLayer",
    "ToRGBLayer": "ToRGBLayer",
    "SuperResolution2X": "SuperresolutionHybrid2X",
    "SuperResolution4X": "SuperresolutionHybrid4X",
    "SuperResolution8XDC": "SuperresolutionHybrid8XDC",
    "DualDiscriminator": "DualDiscriminator",
    "DiscriminatorBlock": "DiscriminatorBlock",
    "DiscriminatorEpilogue": "DiscriminatorEpilogue",
    "Conv2dLayer": "Conv2dLayer",
    "MinibatchStdLayer": "MinibatchStdLayer",
}
PLAIN = {
    "OSGDecoder": ("training.triplane", "OSGDecoder"),
    "ImportanceRenderer": ("training.volumetric_rendering.renderer", "ImportanceRenderer"),
    "RaySampler": ("training.volumetric_rendering.ray_sampler", "RaySampler"),
}
SOURCE = '''"""Stand-in module source (a test fixture; never executed by gan3dkit)."""
import torch
from torch_utils import persistence

@persistence.persistent_class
class {name}(torch.nn.Module):
    def __init__(self, *args, **kwargs):
        super().__init__()
'''


def _reconstruct_persistent_obj(meta):  # only its name is pickled
    raise AssertionError("never called")


class Record:
    """Pickles like an instance of a ``@persistence.persistent_class``."""

    def __init__(self, class_name: str, state: dict[str, Any], module_src: str | None = None) -> None:
        self.meta = {"type": "class", "version": 6, "class_name": class_name,
                     "module_src": module_src if module_src is not None else SOURCE.format(name=class_name),
                     "state": state}  # fmt: skip

    def __reduce__(self):
        return (_reconstruct_persistent_obj, (self.meta,))


class EasyDict(dict):
    """Pickles as dnnlib.util.EasyDict."""


_PLAIN_TYPES: dict[str, type] = {}


def _plain(key: str) -> type:
    if key not in _PLAIN_TYPES:
        module, name = PLAIN[key]
        _PLAIN_TYPES[key] = type(name, (), {"__module__": module, "__qualname__": name})
    return _PLAIN_TYPES[key]


@contextlib.contextmanager
def fake_modules():
    """Make pickle find the fake globals under NVIDIA's module names while dumping."""
    mods = {
        "torch_utils": types.ModuleType("torch_utils"),
        "torch_utils.persistence": types.ModuleType("torch_utils.persistence"),
        "dnnlib": types.ModuleType("dnnlib"),
        "dnnlib.util": types.ModuleType("dnnlib.util"),
    }
    _reconstruct_persistent_obj.__module__ = "torch_utils.persistence"
    mods["torch_utils.persistence"]._reconstruct_persistent_obj = _reconstruct_persistent_obj
    EasyDict.__module__ = "dnnlib.util"
    mods["dnnlib.util"].EasyDict = EasyDict
    for key in PLAIN:
        cls = _plain(key)
        parts = cls.__module__.split(".")
        for i in range(1, len(parts) + 1):
            mods.setdefault(".".join(parts[:i]), types.ModuleType(".".join(parts[:i])))
        setattr(mods[cls.__module__], cls.__name__, cls)
    saved = {k: sys.modules.get(k) for k in mods}
    sys.modules.update(mods)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v


def to_records(module: torch.nn.Module, kwargs: dict | None = None, extra: dict | None = None) -> Any:
    """A gan3dkit module tree as EG3D records/plain objects around its real parameters and buffers."""
    cls = type(module).__name__
    children = OrderedDict((n, to_records(m)) for n, m in module._modules.items())
    state = {
        "training": False,
        "_parameters": OrderedDict((n, p) for n, p in module._parameters.items()),
        "_buffers": OrderedDict((n, b) for n, b in module._buffers.items()),
        "_non_persistent_buffers_set": set(module._non_persistent_buffers_set),
        "_modules": children,
        "_forward_hooks": OrderedDict(),
        **(extra or {}),
    }
    if cls in ("Sequential", "Softplus"):
        obj = getattr(torch.nn, cls).__new__(getattr(torch.nn, cls))
        obj.__dict__.update(state)
        return obj
    if cls in PLAIN:
        obj = _plain(cls)()
        obj.__dict__.update(state)
        return obj
    if cls not in EG3D_NAMES:
        raise KeyError(f"no EG3D name for {cls}")
    state["_init_args"], state["_init_kwargs"] = (), dict(kwargs or {})
    return Record(EG3D_NAMES[cls], state)


def eg3d_kwargs(cfg: GeneratorConfig) -> dict[str, Any]:
    """EG3D train.py-style G kwargs for a gan3dkit GeneratorConfig."""
    r, sr = cfg.rendering, cfg.superres
    sr_name = {"2x": "SuperresolutionHybrid2X", "4x": "SuperresolutionHybrid4X", "8xdc": "SuperresolutionHybrid8XDC"}
    rendering = {
        "image_resolution": cfg.img_resolution, "disparity_space_sampling": False, "clamp_mode": "softplus",
        "superresolution_module": f"training.superresolution.{sr_name[sr.kind]}",
        "c_gen_conditioning_zero": cfg.c_gen_conditioning_zero, "gpc_reg_prob": None, "c_scale": cfg.c_scale,
        "superresolution_noise_mode": sr.noise_mode, "density_reg": 0.25, "density_reg_p_dist": 0.004,
        "reg_type": "l1", "decoder_lr_mul": r.decoder_lr_mul, "sr_antialias": sr.antialias,
        "depth_resolution": r.depth_resolution, "depth_resolution_importance": r.depth_resolution_importance,
        "ray_start": r.ray_start, "ray_end": r.ray_end, "box_warp": r.box_warp,
        "avg_camera_radius": r.avg_camera_radius, "avg_camera_pivot": list(r.avg_camera_pivot),
    }  # fmt: skip
    return {
        "z_dim": cfg.mapping.z_dim, "w_dim": cfg.mapping.w_dim, "c_dim": cfg.mapping.c_dim,
        "img_resolution": cfg.img_resolution, "img_channels": 3,
        "mapping_kwargs": EasyDict(num_layers=cfg.mapping.num_layers),
        "channel_base": cfg.synthesis.channel_base, "channel_max": cfg.synthesis.channel_max,
        "fused_modconv_default": "inference_only", "rendering_kwargs": rendering, "num_fp16_res": 0,
        "conv_clamp": None, "sr_num_fp16_res": sr.num_fp16_res,
        "sr_kwargs": EasyDict(channel_base=cfg.synthesis.channel_base, channel_max=cfg.synthesis.channel_max),
    }  # fmt: skip


def d_kwargs(D: DualDiscriminator) -> dict[str, Any]:
    c = D.config
    return {
        "c_dim": c.c_dim, "img_resolution": c.img_resolution, "img_channels": 3, "channel_base": c.channel_base,
        "channel_max": c.channel_max, "num_fp16_res": c.num_fp16_res, "conv_clamp": c.conv_clamp,
        "disc_c_noise": 0.0, "block_kwargs": EasyDict(freeze_layers=0),
        "mapping_kwargs": EasyDict(num_layers=c.mapping_layers),
        "epilogue_kwargs": EasyDict(mbstd_group_size=c.mbstd_group_size),
    }  # fmt: skip


def snapshot_bytes(G: TriPlaneGenerator, D: DualDiscriminator, G_ema: TriPlaneGenerator | None = None,
                   extra: dict | None = None, g_kwargs: dict | None = None, g_source: str | None = None,
                   g_class: str = "TriPlaneGenerator") -> bytes:  # fmt: skip
    """``pickle.dump(dict(training_set_kwargs, G, D, G_ema, augment_pipe))`` as EG3D's training loop writes it."""
    with fake_modules():
        def gen(m: TriPlaneGenerator) -> Any:
            attrs = {"neural_rendering_resolution": m.neural_rendering_resolution,
                     "rendering_kwargs": eg3d_kwargs(m.config)["rendering_kwargs"], "_last_planes": None}
            rec = to_records(m, {**eg3d_kwargs(m.config), **(g_kwargs or {})}, attrs)
            rec.meta["class_name"] = g_class
            if g_source is not None:
                rec.meta["module_src"] = g_source
            return rec

        data = {"training_set_kwargs": {"resolution": G.img_resolution, "use_labels": True},
                "G": gen(G), "D": to_records(D, d_kwargs(D)), "G_ema": gen(G_ema or G), "augment_pipe": None,
                **(extra or {})}  # fmt: skip
        return pickle.dumps(data, protocol=4)
