"""`gan3dkit view` in a real browser (headless Debian Chromium + chromedriver): the page opens and shows the model,
the camera orbits, the seed changes, and the picture on the canvas is `generate`'s render for that camera and seed."""

from __future__ import annotations

import io
import socket
import time

import numpy as np
import pytest
import torch

from gan3dkit.generate.views import render_views
from gan3dkit.view.camera import eg3d_pose
from gan3dkit.view.sources import open_source

pytestmark = pytest.mark.slow

#: Hide what floats over the canvas (the control panel, viser's "software WebGL" notice) before a screenshot.
HIDE_OVERLAYS = """for (const e of document.querySelectorAll('.mantine-Paper-root, .mantine-Notifications-root'))
                       e.style.visibility = 'hidden';"""
SHOW_OVERLAYS = HIDE_OVERLAYS.replace("'hidden'", "'visible'")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(cond, timeout: float = 30.0, what: str = "condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def still_frame_after(tab, t: float, timeout: float = 30.0):
    """Wait for a refined (still-camera) frame sent after time t and for the browser to draw it."""
    wait_for(lambda: any(ts > t and not moving for ts, _, moving, _ in tab.stats.frames), timeout, "a still frame")
    time.sleep(0.6)  # websocket + decode + draw


def canvas_picture(driver, tab, size: int) -> np.ndarray:
    """The model's square, cut from a screenshot of the canvas and box-averaged back to `size` x `size`."""
    from PIL import Image

    driver.execute_script(HIDE_OVERLAYS)
    shot = np.asarray(Image.open(io.BytesIO(driver.get_screenshot_as_png())).convert("RGB")).astype(np.float64)
    driver.execute_script(SHOW_OVERLAYS)
    view = tab.view()
    shot = shot[: view.height, : view.width]  # the canvas fills the window (screenshot pixels = CSS pixels here)
    s = min(view.width, view.height)
    pad_w = max(size, round(size * view.aspect)) if view.aspect >= 1 else size
    pad_h = size if view.aspect >= 1 else max(size, round(size / view.aspect))
    left, top = (pad_w - size) // 2, (pad_h - size) // 2  # where pad_to_aspect put the square
    x0, x1 = left / pad_w * view.width, (left + size) / pad_w * view.width
    y0, y1 = top / pad_h * view.height, (top + size) / pad_h * view.height
    assert abs((x1 - x0) - s) < 8 and abs((y1 - y0) - s) < 8
    crop = Image.fromarray(shot[round(y0) : round(y1), round(x0) : round(x1)].astype(np.uint8))
    return np.asarray(crop.resize((size, size), Image.BOX)).astype(np.float64)


def test_page_orbits_changes_seed_and_matches_generate(tiny_ckpt, browser, tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    from gan3dkit.view.app import Viewer

    viewer = Viewer(open_source(tiny_ckpt), port=free_port(), out=tmp_path)
    try:
        t_open = time.time()
        browser.get(viewer.url)
        tab = wait_for(lambda: next(iter(viewer.tabs.values()), None), what="the tab to connect")
        wait_for(lambda: tab.stats.first_frame, what="the first frame")
        still_frame_after(tab, t_open)
        size = viewer.source.img_resolution
        first = canvas_picture(browser, tab, size)
        assert first.std() > 1.0  # the model is on the canvas, not a blank page

        # Orbit: drag on the canvas; the camera turns and a new picture arrives.
        pos0 = np.array(tab.view().position)
        canvas = browser.find_element(By.TAG_NAME, "canvas")
        t = time.time()
        chain = ActionChains(browser).move_to_element_with_offset(canvas, -150, 0).click_and_hold()
        for _ in range(8):
            chain.move_by_offset(25, 0).pause(0.05)
        chain.release().perform()
        still_frame_after(tab, t)
        assert np.linalg.norm(np.array(tab.view().position) - pos0) > 0.1
        assert any(moving for ts, _, moving, _ in tab.stats.frames if ts > t)  # coarse frames while moving
        orbited = canvas_picture(browser, tab, size)
        assert np.abs(orbited - first).mean() > 1.0

        # Seed: type into the panel's Seed field.
        seed_box = browser.find_element(By.XPATH, "//label[normalize-space()='Seed']/following::input[1]")
        t = time.time()
        seed_box.send_keys(Keys.CONTROL, "a")
        seed_box.send_keys("5", Keys.ENTER)
        wait_for(lambda: viewer.controls.seed.value == 5, what="the seed to reach the server")
        still_frame_after(tab, t)
        reseeded = canvas_picture(browser, tab, size)
        assert np.abs(reseeded - orbited).mean() > 1.0

        # Parity: at generate's camera (yaw 0.4, pitch -0.2) the canvas shows generate's render of seed 5.
        t = time.time()
        viewer.set_pose(tab.client, eg3d_pose(viewer.source.G, 0.4, -0.2))
        still_frame_after(tab, t)
        shown = canvas_picture(browser, tab, size)
        assert "yaw +0.40, pitch -0.20 rad, radius 2.70" in tab.readout.content  # the tab's camera, read back
        G = viewer.source.G
        torch.manual_seed(0)
        _, per_seed = render_views(G, [5, 6], yaws=(0.4,), pitch=-0.2, nrr=viewer.source.nrr)
        want, other = per_seed[0]["rgb"][0].astype(np.float64), per_seed[1]["rgb"][0].astype(np.float64)
        err, err_other = np.abs(shown - want).mean(), np.abs(shown - other).mean()
        print(f"canvas vs generate: mean abs {err:.2f}/255, vs another seed {err_other:.2f}/255")
        assert err < 6.0 and err < err_other / 3

        # A second tab gets its own frames while the first stays; closing it ends its render thread.
        first_window = browser.current_window_handle
        browser.switch_to.new_window("tab")
        t = time.time()
        browser.get(viewer.url)
        tab2 = wait_for(lambda: next((x for x in viewer.tabs.values() if x is not tab), None), what="a second tab")
        still_frame_after(tab2, t)
        assert len(viewer.tabs) == 2 and tab.thread.is_alive()
        browser.close()
        browser.switch_to.window(first_window)
        wait_for(lambda: not tab2.thread.is_alive(), what="the closed tab's render thread to end")
    finally:
        viewer.stop()
    assert not tab.thread.is_alive()  # stop() leaves no render thread behind
