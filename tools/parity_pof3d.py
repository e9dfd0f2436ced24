"""Output parity of `gan3dkit convert pof3d` against VivianSZF/pof3d's own code (random weights).

Builds the public ``TriPlaneGeneratorPose`` and ``DualDiscriminator`` with the kwargs PoF3D's ``train.py`` gives
them for ``ffhq.sh`` (256² output, 64² rendering, ``SuperresolutionHybrid4X``, two mapping layers, the two-layer pose
mapping, D's camera head), gives every bias, ``w_avg`` and noise buffer random values, pickles the snapshot as the
training loop does (``pickle.dump(dict(training_set_kwargs, G, D, G_ema, augment_pipe))`` through the repository's
own ``torch_utils.persistence``), converts the file, and runs both generators on the same z at the poses each
predicts. Prints JSON: max abs differences of the learned poses (h, v), ws, the final image, the raw image and the
depth, D's logits and camera prediction, and the parameter counts.

    python3 tools/parity_pof3d.py --repo /path/to/pof3d

Run-time changes to the public code, none of which touches the compared computation:
- ``einops`` (imported for the background NeRF, off in every release script) is stubbed when it is not installed;
- EG3D's depth jitter and importance sampling are made deterministic (``torch.rand_like`` -> 0, ``sample_pdf``
  with ``det=True``) in the public renderer, as gan3dkit's ``deterministic_render`` does, since both always draw
  them at random. The public code runs on the CPU through its reference (non-CUDA) ops.
"""

# ruff: noqa: C408 (the kwargs mirror PoF3D's dict(...) / EasyDict construction)
from __future__ import annotations

import argparse
import copy
import functools
import json
import math
import pickle
import sys
import tempfile
import time
import types
from pathlib import Path

import torch


def g_kwargs(res: int = 256) -> dict:
    """PoF3D train.py for ffhq.sh (--cfg ffhq --dataset_resolution 256 --neural_rendering_resolution 64)."""
    sr = {128: "SuperresolutionHybrid2X", 256: "SuperresolutionHybrid4X", 512: "SuperresolutionHybrid8XDC"}[res]
    rendering = dict(
        image_resolution=res, disparity_space_sampling=False, clamp_mode="softplus",
        superresolution_module=f"training.superresolution.{sr}", c_gen_conditioning_zero=False, gpc_reg_prob=0.0,
        c_scale=1.0, superresolution_noise_mode="none", density_reg=0.25, density_reg_p_dist=0.004, reg_type="l1",
        decoder_lr_mul=1.0, sr_antialias=True, flip_to_dis=True, flip_to_disd=True, flip_to_disd_weight=1.0,
        flip_type="flip_both", dis_cam_weight=2.0, pose_gd_weight=1.0, detach_w_superres=False, wrong=True,
        rnd_pose_ford=False, learn_fov=False, nocond_output=False, depth_resolution=48,
        depth_resolution_importance=48, ray_start=2.25, ray_end=3.3, box_warp=1, avg_camera_radius=2.7,
        avg_camera_pivot=[0, 0, 0.2], h_mean=math.pi / 2,
    )  # fmt: skip
    return dict(
        z_dim=512, w_dim=512, c_dim=25, img_resolution=res, img_channels=3, bg_kwargs=None,
        mapping_kwargs=dict(num_layers=2, linear_pose=False, cam_dim=2, learn_fov=False, uniform_sampling=False,
                            lr_multiplier=0.01, lr_multiplier_pose=0.01),
        channel_base=32768, channel_max=512, fused_modconv_default="inference_only", rendering_kwargs=rendering,
        num_fp16_res=0, conv_clamp=None, sr_num_fp16_res=4,
        sr_kwargs=dict(channel_base=32768, channel_max=512, fused_modconv_default="inference_only"),
    )  # fmt: skip


def d_kwargs(res: int = 256) -> dict:
    return dict(
        c_dim=2, img_resolution=res, img_channels=3, channel_base=32768, channel_max=512, num_fp16_res=4,
        conv_clamp=256, disc_c_noise=0.0, block_kwargs=dict(freeze_layers=0), mapping_kwargs=dict(),
        epilogue_kwargs=dict(mbstd_group_size=4, dis_cam_weight=2.0, pose_gd_weight=1.0, nocond_output=False,
                             dis_linear_pose=False),
    )  # fmt: skip


def _public_imports(repo: Path):
    sys.path.insert(0, str(repo))
    try:
        import einops  # noqa: F401
    except ImportError:
        stub = types.ModuleType("einops")
        stub.repeat = stub.rearrange = None  # only the background NeRF (bg_kwargs) calls them
        sys.modules["einops"] = stub
    from training.dual_discriminator import DualDiscriminator
    from training.triplane_autopose import TriPlaneGeneratorPose
    from training.volumetric_rendering import renderer as R

    zeros = types.SimpleNamespace(**{k: getattr(torch, k) for k in dir(torch) if not k.startswith("__")})
    zeros.rand_like = torch.zeros_like
    R.torch = zeros  # sample_stratified's jitter only; everything else is torch itself
    R.ImportanceRenderer.sample_pdf = functools.partialmethod(R.ImportanceRenderer.sample_pdf, det=True)
    return TriPlaneGeneratorPose, DualDiscriminator


