"""`gan3dkit view`: a browser viewer (viser) for generators, training runs, encoded tri-planes and inversions."""

from .camera import BrowserView, label_from_view, pad_to_aspect, pose_from_label
from .render import VIEW_MODES, FrameRenderer, ViewSettings
from .sources import SOURCE_KINDS, ViewSource, open_source

__all__ = [
    "SOURCE_KINDS",
    "VIEW_MODES",
    "BrowserView",
    "FrameRenderer",
    "ViewSettings",
    "ViewSource",
    "label_from_view",
    "open_source",
    "pad_to_aspect",
    "pose_from_label",
]
