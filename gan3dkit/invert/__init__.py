"""Inversion of images into 3D GANs: W/W+ projector, PTI, Ko et al. pose optimisation (seed 002 Alg. 1/2/3)."""

from .config import ALGORITHMS, METHODS, InvertConfig, PoseOptConfig, ProjectorConfig, TuneConfig, preset
from .delta import load_delta, save_delta
from .inputs import InputError, InvertItem, load_item
from .run import Extras, Inversion, invert, invert_source, write_outputs

__all__ = ["ALGORITHMS", "METHODS", "Extras", "InputError", "Inversion", "InvertConfig", "InvertItem", "PoseOptConfig",
           "ProjectorConfig", "TuneConfig", "invert", "invert_source", "load_delta", "load_item", "preset",
           "save_delta", "write_outputs"]
