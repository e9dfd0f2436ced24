"""One density grid: G's grid is the planes' grid of G's own planes, the same whatever the chunking."""

from __future__ import annotations

import torch

from gan3dkit.generate.mesh import density_grid, planes_density_grid
from gan3dkit.networks import TriPlaneGenerator, get_preset


def test_generator_grid_is_its_planes_grid_and_chunk_free():
    torch.manual_seed(0)
    G = TriPlaneGenerator(get_preset("tiny").generator).eval()
    ws = G.mapping(torch.randn(1, G.z_dim), torch.zeros(1, G.c_dim))
    whole = density_grid(G, ws, resolution=8)
    assert (density_grid(G, ws, resolution=8, chunk=100) == whole).all()  # one synthesis serves every chunk
    planes = G.synthesize_planes(ws, noise_mode="const")
    assert (planes_density_grid(G.renderer, G.decoder, planes, resolution=8) == whole).all()
    assert whole.shape == (8, 8, 8) and whole.std() > 0
