"""`build_synthetic`: render a family's scenes with cameras from a pose prior into a resumable LMDB dataset."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from ...cameras.camera import Cameras
from ...cameras.priors import PosePrior, get_prior
from ...cameras.rotations import cam2world_to_ypr
from ...data.writer import DatasetWriter

GENERATOR_VERSION = "gan3dkit.synthetic/1"
FIELDS = ["image", "camera", "ypr", "mask", "depth", "latent", "name"]


def sample_seed(seed: int, index: int) -> int:
    """The torch seed of sample `index`: numpy SeedSequence([seed, index]) -> one uint64 (platform independent)."""
    return int(np.random.SeedSequence([int(seed), int(index)]).generate_state(1, dtype=np.uint64)[0])


def sample_scene(family: str, prior: PosePrior, seed: int, index: int) -> tuple[torch.Tensor, Cameras]:
    """Scene parameters [1, D] and camera of sample `index`.

    One generator per sample, seeded by `sample_seed(seed, index)`: scene parameters are drawn first, then the pose
    (`PosePrior.sample(1, generator)`), so nothing depends on how samples are batched.
    """
    from .families import sample_params

    generator = torch.Generator().manual_seed(sample_seed(seed, index))
    params = sample_params(family, 1, generator)
    return params, prior.sample(1, generator)


def build_synthetic(out: str | Path, family: str, num: int, resolution: int, prior: str | None = None,
                    seed: int = 0, ssaa: int = 2, batch_size: int = 64, overwrite: bool = False,
                    resume: bool = True, command: str = "",
                    progress: Callable[[int, int], None] | None = None, threads: int | None = 1) -> Path:
    """Render `num` samples of `family` at `resolution` into the LMDB dataset `out`; returns its path.

    Sample i is a deterministic function of (seed, i) (see `sample_scene`), so the dataset is byte-identical for any
    batch size and after any number of interruptions. Fields: image, camera (EG3D label), ypr (orbit_v1), mask
    (0/255, pixel-centre ray hits), depth (ray distance, +inf = background), latent (the scene parameter vector,
    names in meta.extra.param_names) and name (`<family>_<index:06d>`).

    Args:
        out: dataset directory; written as `<out>.partial` and renamed when complete.
        family: "heads" or "objects".
        num: number of samples (a resumed run may ask for more than the interrupted one did, never fewer).
        resolution: image size (square).
        prior: pose prior preset name (default: `default_prior(family)`).
        seed: dataset seed.
        ssaa: colour supersampling factor per axis (1 = none).
        batch_size: scenes rendered per call (memory/speed only; never changes the data).
        overwrite: replace an existing dataset at `out`.
        resume: continue a compatible `<out>.partial` left by an interrupted run (same family, resolution, prior,
            seed, ssaa); otherwise start over.
        command: the generating command line, recorded in the provenance.
        progress: called as progress(done, num) before the first and after each batch.
        threads: torch intra-op threads while building, restored afterwards (None: leave torch's setting). The
            renderer issues many small tensor ops that gain little from intra-op threads and slow down several-fold
            when the cores are shared with other work (OpenMP threads spin at every op), hence 1 by default; the
            data never depend on it.
    """
    from .families import FAMILIES, default_prior, param_names

    if family not in FAMILIES:
        raise ValueError(f"unknown synthetic family {family!r}; choose one of {', '.join(FAMILIES)}")
    if num < 1 or resolution < 1 or ssaa < 1 or batch_size < 1:
        raise ValueError(f"num, resolution, ssaa and batch_size must be >= 1 (got {num}, {resolution}, {ssaa}, "
                         f"{batch_size})")
    pose_prior = get_prior(prior or default_prior(family))
    names = param_names(family)
    key = {"generator": GENERATOR_VERSION, "family": family, "seed": seed, "ssaa": ssaa,
           "prior": pose_prior.to_dict()}
    extra = {"family": family, "seed": seed, "ssaa": ssaa, "param_names": names, "generator": GENERATOR_VERSION,
             "sample_rng": "torch.Generator(SeedSequence([seed, index])): scene parameters, then camera"}
    writer = DatasetWriter(out, resolution=resolution, fields=FIELDS, latent_dim=len(names),
                           pose_prior=pose_prior.to_dict(), camera_source="measured",
                           source=f"gan3dkit synthetic {family}", command=command,
                           extra=extra, resume=resume, overwrite=overwrite, resume_key=key)
    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        _render_into(writer, family, pose_prior, num, resolution, seed, ssaa, batch_size, progress)
    finally:
        torch.set_num_threads(previous)
    return writer.path


def _render_into(writer: DatasetWriter, family: str, pose_prior: PosePrior, num: int, resolution: int, seed: int,
                 ssaa: int, batch_size: int, progress: Callable[[int, int], None] | None) -> None:
    """Render samples writer.count .. num - 1 in batches into `writer` and finish it (close it on errors)."""
    from .families import render_batch

    with writer:
        if writer.count > num:
            raise ValueError(f"{writer.partial} already holds {writer.count} samples, more than --num {num}; "
                             "rerun with a larger --num or restart")
        if progress is not None:
            progress(writer.count, num)
        for start in range(writer.count, num, batch_size):
            indices = range(start, min(num, start + batch_size))
            scenes = [sample_scene(family, pose_prior, seed, i) for i in indices]
            params = torch.cat([s[0] for s in scenes])
            cameras = Cameras(torch.cat([s[1].cam2world for s in scenes]), torch.cat([s[1].intrinsics for s in scenes]))
            out_b = render_batch(family, params, cameras, resolution, ssaa)
            labels = cameras.to_label().numpy()
            ypr = cam2world_to_ypr(cameras.cam2world).float().numpy()  # row-wise: batch-independent
            image, mask, depth = out_b["image"].numpy(), out_b["mask"].numpy(), out_b["depth"].numpy()
            for j, i in enumerate(indices):
                writer.add(image[j], labels[j], ypr=ypr[j], mask=mask[j].astype(np.uint8) * 255, depth=depth[j],
                           latent=params[j].numpy(), name=f"{family}_{i:06d}")
            writer.flush()  # commit each batch: a killed run resumes after the last one
            if progress is not None:
                progress(indices[-1] + 1, num)
