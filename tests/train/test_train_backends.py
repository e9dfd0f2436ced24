"""Training sets the backend policy (TF32, cudnn.benchmark) only while it runs and restores the caller's flags."""

from __future__ import annotations

import torch

from gan3dkit.train.loop import train


def _flags():
    return (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32, torch.backends.cudnn.benchmark)


def test_training_scopes_tf32_and_restores_the_callers_flags(heads_lmdb, tmp_path, make_config):
    saved = _flags()
    try:
        for allow in (True, False):
            torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = (not allow), (not allow)
            torch.backends.cudnn.benchmark = False
            before = _flags()
            seen: list[tuple[bool, bool, bool]] = []
            cfg = make_config(heads_lmdb, tmp_path / f"run{allow}", run__max_steps=1,
                              run__allow_tf32=str(allow).lower())
            train(cfg, resume=False, on_step=lambda step, nimg, seen=seen: seen.append(_flags()), device="cpu")
            assert seen and all(f == (allow, allow, True) for f in seen)
            assert _flags() == before
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32, torch.backends.cudnn.benchmark = saved
