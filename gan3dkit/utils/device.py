"""Device names at the boundary: `auto`, `cpu`, `cuda` or `cuda:N`, checked against this machine."""

from __future__ import annotations

import re

from .errors import UsageError

DEVICE_HELP = "auto | cpu | cuda | cuda:N"
_PATTERN = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


def check_device(device: str, option: str = "--device") -> str:
    """Return `device` unchanged when it names a device this machine has; else a UsageError saying what to use.

    'auto' is always accepted (CUDA when available, else CPU). Unknown names (e.g. 'tpu', 'gpu') are refused instead
    of silently running on the CPU.
    """
    text = str(device).strip().lower()
    if not _PATTERN.match(text):
        raise UsageError(f"{option} {device!r} is not a device gan3dkit can use; choose {DEVICE_HELP}")
    if text.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise UsageError(f"{option} {device}: this machine has no usable CUDA device (torch "
                             f"{torch.__version__}, built for CUDA {torch.version.cuda or 'none'}); use --device cpu")
        index = int(text.split(":")[1]) if ":" in text else 0
        if index >= torch.cuda.device_count():
            raise UsageError(f"{option} {device}: only {torch.cuda.device_count()} CUDA device(s) here "
                             f"(cuda:0 .. cuda:{torch.cuda.device_count() - 1})")
    return text


def resolve_device(device: str, option: str = "--device") -> str:
    """`check_device`, with 'auto' turned into 'cuda' when CUDA is available, else 'cpu' (for torch.device)."""
    text = check_device(device, option)
    if text == "auto":
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    return text
