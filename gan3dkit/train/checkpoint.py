"""Training checkpoints: safetensors tensors + a JSON header (config, format version, progress, RNG states)."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from safetensors import safe_open

from ..utils.errors import DataError, RunError, UsageError
from ..utils.files import atomic_write_safetensors, remove_stale_temps

CHECKPOINT_FORMAT = "gan3dkit-checkpoint"
CHECKPOINT_VERSION = 1


class CheckpointError(DataError):
    """A checkpoint that is missing, of another format/version, does not fit the model, or is not finite."""


class NonFiniteStateError(RunError):
    """Weights or optimiser state hold NaN/inf, so they must not replace the last good checkpoint."""


def nonfinite_tensors(tensors: dict[str, torch.Tensor]) -> list[str]:
    """Names of the floating-point tensors holding NaN or inf (RNG states and integer tensors are skipped)."""
    return [k for k, v in tensors.items()
            if not k.startswith("rng") and v.is_floating_point() and not bool(torch.isfinite(v).all())]


def _flatten_optimizer(prefix: str, opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    sd = opt.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, Any] = {"param_groups": sd["param_groups"], "state": {}}
    for idx, state in sd["state"].items():
        scalars["state"][str(idx)] = {}
        for k, v in state.items():
            if torch.is_tensor(v):
                tensors[f"{prefix}.state.{idx}.{k}"] = v.detach().cpu().contiguous()
            else:
                scalars["state"][str(idx)][k] = v
    return tensors, scalars


def _unflatten_optimizer(prefix: str, tensors: dict[str, torch.Tensor], scalars: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {int(i): dict(v) for i, v in scalars["state"].items()}
    for key, value in tensors.items():
        if key.startswith(prefix + ".state."):
            idx, name = key[len(prefix) + 7 :].split(".", 1)
            state.setdefault(int(idx), {})[name] = value
    return {"state": state, "param_groups": scalars["param_groups"]}


def rng_state() -> dict[str, Any]:
    """Python, numpy and torch (CPU + CUDA) RNG states as tensors/JSON."""
    st: dict[str, Any] = {"python": random.getstate(), "numpy": np.random.get_state()}
    return {
        "tensors": {
            "rng.torch": torch.get_rng_state(),
            **(
                {f"rng.cuda.{i}": s for i, s in enumerate(torch.cuda.get_rng_state_all())}
                if torch.cuda.is_available()
                else {}
            ),
        },
        "json": {
            "python": [st["python"][0], list(st["python"][1]), st["python"][2]],
            "numpy": [st["numpy"][0], st["numpy"][1].tolist(), *st["numpy"][2:]],
        },
    }


def set_rng_state(tensors: dict[str, torch.Tensor], js: dict[str, Any]) -> None:
    py = js["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    npst = js["numpy"]
    np.random.set_state((npst[0], np.asarray(npst[1], dtype=np.uint32), *npst[2:]))
    torch.set_rng_state(tensors["rng.torch"])
    cuda = [tensors[k] for k in sorted(k for k in tensors if k.startswith("rng.cuda."))]
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)


def save_checkpoint(
    path: str | Path,
    modules: dict[str, torch.nn.Module],
    optimizers: dict[str, torch.optim.Optimizer],
    config: dict[str, Any],
    progress: dict[str, Any],
    extra: dict[str, Any] | None = None,
    include_rng: bool = True,
    extra_tensors: dict[str, torch.Tensor] | None = None,
) -> Path:
    """Write modules' state dicts, optimiser states, RNG states and a JSON header atomically (temp + rename).

    A checkpoint is only written when every weight AND every optimiser tensor is finite (else NonFiniteStateError,
    and the previous checkpoint stays the last good one). Temp files of interrupted writes are removed first.
    """
    path = Path(path)
    tensors: dict[str, torch.Tensor] = {}
    for name, module in modules.items():
        for k, v in module.state_dict().items():
            tensors[f"{name}.{k}"] = v.detach().cpu().contiguous()
    opt_json = {}
    for name, opt in optimizers.items():
        t, s = _flatten_optimizer(f"opt.{name}", opt)
        tensors.update(t)
        opt_json[name] = s
    header: dict[str, Any] = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "config": config,
        "progress": progress,
        "modules": sorted(modules),
        "optimizers": opt_json,
        "extra": extra or {},
    }
    bad = nonfinite_tensors(tensors)
    if bad:
        raise NonFiniteStateError(
            f"not saving {path}: {len(bad)} tensors hold NaN/inf (e.g. {', '.join(bad[:3])}); the last good "
            "checkpoint is kept. Lower the learning rates or raise loss.r1_gamma, then resume or restart"
        )
    tensors.update({k: v.detach().cpu().contiguous() for k, v in (extra_tensors or {}).items()})
    if include_rng:
        rng = rng_state()
        tensors.update(rng["tensors"])
        header["rng"] = rng["json"]
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path)
    return atomic_write_safetensors(path, tensors, {"gan3dkit": json.dumps(header)})


#: What an option wants, in the words of `expect_kind`'s message.
WANTED = {
    "generator": "a generator checkpoint (from `gan3dkit train` or `gan3dkit convert`)",
    "encoder": "an encoder checkpoint (from `gan3dkit distill-encoder --arch lp3d|lp3d-lt|triplanenet-v1|v2`)",
    "ko-pose": "a Ko et al. pose estimator (from `gan3dkit distill-encoder --arch ko-pose`)",
    "ko-latent": "a Ko et al. latent encoder (from `gan3dkit distill-encoder --arch ko-latent`)",
}


def describe_file(path: str | Path) -> tuple[str, str]:
    """(kind, what it is in words) of a file or folder given where a model is expected.

    Kinds: generator, encoder, ko-pose, ko-latent, ganspace, delta, triplane, dataset, folder, missing, other
    (a safetensors file of no gan3dkit kind, or a file safetensors cannot read: its loader says why).
    """
    path = Path(path)
    if path.is_dir():
        if (path / "data.mdb").exists():
            return "dataset", "a gan3dkit dataset (an LMDB folder), not a checkpoint"
        inner = path / "checkpoint.safetensors"
        if inner.is_file():
            what = describe_file(inner)[1]
            return "folder", f"a run folder, not a checkpoint file (its {inner.name} is {what}: pass {inner})"
        return "folder", "a folder, not a checkpoint file"
    if not path.exists():
        return "missing", "not found"
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except Exception:  # noqa: BLE001 - not safetensors or damaged: the loader reports it in its own words
        return "other", "not a readable safetensors file"
    if "gan3dkit-ko-encoder" in meta:
        try:
            arch = str(json.loads(meta["gan3dkit-ko-encoder"]).get("arch"))
        except (json.JSONDecodeError, AttributeError):
            arch = "?"
        return arch, f"a Ko et al. {'pose estimator' if arch == 'ko-pose' else 'latent encoder'} ({arch})"
    if "gan3dkit-generator-delta" in meta:
        return "delta", "an inversion's generator delta (generator_delta.safetensors: load it with its base)"
    if "layout" in meta and "gan3dkit" not in meta:
        return "triplane", "a tri-plane written by `gan3dkit encode`"
    try:
        header = json.loads(meta.get("gan3dkit", "null"))
    except json.JSONDecodeError:
        return "other", "a safetensors file with a damaged gan3dkit header"
    if not isinstance(header, dict):
        return "other", "a safetensors file without a gan3dkit header"
    if header.get("format") == "gan3dkit-ganspace":
        return "ganspace", "a GANSpace components file (from `gan3dkit edit`)"
    config = cast("dict[str, Any]", header.get("config")) if isinstance(header.get("config"), dict) else {}
    if "arch" in config and "generator_config" in (header.get("extra") or {}):
        return "encoder", f"an encoder checkpoint ({config['arch']})"
    if "generator" in config:
        return "generator", "a generator checkpoint"
    return "other", "a checkpoint of no known kind"


def expect_kind(path: str | Path, want: str, option: str, accept: tuple[str, ...] = ()) -> None:
    """Raise UsageError naming the file and what it holds when `path` is known to be another kind than `want` (or
    one of `accept`): "runs/enc/checkpoint.safetensors is an encoder checkpoint (lp3d-lt); --ckpt wants a generator
    ..."."""
    kind, what = describe_file(path)
    if kind == "missing":
        raise UsageError(f"{option} {path} not found")
    if kind != want and kind not in accept and kind != "other":
        raise UsageError(f"{path} is {what}; {option} wants {WANTED[want]}")


