"""Output parity of `gan3dkit convert lp3d` against Dong142857/Live3DPortrait's own code (random weights).

Builds the public ``EG3DInvEncoder`` (``mode`` Normal = LP3D, LT = LP3D-LT; smp DeepLabV3-ResNet34 at
``encoder_depth`` 3 without BN) and ``TriplaneRenderer`` (OSG decoder, SR 8XDC, learned constant SR latent) from a
clone, gives every weight, bias and norm random values, saves them as the training coach does
(``torch.save({encoder_state_dict, renderer_state_dict, discriminator_state, opts, ...})``), converts the file
against a gan3dkit ffhq512 generator (random) whose decoder/SR the public renderer started from, and runs both on the
same images. Prints JSON: max abs differences of the tri-planes and of the renders (image, image_raw, depth).

    python tools/parity_lp3d.py --repo /path/to/Live3DPortrait --mode Normal LT

Needs what the public code imports: torchvision, segmentation_models_pytorch (the release era: 0.3.3, whose files
hold the never-run layer3/layer4), timm, einops. Run-time changes to the public code, none in the compared
computation: where torchvision's compiled ops cannot load beside this torch (a CUDA wheel next to a CPU torch),
their meta registrations are skipped (the Python ResNet is unchanged and calls none of them); smp's
``encoder_weights='imagenet'`` default is set to None (no download; every weight is replaced); EG3D's depth jitter
and importance sampling are made deterministic (``torch.rand_like`` -> 0, ``sample_pdf`` with ``det=True``), as
gan3dkit's ``deterministic`` render.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import tempfile
import time
import types
from pathlib import Path

import torch


def _import_torchvision() -> str:
    try:
        import torchvision
    except RuntimeError:  # "operator torchvision::nms does not exist": its C++ ops did not load
        for name in [m for m in sys.modules if m.startswith("torchvision")]:
            del sys.modules[name]
        real = torch.library.register_fake

        def skip_tv(op, *args, **kwargs):
            if isinstance(op, str) and op.startswith("torchvision::"):
                return lambda fn=None: fn
            return real(op, *args, **kwargs)

        torch.library.register_fake = skip_tv
        try:
            import torchvision
        finally:
            torch.library.register_fake = real
    return torchvision.__version__


def _public(repo: Path):
    sys.path.insert(0, str(repo))
    tv = _import_torchvision()
    import models.model as M
    import segmentation_models_pytorch as smp
    from models.eg3d.volumetric_rendering import renderer as R
    from segmentation_models_pytorch.decoders.deeplabv3 import DeepLabV3

    M.DeepLabV3 = functools.partial(DeepLabV3, encoder_weights=None)
    zeros = types.SimpleNamespace(**{k: getattr(torch, k) for k in dir(torch) if not k.startswith("__")})
    zeros.rand_like = torch.zeros_like
    R.torch = zeros
    R.ImportanceRenderer.sample_pdf = functools.partialmethod(R.ImportanceRenderer.sample_pdf, det=True)
    return M, {"torchvision": tv, "segmentation_models_pytorch": smp.__version__}


def _randomize(net: torch.nn.Module, gen: torch.Generator) -> None:
    with torch.no_grad():
        for name, p in net.named_parameters():
            if name.endswith("bias"):
                p.normal_(0, 0.02, generator=gen)
            elif p.ndim == 1:  # LayerNorm weights
                p.uniform_(0.8, 1.2, generator=gen)


def _rendering_kwargs(G) -> dict:
    r = G.config.rendering
    return {"image_resolution": G.config.img_resolution, "disparity_space_sampling": False, "clamp_mode": "softplus",
            "sr_antialias": True, "depth_resolution": r.depth_resolution,
            "depth_resolution_importance": r.depth_resolution_importance, "ray_start": r.ray_start,
            "ray_end": r.ray_end, "box_warp": r.box_warp, "avg_camera_radius": r.avg_camera_radius,
            "avg_camera_pivot": list(r.avg_camera_pivot), "superresolution_noise_mode": "none"}  # fmt: skip


def compare(repo: Path, mode: str, seed: int = 0, batch: int = 1) -> dict:
    os.environ.setdefault("GAN3DKIT_NO_EXTENSION", "1")
    from gan3dkit.convert.lp3d import convert_lp3d
    from gan3dkit.generate.views import view_cameras
    from gan3dkit.networks import TriPlaneGenerator
    from gan3dkit.train.checkpoint import save_checkpoint
    from gan3dkit.train.config import train_preset

    M, versions = _public(repo)
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    cfg = train_preset("ffhq512")
    G = TriPlaneGenerator(cfg.generator).eval()
    G.neural_rendering_resolution = 128
    enc = M.EG3DInvEncoder(in_channels=5, encoder_name="resnet34", encoder_depth=3, mode=mode, use_bn=False).eval()
    ren = M.TriplaneRenderer(img_resolution=512, img_channels=3, rendering_kwargs=_rendering_kwargs(G)).eval()
    ren.decoder.load_state_dict(G.decoder.state_dict())
    ren.superresolution.load_state_dict(G.superresolution.state_dict())
    _randomize(enc, gen)
    _randomize(ren, gen)
    with tempfile.TemporaryDirectory() as tmp:
        gpath, path = Path(tmp) / "G.safetensors", Path(tmp) / f"lp3d_{mode}.pt"
        save_checkpoint(gpath, {"G_ema": G}, {}, cfg.to_dict(), {"nrr": 128}, include_rng=False)
        torch.save({"encoder_state_dict": enc.state_dict(), "renderer_state_dict": ren.state_dict(),
                    "opts": {"mode": mode}, "best_val_loss": None, "step": 0}, path)  # fmt: skip
        t0 = time.time()
        conv = convert_lp3d(path, gpath)
        t_conv = time.time() - t0
    E, Rg = conv.modules["E"].eval(), conv.modules["R"].eval()
    img = torch.rand(batch, 3, 64, 64, generator=gen) * 2 - 1
    img = torch.nn.functional.interpolate(img, size=(512, 512), mode="bilinear", align_corners=False)
    cams = view_cameras(G, [0.35], 0.1, torch.device("cpu")).to_label().expand(batch, -1).contiguous()
    with torch.no_grad():
        ours = E(img).planes
        theirs = enc(img)
        r_ours = Rg(ours, cams, 128, deterministic=True)
        r_theirs = ren.synthesis(theirs, cams, neural_rendering_resolution=128)
    diffs = {"triplanes": (ours.reshape(theirs.shape) - theirs).abs().max().item()}
    for key in ("image", "image_raw", "image_depth"):
        diffs[key] = (r_ours[key] - r_theirs[key]).abs().max().item()
    return {"mode": mode, "repo": str(repo), "seed": seed, "batch": batch, "versions": versions,
            "max_abs_diff": diffs, "largest_value": {"triplanes": theirs.abs().max().item(),
                                                     "image": r_theirs["image"].abs().max().item()},
            "parameters": {"public encoder": sum(p.numel() for p in enc.parameters()),
                           "gan3dkit E": sum(p.numel() for p in E.parameters()),
                           "public renderer": sum(p.numel() for p in ren.parameters()),
                           "gan3dkit R": sum(p.numel() for p in Rg.parameters())},
            "notes": conv.notes, "convert_seconds": round(t_conv, 2), "torch": torch.__version__}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repo", type=Path, required=True, help="local clone of Dong142857/Live3DPortrait")
    ap.add_argument("--mode", nargs="+", default=["Normal", "LT"], choices=["Normal", "LT"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch", type=int, default=1)
    args = ap.parse_args()
    print(json.dumps([compare(args.repo, m, args.seed, args.batch) for m in args.mode], indent=2))


if __name__ == "__main__":
    main()
