"""Reading encode inputs (image, folder, GIF/MP4 video) and writing GIF/MP4: PIL for GIFs, OpenCV or imageio else."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
from PIL import Image, ImageSequence

from ..data.images import frame_count
from ..utils.errors import DataError
from ..utils.files import atomic_output

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".ppm", ".tif", ".tiff")
VIDEO_EXTS = (".gif", ".mp4", ".avi", ".mov", ".mkv", ".webm")
ANIMATED_EXTS = (".gif", ".png", ".webp")  # read frame by frame through PIL


def video_backend() -> str:
    """What decodes/encodes MP4 here: "opencv", "imageio-ffmpeg", "pyav" or "none" (GIFs always work via PIL)."""
    for module, name in (("cv2", "opencv"), ("imageio_ffmpeg", "imageio-ffmpeg"), ("av", "pyav")):
        if importlib.util.find_spec(module) is not None:
            return name
    return "none"


def input_kind(path: Path) -> str:
    """"image", "folder" or "video"; raises FileNotFoundError / ValueError for what cannot be encoded."""
    if not path.exists():
        raise FileNotFoundError(f"input {path} not found")
    if path.is_dir():
        return "folder"
    ext = path.suffix.lower()
    if ext in ANIMATED_EXTS:  # an animated GIF, PNG (APNG) or WebP is encoded frame by frame, like a video
        return "video" if frame_count(path) > 1 else "image"
    if ext in VIDEO_EXTS:
        return "video"
    if ext in IMAGE_EXTS:
        return "image"
    raise ValueError(f"{path}: unsupported input type {ext!r} (images: {', '.join(IMAGE_EXTS)}; videos: "
                     f"{', '.join(VIDEO_EXTS)})")  # fmt: skip


def read_video(path: Path, max_frames: int | None = None) -> tuple[list[np.ndarray], float]:
    """(frames uint8 [H, W, 3], fps). GIFs via PIL; other containers via OpenCV, else imageio-ffmpeg, else PyAV."""
    frames: list[np.ndarray] = []
    if path.suffix.lower() in ANIMATED_EXTS:
        try:
            with Image.open(path) as im:
                duration = im.info.get("duration", 100) or 100
                for frame in ImageSequence.Iterator(im):
                    frames.append(np.asarray(frame.convert("RGB")))
                    if max_frames and len(frames) >= max_frames:
                        break
        except Exception as exc:  # noqa: BLE001 - PIL raises many types for broken files
            if not frames:
                raise DataError(f"{path}: cannot decode its frames ({type(exc).__name__}: {exc})") from None
        return frames, 1000.0 / duration
    backend = video_backend()
    if backend == "opencv":
        import cv2

        cap = cv2.VideoCapture(str(path))
        fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
        while not max_frames or len(frames) < max_frames:
            ok, bgr = cap.read()
            if not ok:
                break
            frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        cap.release()
    elif backend == "imageio-ffmpeg":
        import imageio.v2 as imageio

        reader = imageio.get_reader(str(path))
        fps = float(reader.get_meta_data().get("fps", 25.0))
        for frame in reader:  # type: ignore[attr-defined]  # imageio's stubs type the reader as an array
            frames.append(np.asarray(frame)[..., :3])
            if max_frames and len(frames) >= max_frames:
                break
    elif backend == "pyav":
        import av

        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            fps = float(stream.average_rate or 25)
            for frame in container.decode(stream):
                frames.append(frame.to_ndarray(format="rgb24"))
                if max_frames and len(frames) >= max_frames:
                    break
    else:
        raise ValueError(f"{path}: no video decoder installed (pip install opencv-python-headless); GIFs work")
    if not frames:
        raise DataError(f"{path}: no frames could be decoded")
    return frames, float(fps)


def write_video(frames: list[np.ndarray], out: Path, fps: float) -> list[Path]:
    """``out``.gif always; ``out``.mp4 too when OpenCV (mp4v) or imageio-ffmpeg (libx264) is installed."""
    out.parent.mkdir(parents=True, exist_ok=True)
    gif = out.with_suffix(".gif")
    imgs = [Image.fromarray(f) for f in frames]
    with atomic_output(gif) as tmp:
        imgs[0].save(tmp, save_all=True, append_images=imgs[1:], duration=max(1, int(1000 / max(fps, 1e-3))), loop=0)
    written = [gif]
    backend = video_backend()
    mp4 = out.with_suffix(".mp4")
    h, w = frames[0].shape[:2]
    if backend == "opencv":
        import cv2

        with atomic_output(mp4) as tmp4:
            vw = cv2.VideoWriter(str(tmp4), cv2.VideoWriter.fourcc(*"mp4v"), float(fps), (w, h))
            if not vw.isOpened():
                return written
            for f in frames:
                vw.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
            vw.release()
        written.append(mp4)
    elif backend == "imageio-ffmpeg":
        import imageio.v2 as imageio

        with atomic_output(mp4) as tmp4:
            imageio.mimwrite(tmp4, frames, fps=fps, codec="libx264", quality=8)  # type: ignore[arg-type]  # list invariance in imageio's stubs
        written.append(mp4)
    return written
