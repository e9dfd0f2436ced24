"""Fixtures for the viewer tests: a tiny random-weight generator checkpoint (as tests/edit builds one), its inversion
and tri-plane outputs, and a headless Debian Chromium driven by its chromedriver (skipped cleanly without one)."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("viser", reason="gan3dkit view needs viser (pip install 'gan3dkit[view]')")

from gan3dkit.networks import TriPlaneGenerator
from gan3dkit.train.checkpoint import save_checkpoint
from gan3dkit.train.config import train_preset

#: Debian's chromium + chromium-driver (tools/install.sh --test); other installs can point at theirs.
CHROMIUM = os.environ.get("GAN3DKIT_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("GAN3DKIT_CHROMEDRIVER", "/usr/bin/chromedriver")
#: Chromium flags: headless, no GPU, and no traffic other than to the viewer on localhost.
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--window-size=1000,700")  # fmt: skip


@pytest.fixture(autouse=True)
def _reference_ops(monkeypatch):
    """Pure-PyTorch ops in these tests, set per test so the choice never leaks into tests/ops."""
    monkeypatch.setenv("GAN3DKIT_NO_EXTENSION", "1")


def write_generator(path: Path, seed: int = 0, nrr: int = 32) -> Path:
    torch.manual_seed(seed)
    cfg = train_preset("tiny")
    G = TriPlaneGenerator(cfg.generator).eval()
    save_checkpoint(path, {"G_ema": G}, {}, cfg.to_dict(), {"nimg": 1000 * seed, "step": seed, "tick": 0, "nrr": nrr},
                    include_rng=False)  # fmt: skip
    return path


@pytest.fixture(scope="session")
def tiny_ckpt(tmp_path_factory):
    return write_generator(tmp_path_factory.mktemp("ckpt") / "tiny.safetensors")


@pytest.fixture(scope="session")
def inversion_dir(tiny_ckpt, tmp_path_factory):
    """An `invert`-style folder: w.npy, camera.json, a tuned-generator delta (the SR weights moved), input photo."""
    from gan3dkit.generate.loading import load_generator
    from gan3dkit.generate.views import seed_latent, view_cameras
    from gan3dkit.invert.delta import save_delta
    from gan3dkit.utils.files import atomic_save_png

    out = tmp_path_factory.mktemp("inv") / "me"
    out.mkdir()
    G, _ = load_generator(tiny_ckpt)
    tuned, _ = load_generator(tiny_ckpt)
    with torch.no_grad():
        for p in tuned.superresolution.parameters():
            p.add_(0.05 * torch.randn_like(p))
        ws = G.mapping(seed_latent(G, 5), view_cameras(G, [0.0], 0.0, torch.device("cpu")).to_label())
    np.save(out / "w.npy", ws[0, 0].numpy())
    cam = view_cameras(G, [0.3], -0.1, torch.device("cpu")).to_label()
    (out / "camera.json").write_text(json.dumps({"camera": cam[0].tolist()}))
    save_delta(out / "generator_delta.safetensors", tiny_ckpt, G, tuned)
    photo = np.zeros((64, 64 * 3, 3), np.uint8)
    photo[:, :64, 0] = 200  # input | projected | tuned; the viewer shows the first tile
    atomic_save_png(out / "reconstruction.png", photo)
    return out


@pytest.fixture(scope="session")
def chromium():
    """(chromium, chromedriver) paths, or a clean skip saying how to get them."""
    if not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)):
        pytest.skip(f"no headless Chromium ({CHROMIUM}, {CHROMEDRIVER}): `bash tools/install.sh --test` installs "
                    "Debian's chromium + chromium-driver where apt exists")
    pytest.importorskip("selenium", reason="browser tests drive Chromium with selenium (pip install selenium)")
    return CHROMIUM, CHROMEDRIVER


@pytest.fixture
def browser(chromium):
    """A fresh headless Chromium (own profile dir) driven by Debian's chromedriver; Selenium Manager stays offline."""
    os.environ["SE_OFFLINE"] = "true"  # never let selenium fetch a driver or a browser
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="gan3dkit-chromium-")
    opts = webdriver.ChromeOptions()
    for flag in CHROMIUM_FLAGS + (f"--user-data-dir={profile}",):
        opts.add_argument(flag)
    opts.binary_location = chromium[0]
    driver = webdriver.Chrome(service=Service(chromium[1]), options=opts)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
