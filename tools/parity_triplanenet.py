"""Output parity of `gan3dkit convert triplanenet` against anantarb/triplanenet's own code (random weights).

Builds the public ``TriPlaneNet`` (v1 and/or v2) from a local clone, gives every weight, BN statistic and PReLU
slope random values, saves it exactly as the release does (``torch.save({state_dict, opts, best_val_loss, step,
*_optimizer})``), converts the file, and runs both networks on the same images and cameras. Prints JSON: max abs
differences of W+, tri-planes, the first-branch render and the final image, and the parameter counts.

    python3 tools/parity_triplanenet.py --repo /path/to/triplanenet --version 1 2

Run-time changes to the public code, none of which touches the compared computation:
- ``torchvision`` (imported by ``triplane_encoders_v2`` for an unused ``resnet34``) and ``models.stylegan2.op``
  (JIT-compiles CUDA at import; pSp's ``EqualLinear`` without activation never calls it) are stubbed;
- EG3D's depth jitter and importance sampling are made deterministic (``torch.rand_like`` -> 0, ``sample_pdf``
  with ``det=True``) on both sides, since EG3D always draws them at random.
"""

# ruff: noqa: C408 (EG3D_FFHQ512 mirrors EG3D's dict(...) kwargs)
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import types
from argparse import Namespace
from pathlib import Path

import torch

EG3D_FFHQ512 = dict(  # NVlabs/eg3d train.py for --cfg=ffhq at 512 (ffhq512-128.pkl)
    z_dim=512, c_dim=25, w_dim=512, img_resolution=512, img_channels=3, sr_num_fp16_res=4,
    mapping_kwargs=dict(num_layers=2), channel_base=32768, channel_max=512, fused_modconv_default="inference_only",
    num_fp16_res=0, conv_clamp=None,
    sr_kwargs=dict(channel_base=32768, channel_max=512, fused_modconv_default="inference_only"),
    rendering_kwargs=dict(
        image_resolution=512, disparity_space_sampling=False, clamp_mode="softplus",
        superresolution_module="models.eg3d.superresolution.SuperresolutionHybrid8XDC", c_gen_conditioning_zero=False,
        gpc_reg_prob=0.5, c_scale=1.0, superresolution_noise_mode="none", density_reg=0.25, density_reg_p_dist=0.004,
        reg_type="l1", decoder_lr_mul=1.0, sr_antialias=True, depth_resolution=48, depth_resolution_importance=48,
        ray_start=2.25, ray_end=3.3, box_warp=1, avg_camera_radius=2.7, avg_camera_pivot=[0, 0, 0.2],
    ),
)  # fmt: skip


def _stub_imports() -> None:
    tv = types.ModuleType("torchvision")
    tv.models = types.ModuleType("torchvision.models")
    tv.models.resnet34 = lambda *a, **k: (_ for _ in ()).throw(RuntimeError("torchvision stub"))
    sys.modules.update({"torchvision": tv, "torchvision.models": tv.models})
    op = types.ModuleType("models.stylegan2.op")

    def never(*a, **k):
        raise RuntimeError("models.stylegan2.op stub: the compiled StyleGAN2 op was called")

    op.FusedLeakyReLU, op.fused_leaky_relu, op.upfirdn2d = never, never, never
    sys.modules["models.stylegan2.op"] = op


def _deterministic_public_renderer() -> None:
    import functools

    from models.eg3d.volumetric_rendering import renderer as R

    zeros = types.SimpleNamespace(**{k: getattr(torch, k) for k in dir(torch) if not k.startswith("__")})
    zeros.rand_like = torch.zeros_like
    R.torch = zeros  # sample_stratified's jitter only; everything else is torch itself
    R.ImportanceRenderer.sample_pdf = functools.partialmethod(R.ImportanceRenderer.sample_pdf, det=True)