def _randomize(module: torch.nn.Module, gen: torch.Generator) -> None:
    """Random biases, w_avg and noise buffers (weights keep their random init)."""
    with torch.no_grad():
        for name, p in list(module.named_parameters()) + list(module.named_buffers()):
            if name.endswith("bias") or name.endswith("w_avg") or "noise_const" in name:
                p.normal_(0, 0.3 if "affine_layer2" in name else 0.5, generator=gen)
            elif name.endswith("noise_strength"):
                p.uniform_(0.05, 0.2, generator=gen)


def build_public(repo: Path, work: Path, seed: int, res: int):
    """The public G_ema and D with random weights, and the snapshot pickled as PoF3D's training loop does."""
    G_cls, D_cls = _public_imports(repo)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    G = G_cls(**g_kwargs(res)).eval().requires_grad_(False)
    D = D_cls(**d_kwargs(res)).eval().requires_grad_(False)
    _randomize(G, gen)
    _randomize(D, gen)
    G_ema = copy.deepcopy(G).eval()
    path = work / "network-snapshot-000000.pkl"
    snapshot = dict(training_set_kwargs=dict(resolution=res, use_labels=True), G=G, D=D, G_ema=G_ema,
                    augment_pipe=None)  # fmt: skip
    with open(path, "wb") as f:
        pickle.dump(snapshot, f)
    return G_ema, D, path


def compare(repo: Path, seed: int = 0, batch: int = 2, psi: float = 0.7, res: int = 256) -> dict:
    import os

    os.environ.setdefault("GAN3DKIT_NO_EXTENSION", "1")  # the pure-PyTorch ops (the public side runs its own)
    from gan3dkit.convert.eg3d import build_modules
    from gan3dkit.convert.pof3d import convert_pof3d_pickle

    with tempfile.TemporaryDirectory() as tmp:
        Gp, Dp, path = build_public(repo, Path(tmp), seed, res)
        t0 = time.time()
        conv = convert_pof3d_pickle(path)
        mods = build_modules(conv)
        t_conv = time.time() - t0
    G, D = mods["G_ema"], mods["D"]
    z = torch.randn(batch, 512, generator=torch.Generator().manual_seed(seed + 1))
    with torch.no_grad():
        ws_u = G.mapping(z, torch.zeros(batch, 25))
        pose = G.pose_mapping(ws_u[:, 0])
        cam = G.pose_mapping.cameras(pose)
        ws = G.mapping(z, cam, truncation_psi=psi, truncation_cutoff=14)
        ours = G.synthesis(ws, cam, noise_mode="const", deterministic_render=True)
        m = Gp.mapping(z, cam, truncation_psi=psi, truncation_cutoff=14)
        theirs = Gp.synthesis(m["ws"], cam, cam2world_matrix=m["c2w"], noise_mode="const")
        img = {"image": ours["image"], "image_raw": ours["image_raw"]}
        logits, head = D(img, None, with_head=True)
        dp = Dp(img, torch.zeros(batch, 2), cam_pred=True)
        dp_logits = Dp(img, dp["cam"])["score"]
    diffs = {
        "pose_hv": (pose - m["cam_pose"]).abs().max().item(),
        "cam2world": (cam[:, :16].reshape(-1, 4, 4) - m["c2w"]).abs().max().item(),
        "ws": (ws - m["ws"]).abs().max().item(),
        "image": (ours["image"] - theirs["image"]).abs().max().item(),
        "image_raw": (ours["image_raw"] - theirs["image_raw"]).abs().max().item(),
        "image_depth": (ours["image_depth"] - theirs["image_depth"]).abs().max().item(),
        "D_camera": (head - dp["cam"]).abs().max().item(),
        "D_logits": (logits - dp_logits).abs().max().item(),
    }
    scale = {"pose_hv": pose.abs().max().item(), "image": theirs["image"].abs().max().item(),
             "image_depth": theirs["image_depth"].abs().max().item(), "D_logits": dp_logits.abs().max().item()}
    count = lambda mod: sum(p.numel() for p in mod.parameters())  # noqa: E731
    return {
        "repo": str(repo), "seed": seed, "batch": batch, "truncation_psi": psi, "img_resolution": res,
        "max_abs_diff": diffs, "largest_value": scale, "poses_hv": pose.tolist(),
        "parameters": {"G public": count(Gp), "G gan3dkit": count(G), "D public": count(Dp), "D gan3dkit": count(D)},
        "convert_seconds": round(t_conv, 2), "torch": torch.__version__,
    }  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repo", type=Path, required=True, help="local clone of VivianSZF/pof3d")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--psi", type=float, default=0.7, help="truncation psi (the pose is read from the untruncated w)")
    ap.add_argument("--res", type=int, default=256, choices=(128, 256, 512))
    args = ap.parse_args()
    print(json.dumps(compare(args.repo, args.seed, args.batch, args.psi, args.res), indent=2))


if __name__ == "__main__":
    main()
