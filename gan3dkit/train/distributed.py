"""Multi-process training through torchrun: process-group setup (NCCL on GPU, gloo on CPU) and gradient sync."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from ..utils import backends


@dataclass(frozen=True)
class DistInfo:
    rank: int
    world: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device: str = "auto") -> DistInfo:
    """Read torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK) and join the process group when world > 1."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() if device == "auto" else device.startswith("cuda")
    dev = torch.device(f"cuda:{local_rank}" if use_cuda else "cpu")
    if use_cuda:
        torch.cuda.set_device(dev)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend=backends.dist_backend(use_cuda))
    return DistInfo(rank, world, local_rank, dev)


def sync_gradients(params: list[torch.nn.Parameter], world: int) -> None:
    """Average gradients over processes with one flattened all-reduce (params without grads count as zeros)."""
    if world <= 1 or not params:
        return
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.flatten() for g in grads])
    dist.all_reduce(flat)
    flat /= world
    offset = 0
    for p, g in zip(params, grads, strict=False):
        n = g.numel()
        p.grad = flat[offset : offset + n].view_as(p).clone()
        offset += n


def broadcast_module(module: torch.nn.Module, world: int) -> None:
    """Make every process start from rank 0's parameters and buffers."""
    if world <= 1:
        return
    for t in list(module.parameters()) + list(module.buffers()):
        dist.broadcast(t.data, src=0)


def barrier(world: int) -> None:
    if world > 1:
        dist.barrier()


def all_equal(tensor: torch.Tensor, world: int) -> bool:
    """True when `tensor` is identical on every process (used to check that replicas stay in sync)."""
    if world <= 1:
        return True
    gathered = [torch.zeros_like(tensor) for _ in range(world)]
    dist.all_gather(gathered, tensor)
    return all(torch.equal(gathered[0], g) for g in gathered[1:])


def gather_rng_states(world: int) -> list[torch.Tensor]:
    """Every process's torch CPU RNG state (rank order), so a resumed multi-process run continues each stream."""
    state = torch.get_rng_state()
    if world <= 1:
        return [state]
    gathered = [torch.zeros_like(state) for _ in range(world)]
    dist.all_gather(gathered, state)
    return gathered


def gather_batch(t: torch.Tensor, world: int) -> torch.Tensor:
    """Every process's `t` (same shape on each, no gradient) concatenated along dim 0 in rank order."""
    if world <= 1:
        return t
    gathered = [torch.zeros_like(t) for _ in range(world)]
    dist.all_gather(gathered, t.contiguous())
    return torch.cat(gathered)
