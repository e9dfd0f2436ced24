"""Training methods: a registry of named methods; each owns its config and builds its networks, poses and losses."""

from .registry import METHODS, MethodSpec, get_method, register_method, unregister_method

__all__ = ["METHODS", "MethodSpec", "get_method", "register_method", "unregister_method"]
