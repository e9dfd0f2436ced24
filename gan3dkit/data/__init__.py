"""The gan3dkit LMDB dataset format: writer, reader, torch Dataset, validation and EG3D zip import/export."""

from .format import DatasetFormatError, FormatVersionError, make_meta, validate_meta
from .images import ImageError, decode_png, encode_png, load_image_file
from .reader import DatasetReader, LMDBDataset, flip_sample, read_meta
from .writer import DatasetWriter, partial_path

__all__ = [n for n in dir() if not n.startswith("_")]
