"""An LP3D encoding (`encode --outputs triplane`: planes, no w) viewed with its encoder checkpoint: the frame is the
encoder's own renderer (fine-tuned decoder and SR, learned SR latent), as `encode` renders it."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from gan3dkit.utils.visual import to_uint8_hwc

pytestmark = pytest.mark.slow


def _encoder_helpers():
    path = Path(__file__).resolve().parents[1] / "encoders" / "encoder_helpers.py"
    spec = importlib.util.spec_from_file_location("encoder_helpers_for_view", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _encode_to_file(enc: Path, tmp_path: Path) -> tuple[Path, torch.Tensor, torch.Tensor]:
    """Encode a random image with the encoder checkpoint `enc`, save the tri-plane file as `encode` does; returns
    (file, frontal camera label, the encoder's own render [1, 3, H, W])."""
    from safetensors.torch import save_file

    from gan3dkit.encoders.models import load_encoder

    st, _, _ = load_encoder(enc)
    torch.manual_seed(0)
    with torch.no_grad():
        out = st.encode(torch.rand(1, 3, 32, 32) * 2 - 1)
        cam = st.teacher.frontal(1, torch.device("cpu"))
        want = st.render(out, cam, st.teacher.nrr)["image"]
    path = tmp_path / "x_triplane.safetensors"
    save_file({"planes": out.planes.contiguous(), "camera": cam.contiguous()}, str(path))
    return path, cam, want


def _assert_viewer_frame_is(want: torch.Tensor, path: Path, enc: Path, cam: torch.Tensor) -> None:
    """The viewer's frame of the tri-plane file with its encoder equals the encoder's render bit for bit."""
    from gan3dkit.view.render import FrameRenderer, ViewSettings
    from gan3dkit.view.sources import open_source

    frame = FrameRenderer(open_source(path, ckpt=enc)).render(ViewSettings(), cam)
    assert np.array_equal(frame.image, to_uint8_hwc(want[0]))


def test_lp3d_triplane_file_renders_with_its_encoder(tmp_path):
    from gan3dkit.encoders.distill import distill
    from gan3dkit.utils.errors import UsageError
    from gan3dkit.view.sources import open_source

    helpers = _encoder_helpers()
    gen = helpers.make_generator_ckpt(tmp_path / "g.safetensors")
    distill(helpers.micro_distill("lp3d-lt", gen, tmp_path / "enc", run__steps=2), resume=False, device="cpu")
    enc = tmp_path / "enc" / "checkpoint.safetensors"
    path, cam, want = _encode_to_file(enc, tmp_path)
    with pytest.raises(UsageError, match="no ws"):
        open_source(path, ckpt=gen)  # the generator alone cannot render an LP3D encoding faithfully
    _assert_viewer_frame_is(want, path, enc, cam)


def test_lp3d_encoding_with_the_constant_sr_latent_renders_with_its_encoder(tmp_path):
    """LP3D as the paper trains it (sr_latent=one, a generator fine-tuned with SR latent 1): the encoder has no
    const_w, and the viewer feeds the SR the constant 1, as the encoder's own renderer does."""
    from gan3dkit.encoders.distill import distill
    from gan3dkit.encoders.models import load_encoder
    from gan3dkit.networks import DualDiscriminator, TriPlaneGenerator
    from gan3dkit.train.checkpoint import save_checkpoint
    from gan3dkit.train.config import train_preset
    from gan3dkit.utils.config import apply_overrides

    helpers = _encoder_helpers()
    cfg = apply_overrides(train_preset("tiny"), [*helpers.MICRO_G, "generator.superres.latent=one"])
    torch.manual_seed(0)
    gen = save_checkpoint(tmp_path / "g1.safetensors", {"G_ema": TriPlaneGenerator(cfg.generator).eval(),
                                                        "D": DualDiscriminator(cfg.discriminator)},
                          {}, cfg.to_dict(), {"nrr": 16}, include_rng=False)
    distill(helpers.micro_distill("lp3d-lt", gen, tmp_path / "enc", run__steps=1, lp3d__sr_latent="one"),
            resume=False, device="cpu")
    enc = tmp_path / "enc" / "checkpoint.safetensors"
    st, _, _ = load_encoder(enc)
    assert st.renderer is not None and st.renderer.const_w is None
    path, cam, want = _encode_to_file(enc, tmp_path)
    _assert_viewer_frame_is(want, path, enc, cam)
