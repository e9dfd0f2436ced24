"""Output parity of `gan3dkit convert ko-pose` / `convert e4e` against cvlab-kaist/3DGAN-Inversion's code.

Builds the public P (``scripts/resnet/resnet.py`` ``resnet34(k)``, k = 2 euler, 4 quaternion, 6 AFHQ 6D) and E
(``DataParallel(pSp2())``: e4e's Encoder4Editing on IR-SE-50) with random weights (BN statistics and PReLU slopes
too), saves their state dicts as the release does (``torch.save(net.state_dict())``), converts them and compares
on the same images: P's outputs and the rotation Ko et al.'s projector builds from them (``euler2rot``,
``compute_rotation_matrix_from_quaternion``, ``rot6d_to_rotmat``), E's w_0 (what ``pSp2`` returns) and e4e's W+.

    python3 tools/parity_ko.py --repo /path/to/3DGAN-Inversion

Run-time changes to the public code: ``models.e4e.stylegan2.op`` (JIT-compiled CUDA, unused by the encoder) is
stubbed, and ``Tensor.cuda`` is the identity (``euler2rot`` moves tensors to CUDA unconditionally).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import types
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tools.parity_triplanenet import _randomize


def _stubs() -> None:
    def never(*a, **k):
        raise RuntimeError("stub: the compiled StyleGAN2 op was called")

    for name in ("models.e4e.stylegan2.op", "models.e4e.stylegan2.op.fused_act", "models.e4e.stylegan2.op.upfirdn2d"):
        mod = types.ModuleType(name)
        mod.FusedLeakyReLU = mod.fused_leaky_relu = mod.upfirdn2d = never
        sys.modules[name] = mod
    torch.Tensor.cuda = lambda self, *a, **k: self


def public_rotation(rep: str, out: torch.Tensor) -> torch.Tensor:
    import math

    from utils.camera_utils import compute_rotation_matrix_from_quaternion, euler2rot, rot6d_to_rotmat

    if rep == "quaternion":
        return compute_rotation_matrix_from_quaternion(out)
    if rep == "6d":
        return rot6d_to_rotmat(out)
    theta, phi = math.pi / 2 + out[:, 0:1], math.pi / 2 + out[:, 1:2]
    return euler2rot(theta, phi, torch.zeros(out.shape[0], 1), batch_size=out.shape[0]).reshape(-1, 4, 4)[:, :3, :3]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repo", type=Path, required=True, help="local clone of cvlab-kaist/3DGAN-Inversion")
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    sys.path[:0] = [str(args.repo.resolve()), str(args.repo.resolve() / "scripts")]
    _stubs()
    from resnet.resnet import resnet34

    from gan3dkit.convert.ko import convert_e4e, convert_ko_pose
    from gan3dkit.encoders.ko import load_ko_encoder
    from gan3dkit.encoders.ko_nets import ko_input

    gen = torch.Generator().manual_seed(args.seed)
    x = torch.nn.functional.interpolate(torch.rand(args.batch, 3, 16, 16, generator=gen) * 2 - 1, size=512,
                                        mode="bilinear", align_corners=False).clamp(-1, 1)  # fmt: skip
    x255 = ko_input(x, 256)  # the projector's (x + 1) / 2 * 255, area to 256
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for k, rep in ((2, "euler"), (4, "quaternion"), (6, "6d")):
            t0 = time.perf_counter()
            torch.manual_seed(args.seed + k)
            P = resnet34(k).eval()
            _randomize(P, gen)
            src = Path(tmp) / f"pose_{rep}.pt"
            torch.save(P.state_dict(), src)
            summary = convert_ko_pose(src, Path(tmp) / f"P_{rep}.safetensors")
            ours = load_ko_encoder(summary["out"])
            with torch.no_grad():
                ref_out, got_out = P(x255), ours.raw(x)
                ref_rot, got_rot = public_rotation(rep, ref_out), ours.rotation(got_out)
            results.append({"net": f"P {rep}", "max_abs": {"outputs": float((ref_out - got_out).abs().max()),
                            "rotation": float((ref_rot - got_rot).abs().max())},
                            "parameters_public": sum(p.numel() for p in P.parameters()),
                            "parameters_gan3dkit": summary["parameters"]["P"],
                            "seconds": round(time.perf_counter() - t0, 1)})  # fmt: skip
            print(json.dumps(results[-1]), file=sys.stderr)
        t0 = time.perf_counter()
        from models.e4e.psp import pSp2

        torch.manual_seed(args.seed)
        E = torch.nn.DataParallel(pSp2()).eval()
        _randomize(E, gen)
        src = Path(tmp) / "e4e.pt"
        torch.save(E.state_dict(), src)
        summary = convert_e4e(src, Path(tmp) / "E.safetensors")
        with torch.no_grad():
            ours = load_ko_encoder(summary["out"], with_w_avg=False)  # e4e's codes alone
            ref_w0, got_w0 = E(x255), ours(x)[:, 0]
            ref_wp, got_wp = E.module.encoder(x255), ours.wplus(x)
        results.append({"net": "E (e4e)", "max_abs": {"w0": float((ref_w0 - got_w0).abs().max()),
                        "wplus": float((ref_wp - got_wp).abs().max())},
                        "max_abs_reference": {"wplus": float(ref_wp.abs().max())},
                        "parameters_public": sum(p.numel() for p in E.parameters()),
                        "parameters_gan3dkit": summary["parameters"]["E"],
                        "seconds": round(time.perf_counter() - t0, 1)})  # fmt: skip
        print(json.dumps(results[-1]), file=sys.stderr)
    print(json.dumps({"repo": str(args.repo), "torch": torch.__version__, "batch": args.batch, "input": "512² in "
                      "[-1, 1] -> (x + 1) / 2 * 255, area to 256", "results": results}, indent=1))  # fmt: skip


if __name__ == "__main__":
    main()
