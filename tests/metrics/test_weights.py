"""Weight files: checked download into the cache (file:// URLs), pinned/recorded digests, package files, errors."""

from __future__ import annotations

import hashlib

import pytest

from gan3dkit.metrics import weights as W


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GAN3DKIT_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "weights"


def _source(tmp_path, data=b"tiny weights\n" * 100):
    path = tmp_path / "src" / "net.bin"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path, hashlib.sha256(data).hexdigest()


def test_download_with_pinned_sha256_then_reuse(tmp_path, cache):
    src, digest = _source(tmp_path)
    spec = W.WeightSpec("net", "net.bin", url=src.as_uri(), sha256=digest)
    path = W.fetch(spec)
    assert path == cache / "net.bin" and path.read_bytes() == src.read_bytes()
    src.unlink()  # second call must come from the cache, not the URL
    assert W.fetch(spec) == path


def test_prefix_digest_as_torch_hub(tmp_path, cache):
    src, digest = _source(tmp_path)
    assert W.fetch(W.WeightSpec("net", "net.bin", url=src.as_uri(), sha256=digest[:8])).is_file()


def test_wrong_digest_is_rejected_and_nothing_is_left(tmp_path, cache):
    src, _ = _source(tmp_path)
    spec = W.WeightSpec("net", "net.bin", url=src.as_uri(), sha256="0" * 64)
    with pytest.raises(ValueError, match="sha256"):
        W.fetch(spec)
    assert not (cache / "net.bin").exists() and sorted(p.name for p in cache.iterdir()) == []  # no temp left


def test_unpinned_download_records_digest_and_detects_tampering(tmp_path, cache):
    src, digest = _source(tmp_path)
    spec = W.WeightSpec("net", "net.bin", url=src.as_uri())
    path = W.fetch(spec)
    assert (cache / "net.bin.sha256").read_text().strip() == digest
    path.write_bytes(b"tampered")
    with pytest.raises(ValueError, match="does not match"):
        W.fetch(spec)


def test_user_path_and_user_url(tmp_path, cache):
    src, _ = _source(tmp_path)
    spec = W.WeightSpec("net", "net.bin")
    assert W.fetch(spec, src) == src
    with pytest.raises(W.WeightsUnavailable, match="downloads are disabled"):
        W.fetch(spec, src.as_uri(), allow_download=False)
    assert W.fetch(spec, src.as_uri()).read_bytes() == src.read_bytes()
    assert W.fetch(spec, src.as_uri(), allow_download=False).is_file()  # cached now
    with pytest.raises(W.WeightsUnavailable, match="not found"):
        W.fetch(spec, tmp_path / "missing.bin")


def test_offline_without_anything_lists_the_options(cache):
    spec = W.WeightSpec("inception-x", "inc.pt", url="https://example.invalid/inc.pt", hint="pass --inception PATH",
                        packages=(("gan3dkit_no_such_package", "default_1.pt"),))
    with pytest.raises(W.WeightsUnavailable) as info:
        W.fetch(spec, allow_download=False)
    msg = str(info.value)
    for part in ("--inception PATH", "gan3dkit_no_such_package", "https://example.invalid/inc.pt", "GAN3DKIT_CACHE"):
        assert part in msg


def test_package_file_is_found_without_import_and_checked(cache):
    if W.package_file("lpips", "weights/v0.1/alex.pth") is None:  # importing lpips needs torchvision: only locate it
        pytest.skip("pip install --no-deps lpips==0.1.4 ships the LPIPS heads")
    from gan3dkit.metrics.perceptual import LPIPS_HEADS

    path = W.fetch(LPIPS_HEADS["alex"])
    assert path.name == "alex.pth" and "lpips" in str(path)
    bad = W.WeightSpec("x", "x", packages=(("lpips", "weights/v0.1/alex.pth"),), package_sha256={"lpips": "ff" * 32})
    with pytest.raises(ValueError):
        W.fetch(bad)
    assert W.package_file("gan3dkit_no_such_package", "x") is None
