"""Safe import of NVIDIA EG3D pickles and EG3D-fork state dicts into gan3dkit checkpoints (no code is run)."""

from .eg3d import ArchitectureMismatch, Converted, build_modules, convert_eg3d_pickle, convert_state_dict
from .source_audit import audit_module_source
from .torchfile import read_legacy_torch, read_torch_file
from .unpickler import CorruptPickle, PersistentRecord, RefusedPickle, SafeUnpickler, read_pickle
from .writer import write_converted

__all__ = [
    "ArchitectureMismatch",
    "Converted",
    "CorruptPickle",
    "PersistentRecord",
    "RefusedPickle",
    "SafeUnpickler",
    "audit_module_source",
    "build_modules",
    "convert_eg3d_pickle",
    "convert_state_dict",
    "read_legacy_torch",
    "read_pickle",
    "read_torch_file",
    "write_converted",
]