def _randomize(module: torch.nn.Module, gen: torch.Generator) -> None:
    """Random BN affine/statistics and PReLU slopes (conv/linear weights keep their random init)."""
    for m in module.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.weight.data.uniform_(0.5, 1.5, generator=gen)
            m.bias.data.normal_(0, 0.1, generator=gen)
            m.running_mean.normal_(0, 0.1, generator=gen)
            m.running_var.uniform_(0.5, 1.5, generator=gen)
        elif isinstance(m, torch.nn.PReLU):
            m.weight.data.uniform_(0.05, 0.4, generator=gen)
        elif isinstance(m, torch.nn.Conv2d) and m.bias is not None:
            m.bias.data.normal_(0, 0.05, generator=gen)


def build_public(repo: Path, version: int, work: Path, seed: int, pixelshuffle: bool = False):
    """The public TriPlaneNet with random weights, and the file saved as the release saves it."""
    from configs.paths_config import model_paths
    from models.eg3d.triplane import TriPlaneGenerator

    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    G = TriPlaneGenerator(**EG3D_FFHQ512).eval()
    G.backbone.mapping.w_avg.normal_(0, 0.5, generator=gen)
    eg3d = work / "ffhq512-128.pth"
    torch.save({"G_ema": G.state_dict(), "init_kwargs": EG3D_FFHQ512, "latent_avg": G.backbone.mapping.w_avg}, eg3d)
    model_paths["eg3d_ffhq"] = str(eg3d)
    if version == 1:
        from models.triplanenet import TriPlaneNet
    else:
        from models.triplanenet_v2 import TriPlaneNet
    mod = sys.modules[TriPlaneNet.__module__]
    mod.TriPlaneNet.load_weights = lambda self: None  # the IR-SE-50 init is replaced by random weights below
    opts = Namespace(n_styles=14, device="cpu", checkpoint_path=None, use_pixelshuffle=pixelshuffle, exp_dir=str(work))
    net = TriPlaneNet(opts).eval()
    _randomize(net.psp_encoder, gen)
    _randomize(net.triplanenet_encoder, gen)
    opt_t = torch.optim.Adam(net.triplanenet_encoder.parameters(), lr=1e-4)
    opt_p = torch.optim.Adam(net.psp_encoder.parameters(), lr=1e-4)
    path = work / f"triplanenet_v{version}.pt"
    torch.save({"state_dict": net.state_dict(), "opts": vars(opts), "best_val_loss": None, "step": 0,
                "triplane_optimizer": opt_t.state_dict(), "psp_optimizer": opt_p.state_dict()}, path)  # fmt: skip
    return net, path


def public_outputs(net, version: int, x: torch.Tensor, cam: torch.Tensor, cam_m: torch.Tensor) -> dict:
    import torch.nn.functional as F

    with torch.no_grad():
        codes = net.psp_encoder(x) + net.latent_avg.repeat(x.shape[0], 1, 1)
        base = net.decoder.backbone.synthesis(codes, noise_mode="const")
        y0 = F.adaptive_avg_pool2d(net.decoder.synthesis(codes, cam, noise_mode="const")["image"], (256, 256))
        if version == 1:
            offsets = net.triplanenet_encoder(torch.cat([y0, x - y0], 1))
            planes = base + offsets
        else:
            ym = F.adaptive_avg_pool2d(net.decoder.synthesis(codes, cam_m, noise_mode="const")["image"], (256, 256))
            out = net(x, cam, cam_m, x_mirror=x.flip(-1))
            planes = out["triplane_offsets"]
            assert torch.equal(out["latent_codes"], codes)
        img = net.decoder.synthesis(codes, cam, triplane_offsets=planes - base if version == 1 else planes,
                                    noise_mode="const")["image"]  # fmt: skip
    res = {"ws": codes, "planes": planes, "y_hat_psp": y0, "image": img}
    if version == 2:
        res["y_hat_psp_mirror"] = ym
    return res


