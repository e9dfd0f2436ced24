"""A training run's config from what a person asks for: a preset, a saved config or a checkpoint, then overrides."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from ..methods.registry import DEFAULT_METHOD
from ..utils.config import apply_overrides
from ..utils.errors import DataError, UsageError
from .checkpoint import read_header
from .config import TRAIN_STAGES, TrainConfig, train_preset


def resolve_train_config(
    data: str | Path,
    out: str | Path,
    method: str | None = None,
    preset: str = "tiny",
    config: str | Path | None = None,
    init: str | Path | None = None,
    stage: str | None = None,
    sets: Sequence[str] = (),
    kimg: float | None = None,
    max_steps: int | None = None,
    minutes: float | None = None,
) -> TrainConfig:
    """The validated config: `config` (a saved config.json), else `init`'s checkpoint config, else `preset` for
    `method`; then a `stage` derived from `init` (or `run.init`), the `sets` overrides and the shortcuts."""
    if stage is not None and (stage not in TRAIN_STAGES or init is None):
        raise UsageError(f"--stage {stage} needs --init CKPT" if stage in TRAIN_STAGES
                         else f"--stage must be one of {', '.join(TRAIN_STAGES)}, got {stage!r}")
    try:
        if config:
            cfg = TrainConfig.from_dict(json.loads(Path(config).read_text()))
        elif init:
            cfg = TrainConfig.from_dict(read_header(init)["config"])
        else:
            cfg = train_preset(preset, method or DEFAULT_METHOD)
    except json.JSONDecodeError as exc:
        raise DataError(f"--config {config} is not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if init is not None:
        if stage:
            cfg = TRAIN_STAGES[stage](cfg, str(init))
        else:
            cfg = apply_overrides(cfg, [f"run.init={json.dumps(str(init))}"])
    if method is not None and method != cfg.method_name:  # the --config / --init run's method, switched
        cfg = cfg.with_method(method)
    overrides = list(sets) + [f"data={json.dumps(str(data))}", f"out={json.dumps(str(out))}"]
    for key, value in (("run.kimg", kimg), ("run.max_steps", max_steps), ("run.max_minutes", minutes)):
        if value is not None:
            overrides.append(f"{key}={value}")
    cfg = apply_overrides(cfg, overrides)
    cfg.validate()
    return cfg