def check_finite(path: str | Path, tensors: dict[str, torch.Tensor], what: str) -> None:
    """CheckpointError naming the file when a model's weights hold NaN/inf (it would compute nothing usable)."""
    bad = nonfinite_tensors(tensors)
    if bad:
        raise CheckpointError(f"{path}: {what} weights hold NaN/inf in {len(bad)} tensors (e.g. {', '.join(bad[:3])});"
                              " it would produce nothing usable; use an earlier checkpoint")


def read_header(path: str | Path) -> dict[str, Any]:
    """The JSON header of a checkpoint (config, progress, ...), validated for format and version."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint {path} not found")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except Exception as exc:
        raise CheckpointError(f"{path} is not a safetensors checkpoint ({exc})") from exc
    if "gan3dkit" not in meta:
        raise CheckpointError(f"{path} is a safetensors file without a gan3dkit header")
    try:
        header = json.loads(meta["gan3dkit"])
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path}: its gan3dkit header is not valid JSON ({exc.msg})") from None
    if not isinstance(header, dict) or header.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: unknown checkpoint format {header.get('format')!r}")
    if int(header.get("version", -1)) != CHECKPOINT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint version {header.get('version')} is not supported by this "
            f"gan3dkit (reads v{CHECKPOINT_VERSION}); upgrade gan3dkit"
        )
    return header


def load_tensors(path: str | Path, prefix: str | None = None) -> dict[str, torch.Tensor]:
    """All tensors (or those under `prefix.`, with the prefix stripped)."""
    out = {}
    try:
        with safe_open(str(path), framework="pt") as f:
            for key in f.keys():  # noqa: SIM118 - safe_open is not a dict
                if prefix is None:
                    out[key] = f.get_tensor(key)
                elif key.startswith(prefix + "."):
                    out[key[len(prefix) + 1 :]] = f.get_tensor(key)
    except Exception as exc:  # safetensors raises its own error types for truncated/corrupt files
        raise CheckpointError(f"{path}: cannot read its tensors ({exc}); the file is damaged") from None
    return out


def load_checkpoint(
    path: str | Path,
    modules: dict[str, torch.nn.Module],
    optimizers: dict[str, torch.optim.Optimizer] | None = None,
    restore_rng: bool = True,
) -> dict[str, Any]:
    """Load module/optimiser states (strict) and, optionally, RNG states; returns the header.

    Refuses (CheckpointError) a checkpoint whose weights or optimiser state hold NaN/inf: resuming from it would
    diverge again at once.
    """
    header = read_header(path)
    remove_stale_temps(path)
    tensors = load_tensors(path)
    bad = nonfinite_tensors(tensors)
    if bad:
        raise CheckpointError(f"{path} holds NaN/inf in {len(bad)} tensors (e.g. {', '.join(bad[:3])}), so it cannot "
                              "be resumed; restart with --restart or restore a backup")
    for name, module in modules.items():
        sd = {k[len(name) + 1 :]: v for k, v in tensors.items() if k.startswith(name + ".")}
        if not sd:
            raise CheckpointError(f"{path} holds no weights for {name!r} (it has {header['modules']})")
        missing, unexpected = module.load_state_dict(sd, strict=False)
        if missing or unexpected:
            raise CheckpointError(
                f"{path}: {name} does not match the model built from the config: "
                f"missing {missing[:5]}, unexpected {unexpected[:5]}"
            )
    for name, opt in (optimizers or {}).items():
        opt.load_state_dict(_unflatten_optimizer(f"opt.{name}", tensors, header["optimizers"][name]))
    if restore_rng and "rng" in header:
        set_rng_state(tensors, header["rng"])
    return header
