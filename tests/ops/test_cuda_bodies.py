# SPDX-License-Identifier: Apache-2.0
"""The CUDA launchers' per-item bodies, run on the CPU through the test-only grid bindings, vs the references.

bias_act, sample_pdf and the ray marcher call their shared GAN3DKIT_HD body from the CPU launcher itself, so the
parity tests in test_compiled*.py already run the CUDA math. upfirdn2d and the tri-plane field organise their CPU
launchers differently (vectorised rows, blocked points), so here the ``_<kernel>_grid`` bindings stand in for the
CPU launchers: one item at a time, exactly the body a CUDA thread runs, through the same parity sweeps (values,
gradients and, for upfirdn2d, the double backward of R1).
"""

from __future__ import annotations

import itertools

import pytest
import torch

from gan3dkit.ops import _backend, upfirdn2d
from gan3dkit.ops.triplane import generate_planes, triplane_decode
from tests.ops import test_compiled as tc
from tests.ops import test_compiled_d_ops as td

ext = tc.ext  # the module-scoped fixture: skips without a compiler, fails if the build fails


class _GridExtension:
    """The extension with every kernel that has a ``_<name>_grid`` binding routed to it; records what it routed."""

    def __init__(self, module):
        self._module = module
        self.routed: set[str] = set()

    def __getattr__(self, name: str):
        grid = getattr(self._module, f"_{name}_grid", None)
        if grid is None:
            return getattr(self._module, name)
        self.routed.add(name)
        return grid


@pytest.fixture
def grid(monkeypatch, ext):
    proxy = _GridExtension(ext)
    monkeypatch.setattr(_backend, "extension", lambda: proxy)
    return proxy


def test_every_cuda_body_is_reachable_on_cpu(ext):
    """Each op either calls its shared body from the CPU launcher or has a grid binding (listed here)."""
    assert {n for n in dir(ext) if n.endswith("_grid")} == {
        "_upfirdn2d_fwd_grid",
        "_triplane_decode_fwd_grid",
        "_triplane_decode_bwd_grid",
    }


@pytest.mark.parametrize(
    "fname,resample,size,flip",
    list(itertools.product(sorted(td.FILTERS), td.RESAMPLE, [(2, 3, 9, 7), (1, 2, 1, 1)], [False, True])),
)
def test_upfirdn2d_cuda_body_matches_reference(grid, fname, resample, size, flip):
    up, down, padding = resample
    td.test_upfirdn2d_matches_reference(fname, up, down, padding, size, flip)
    try:
        upfirdn2d(torch.zeros(size), td.FILTERS[fname], up=up, down=down, padding=padding, impl="ref")
    except ValueError:  # an empty output: refused before any kernel runs
        return
    if td.FILTERS[fname] is not None:
        assert "upfirdn2d_fwd" in grid.routed


@pytest.mark.parametrize(
    "n,c,h,w,m,h1,o", [(1, 32, 16, 16, 60, 64, 33), (2, 8, 7, 5, 77, 16, 4), (1, 1, 1, 1, 9, 1, 2)]
)
@pytest.mark.parametrize("plane_axes", ["eg3d", "xy_xz_yz"])
def test_triplane_cuda_body_matches_reference(grid, n, c, h, w, m, h1, o, plane_axes):
    tc.test_triplane_decode_matches_reference(n, c, h, w, m, h1, o, plane_axes)
    assert {"triplane_decode_fwd", "triplane_decode_bwd"} <= grid.routed


def test_triplane_cuda_body_far_points_and_gradcheck(grid):
    tc.test_triplane_decode_without_coordinate_gradient_and_far_points()
    tc.test_triplane_decode_gradcheck_float64()


def test_triplane_cuda_body_refuses_what_its_arrays_cannot_hold(ext):
    gen = torch.Generator().manual_seed(0)
    planes, coords, w1, b1, w2, b2 = tc._field_inputs(1, 130, 2, 2, 3, 4, 3, torch.float32, gen)
    pm = generate_planes()
    with pytest.raises(RuntimeError, match="at most 128 plane channels"):
        proj = torch.zeros(3, 2, 3)
        ext._triplane_decode_fwd_grid(
            planes.detach().permute(0, 1, 3, 4, 2).contiguous(), coords.detach(), proj, 1.0,
            w1.detach().t().contiguous(), b1.detach(), w2.detach().t().contiguous(), b2.detach(), 1e-3,
        )
    out = triplane_decode(pm, planes, coords, w1, b1, w2, b2, impl="compiled")  # the CPU launcher has no limit
    assert out[0].shape[-1] == 2
