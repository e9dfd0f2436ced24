"""A position-addressed, endless sample order so a resumed run reads exactly what an uninterrupted one would."""

from __future__ import annotations

from collections.abc import Iterator

import torch


class PositionSampler(torch.utils.data.Sampler[int]):
    """Endless, deterministic sample order: epoch e is randperm(n) seeded by (seed, e); rank r of w takes its slice.

    Global position p = step * batch + rank * batch_per_rank + i, so a run resumed at `start_step` reads exactly
    the samples an uninterrupted run would have read.
    """

    def __init__(self, n: int, batch: int, rank: int, world: int, seed: int, start_step: int) -> None:
        self.n, self.batch, self.rank, self.world, self.seed, self.start = n, batch, rank, world, seed, start_step
        self._perms: dict[int, torch.Tensor] = {}

    def _index(self, pos: int) -> int:
        epoch = pos // self.n
        if epoch not in self._perms:
            self._perms = {
                epoch: torch.randperm(self.n, generator=torch.Generator().manual_seed(self.seed * 100003 + epoch))
            }
        return int(self._perms[epoch][pos % self.n])

    def __iter__(self) -> Iterator[int]:
        per_rank = self.batch // self.world
        step = self.start
        while True:
            base = step * self.batch + self.rank * per_rank
            for i in range(per_rank):
                yield self._index(base + i)
            step += 1
