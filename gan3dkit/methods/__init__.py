"""Training methods: a registry of named methods; each builds its networks, fake-pose sampler and loss phases."""

from .registry import METHODS, MethodSpec, get_method

__all__ = ["METHODS", "MethodSpec", "get_method"]
