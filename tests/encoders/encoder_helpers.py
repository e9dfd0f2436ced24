"""Shared builders for the encoder tests (a micro generator checkpoint, a micro distillation config)."""

from __future__ import annotations

import copy

import torch

torch.set_num_threads(1)

MICRO_G = [
    "generator.img_resolution=32",
    "generator.neural_rendering_resolution=16",
    "loss.nrr_initial=16",
    "generator.triplane_resolution=32",
    "generator.triplane_channels=8",
    "generator.rendering.depth_resolution=6",
    "generator.rendering.depth_resolution_importance=6",
    "generator.superres.channels=[16, 8]",
    "discriminator.img_resolution=32",
    "discriminator.channel_base=256",
    "discriminator.channel_max=32",
]


def make_generator_ckpt(path, seed: int = 0, with_d: bool = True):
    from gan3dkit.networks import DualDiscriminator, TriPlaneGenerator
    from gan3dkit.train.checkpoint import save_checkpoint
    from gan3dkit.train.config import train_preset
    from gan3dkit.utils.config import apply_overrides

    cfg = apply_overrides(train_preset("tiny"), MICRO_G)
    torch.manual_seed(seed)
    G = TriPlaneGenerator(cfg.generator).eval()
    mods = {"G_ema": G}
    if with_d:
        mods["D"] = DualDiscriminator(cfg.discriminator)
    save_checkpoint(path, mods, {}, cfg.to_dict(), {"nrr": 16}, include_rng=False)
    return path


def micro_distill(arch: str, gen, out, **sections):
    """tiny preset made smaller still: 32² encoder input, batch 2, ticks every step."""
    from gan3dkit.encoders.config import tiny_distill

    cfg = tiny_distill(arch)
    cfg.generator, cfg.out = str(gen), str(out)
    cfg.random_init = True  # no pretrained files in CI: said explicitly, as a user would
    cfg.model = {"input_resolution": 32}
    cfg.optim.batch = 2
    cfg.run.tick_steps, cfg.run.snapshot_ticks, cfg.run.val_samples, cfg.run.cpu_threads = 1, 1, 2, 1
    for key, value in sections.items():
        section, name = key.split("__")
        setattr(getattr(cfg, section), name, value)
    return copy.deepcopy(cfg)


def ko_micro_ckpt(tmp_path, with_d: bool):
    """A 32² tiny generator checkpoint (with or without D) for Ko et al.'s P / E, and the loaded G."""
    from gan3dkit.generate.loading import load_generator
    from gan3dkit.networks import DualDiscriminator, TriPlaneGenerator
    from gan3dkit.train.checkpoint import save_checkpoint
    from gan3dkit.train.config import train_preset
    from gan3dkit.utils.config import apply_overrides

    cfg = apply_overrides(train_preset("tiny"), ["generator.img_resolution=32",
                                                 "generator.neural_rendering_resolution=16",
                                                 "generator.triplane_resolution=32", "discriminator.img_resolution=32"])
    torch.manual_seed(0)
    mods = {"G_ema": TriPlaneGenerator(cfg.generator).eval()}
    if with_d:
        mods["D"] = DualDiscriminator(cfg.discriminator)
    path = save_checkpoint(tmp_path / "ck.safetensors", mods, {}, cfg.to_dict(), {"nrr": 16}, include_rng=False)
    return path, load_generator(path)[0]


def ko_small(**kw):
    """KoDistillConfig at test size (random init, micro ResNet / IR-SE)."""
    from gan3dkit.encoders.ko import KoDistillConfig

    base = {"batch": 4, "pairs": 4, "resolution": 32, "width": 8, "blocks": (1, 1, 1, 1), "lr": 3e-3,
            "irse_widths": (8, 12, 16, 24), "irse_units": (1, 1, 2, 1), "e4e_styles": 6, "random_init": True}
    return KoDistillConfig(**{**base, **kw})
