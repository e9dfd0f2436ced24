"""Torch backend policy in one place: TF32, cudnn.benchmark, DataLoader pin_memory, process-group backend."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any

import torch


@dataclass(frozen=True)
class BackendPolicy:
    """The global torch switches a gan3dkit run sets, only while it runs (see :func:`scoped`)."""

    allow_tf32: bool = True
    """TF32 matmuls and convolutions on Ampere and newer (EG3D turns it off; ``run.allow_tf32`` in TrainConfig)."""
    cudnn_benchmark: bool = True
    """Let cuDNN time its algorithms once per input shape (EG3D's training default; shapes are fixed in training)."""


def pin_memory(device: torch.device) -> bool:
    """Whether DataLoaders pin host memory: only when batches go to a CUDA device (a no-op cost on CPU)."""
    return device.type == "cuda"


def dist_backend(use_cuda: bool) -> str:
    """The torch.distributed backend: NCCL for CUDA devices (when torch has it), gloo otherwise."""
    import torch.distributed as dist

    return "nccl" if use_cuda and dist.is_nccl_available() else "gloo"


def _current() -> dict[str, bool]:
    return {
        "matmul_tf32": torch.backends.cuda.matmul.allow_tf32,
        "cudnn_tf32": torch.backends.cudnn.allow_tf32,
        "cudnn_benchmark": torch.backends.cudnn.benchmark,
    }


def _set(values: dict[str, bool]) -> None:
    torch.backends.cuda.matmul.allow_tf32 = values["matmul_tf32"]
    torch.backends.cudnn.allow_tf32 = values["cudnn_tf32"]
    torch.backends.cudnn.benchmark = values["cudnn_benchmark"]


@contextmanager
def scoped(policy: BackendPolicy) -> Iterator[BackendPolicy]:
    """Apply ``policy`` to torch's global backend flags and restore the caller's values on exit (also on error)."""
    saved = _current()
    _set({"matmul_tf32": policy.allow_tf32, "cudnn_tf32": policy.allow_tf32,
          "cudnn_benchmark": policy.cudnn_benchmark})
    try:
        yield policy
    finally:
        _set(saved)


def report(policy: BackendPolicy | None = None) -> dict[str, Any]:
    """What `gan3dkit env` prints: the training policy, the flags as they are now, and the per-device choices."""
    import torch.distributed as dist

    return {
        "training_policy": asdict(policy or BackendPolicy()),
        "current_flags": _current(),
        "pin_memory": {"cpu": pin_memory(torch.device("cpu")), "cuda": pin_memory(torch.device("cuda"))},
        "dist_backend": {"cpu": dist_backend(False), "cuda": dist_backend(True)},
        "nccl_available": bool(dist.is_available() and dist.is_nccl_available()),
    }