def ours(path: Path, work: Path, x: torch.Tensor, cam: torch.Tensor, cam_m: torch.Tensor, version: int) -> tuple:
    from gan3dkit.convert.encoders import write_encoder
    from gan3dkit.convert.triplanenet import convert_triplanenet
    from gan3dkit.encoders.models import load_encoder

    out = work / f"tpn{version}.safetensors"
    summary = write_encoder(convert_triplanenet(path), out, path)
    st, _cfg, _hdr = load_encoder(out)
    E, G = st.encoder, st.teacher.G
    with torch.no_grad():
        o = E(x, cam)
        y0 = E._render(o.base, cam, o.ws, 256)
        img = G.render_planes(o.planes, cam, o.ws, neural_rendering_resolution=E.nrr,
                              deterministic_render=True)["image"]
        res = {"ws": o.ws, "planes": o.planes.flatten(1, 2), "y_hat_psp": y0, "image": img}
        if version == 2:
            res["y_hat_psp_mirror"] = E._render(o.base, cam_m, o.ws, 256)
    return res, summary


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repo", type=Path, required=True, help="local clone of anantarb/triplanenet")
    ap.add_argument("--version", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--pixelshuffle", action="store_true", help="v2 with --use_pixelshuffle (default: nearest)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    sys.path.insert(0, str(args.repo.resolve()))
    _stub_imports()
    _deterministic_public_renderer()
    from gan3dkit.cameras.camera import Cameras
    from gan3dkit.generate.views import view_cameras
    from gan3dkit.render import volume

    orig = volume.ImportanceRenderer.forward

    def det_forward(self, *a, **k):
        return orig(self, *a, **{**k, "deterministic": True})

    volume.ImportanceRenderer.forward = det_forward
    report = {"repo": str(args.repo), "torch": torch.__version__, "batch": args.batch, "results": []}
    for version in args.version:
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            t0 = time.perf_counter()
            net, path = build_public(args.repo, version, work, args.seed + version, args.pixelshuffle)
            gen = torch.Generator().manual_seed(100 + version)
            x = torch.nn.functional.interpolate(torch.rand(args.batch, 3, 32, 32, generator=gen) * 2 - 1, size=256,
                                                mode="bilinear", align_corners=False)  # fmt: skip
            from types import SimpleNamespace

            Gcfg = SimpleNamespace(config=SimpleNamespace(rendering=SimpleNamespace(
                avg_camera_radius=2.7, avg_camera_pivot=(0.0, 0.0, 0.2), focal=4.2647)))  # fmt: skip
            cam = view_cameras(Gcfg, [0.35, -0.2][: args.batch] + [0.0] * max(0, args.batch - 2), 0.1, "cpu").to_label()
            cam_m = Cameras.from_label(cam).mirror().to_label()
            ref = public_outputs(net, version, x, cam, cam_m)
            got, summary = ours(path, work, x, cam, cam_m, version)
            diffs = {k: float((ref[k] - got[k]).abs().max()) for k in ref}
            scale = {k: float(ref[k].abs().max()) for k in ref}
            n_pub = sum(p.numel() for m in (net.psp_encoder, net.triplanenet_encoder) for p in m.parameters())
            report["results"].append({
                "version": version, "upsample": summary["upsample"], "max_abs": diffs, "max_abs_reference": scale,
                "parameters_public": {"psp_encoder": sum(p.numel() for p in net.psp_encoder.parameters()),
                                      "triplanenet_encoder": sum(
                                          p.numel() for p in net.triplanenet_encoder.parameters()),
                                      "decoder": sum(p.numel() for p in net.decoder.parameters()), "encoders": n_pub},
                "parameters_gan3dkit": {**summary["parameters"], "E": summary["encoder_parameters"]},
                "seconds": round(time.perf_counter() - t0, 1),
            })  # fmt: skip
            print(json.dumps(report["results"][-1]), file=sys.stderr)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
