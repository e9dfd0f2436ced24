#!/usr/bin/env python3
"""`gan3dkit view` speed on this machine, as one JSON object: time to the first image after the page opens, frames
per second while the camera orbits, and the training slow-down of `train --view`.

- first image (--ckpt): a fresh headless Chromium (Debian's, own profile) opens the viewer; seconds from
  `driver.get` to (a) the page's DOMContentLoaded, (b) the tab's websocket connection, (c) the first frame sent,
  (d) the arrival of that frame in the page (a hook on viser's websocket worker, injected before its client runs),
  (e) the first screenshot that shows the model (polled; screenshots are slow in software GL: an upper bound).
  --trials fresh browsers.
- orbit (--ckpt): a continuous mouse drag on the canvas for --orbit-s seconds; frames/s = frames the server sent
  to that tab while the camera moved / drag time, with the per-frame render time (median) and resolutions used.
- training (--data): `gan3dkit train` of the tiny preset for --steps steps with and without `--view` (a tick and a
  checkpoint every 5 steps, so the viewer reloads every 5 steps), alternated --rounds times; median seconds per kimg
  over the ticks after the first, per variant, and the ratio; and, independent of other load, the CPU seconds the
  viewer child used over those of the training (/proc), the most it can take from the training. `--orbit-during`
  also drags a browser's camera on the viewer during extra --view runs (a person watching), reported separately.
The 1-minute load average before/after each part is recorded (other processes share the CPU).

Example: python tools/bench_view.py --ckpt run/checkpoint.safetensors --data heads.lmdb --out view_bench.json
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

os.environ["SE_OFFLINE"] = "true"  # selenium never downloads a driver or a browser
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
         "--window-size=1000,700")  # fmt: skip


def load() -> float:
    return os.getloadavg()[0]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def chromium():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="bench-view-")
    opts = webdriver.ChromeOptions()
    for flag in FLAGS + (f"--user-data-dir={profile}",):
        opts.add_argument(flag)
    opts.binary_location = "/usr/bin/chromium"
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
    return driver, profile


def shows_model(driver) -> bool:
    from PIL import Image

    img = np.asarray(Image.open(io.BytesIO(driver.get_screenshot_as_png())).convert("L")).astype(float)
    h, w = img.shape
    centre = img[h // 3 : 2 * h // 3, w // 2 - h // 6 : w // 2 + h // 6]  # the model's square, left of the panel
    return centre.std() > 2.0 or abs(centre.mean() - 255) > 30  # not the blank (white) page


#: Recorded in the page before viser's client runs: the wall time (ms) of every message its websocket worker hands
#: to the page (viser's client keeps the websocket in a Web Worker).
WS_TIMES = """window.__wsTimes = []; const _W = window.Worker;
window.Worker = function (...a) { const w = new _W(...a);
  w.addEventListener('message', () => window.__wsTimes.push(Date.now())); return w; };
window.Worker.prototype = _W.prototype;"""


def first_image(viewer, trials: int) -> dict:
    rows = []
    for _ in range(trials):
        driver, profile = chromium()
        try:
            driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": WS_TIMES})
            before = set(viewer.tabs)
            t0 = time.time()
            driver.get(viewer.url)
            dom = driver.execute_script("return performance.timing.domContentLoadedEventEnd - "
                                        "performance.timing.navigationStart") / 1000  # fmt: skip
            while not shows_model(driver) and time.time() - t0 < 30:
                time.sleep(0.05)
            seen = time.time() - t0
            tab = next(viewer.tabs[c] for c in viewer.tabs if c not in before)
            arrivals = [t / 1000 for t in driver.execute_script("return window.__wsTimes")]
            got = next((t for t in arrivals if t >= tab.stats.first_frame - 0.005), None)
            rows.append({"dom_content_loaded_s": dom, "connected_s": tab.stats.connected - t0,
                         "first_frame_sent_s": tab.stats.first_frame - t0,
                         "first_frame_in_page_s": None if got is None else got - t0,
                         "first_image_screenshot_s": seen})  # fmt: skip
        finally:
            driver.quit()
            shutil.rmtree(profile, ignore_errors=True)
    keys = rows[0].keys()
    return {"trials": rows, "median": {k: statistics.median(r[k] for r in rows if r[k] is not None) for k in keys}}


def screenshots(viewer, folder: Path) -> list[str]:
    """Pictures for docs/viewer.md: the page at a 3/4 view in rgb, depth and normals."""
    from gan3dkit.view.camera import eg3d_pose

    folder.mkdir(parents=True, exist_ok=True)
    driver, profile = chromium()
    written = []
    try:
        before = set(viewer.tabs)
        driver.get(viewer.url)
        while not (set(viewer.tabs) - before):
            time.sleep(0.05)
        tab = viewer.tabs[next(iter(set(viewer.tabs) - before))]
        time.sleep(1.5)
        driver.execute_script("for (const e of document.querySelectorAll('.mantine-Notifications-root')) "
                              "e.style.visibility = 'hidden';")  # fmt: skip
        viewer.set_pose(tab.client, eg3d_pose(viewer.source.G, 0.45, -0.15))
        for mode in ("rgb", "depth", "normals"):
            viewer.controls.mode.value = mode
            time.sleep(2.0)
            path = folder / f"viewer_{mode}.png"
            driver.save_screenshot(str(path))
            written.append(str(path))
        viewer.controls.mode.value = "rgb"
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
    return written


def orbit(viewer, seconds: float, driver=None) -> dict:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    own = driver is None
    if own:
        driver, profile = chromium()
    try:
        before = set(viewer.tabs)
        driver.get(viewer.url)
        while (not (set(viewer.tabs) - before)
               or not viewer.tabs[next(iter(set(viewer.tabs) - before))].stats.first_frame):
            time.sleep(0.05)
        tab = viewer.tabs[next(iter(set(viewer.tabs) - before))]
        time.sleep(1.0)
        canvas = driver.find_element(By.TAG_NAME, "canvas")
        t0 = time.time()
        step, sign = 0, 1
        while time.time() - t0 < seconds:
            chain = ActionChains(driver, duration=10).move_to_element_with_offset(canvas, -100 * sign, 0)
            chain = chain.click_and_hold()
            for _ in range(20):
                chain.move_by_offset(10 * sign, 2 if step % 2 else -2).pause(0.02)
            chain.release().perform()
            step, sign = step + 1, -sign
        t1 = time.time()
        moving = [f for f in tab.stats.frames if t0 <= f[0] <= t1 and f[2]]
        return {"drag_s": t1 - t0, "frames_while_moving": len(moving), "fps": len(moving) / (t1 - t0),
                "render_ms_median": 1000 * statistics.median(f[3] for f in moving) if moving else None,
                "nrr_while_moving": sorted({f[1] for f in moving})}  # fmt: skip
    finally:
        if own:
            driver.quit()
            shutil.rmtree(profile, ignore_errors=True)


#: A tick (and a checkpoint, so a viewer reload) every 5 steps of batch 4: far more reloads than a real run has.
TICK_KIMG = 0.02


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a process (all its threads) from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def viewer_child(pid: int) -> int | None:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                cmd = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if int(fields[1]) == pid and b"\0view\0" in cmd:
                return int(entry.name)
    return None


def sample_cpu(proc, out: dict) -> None:
    """Until `proc` ends: the last CPU seconds of the training and of its viewer child (a load-independent measure
    of what the viewer takes from the training: at most its share of the CPU time)."""
    child = None
    while proc.poll() is None:
        out["train_cpu_s"] = cpu_seconds(proc.pid) or out.get("train_cpu_s")
        child = child or viewer_child(proc.pid)
        if child is not None:
            out["viewer_cpu_s"] = cpu_seconds(child) or out.get("viewer_cpu_s")
        time.sleep(0.2)


def train_once(data: Path, out: Path, steps: int, view: bool, orbit_s: float | None) -> dict:
    cmd = [sys.executable, "-m", "gan3dkit", "train", "--data", str(data), "--out", str(out), "--preset", "tiny",
           "--max-steps", str(steps), "--restart", "--set", f"run.tick_kimg={TICK_KIMG}",
           "--set", "run.snapshot_ticks=1", "--set", "run.workers=0"]  # fmt: skip
    cmd += ["--view", "--view-port", str(free_port())] if view else []
    t0 = time.time()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    cpu: dict = {}
    sampler = threading.Thread(target=sample_cpu, args=(proc, cpu), daemon=True)
    sampler.start()
    watcher = None
    if view and orbit_s:
        watcher = threading.Thread(target=_watch_training, args=(proc, out, orbit_s), daemon=True)
        watcher.start()
    err = proc.communicate()[1]
    if watcher is not None:
        watcher.join(timeout=60)  # its browser quits once the training has ended
    if proc.returncode != 0:
        raise RuntimeError(f"training failed: {err[-2000:]}")
    ticks = [json.loads(line) for line in (out / "stats.jsonl").read_text().splitlines()]
    per_kimg = [t["sec_per_kimg"] for t in ticks[1:]]  # the first tick includes start-up
    sampler.join()
    return {"view": view, "wall_s": time.time() - t0, "sec_per_kimg_median": statistics.median(per_kimg),
            "ticks": len(ticks), **cpu}  # fmt: skip


def _watch_training(proc, out: Path, seconds: float) -> None:
    """Open the --view page once it serves and orbit until the training ends (a person watching)."""
    import re

    while proc.poll() is None:
        log = out / "view.log"
        text = log.read_text() if log.exists() else ""
        if '"url"' in text or "viewing" in text:
            break
        time.sleep(0.5)
    log = out / "view.log"
    match = re.search(r"http://localhost:(\d+)", log.read_text()) if log.exists() else None
    if match is None:
        return
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    driver, profile = chromium()
    try:
        driver.get(f"http://localhost:{match.group(1)}")
        time.sleep(2)
        canvas = driver.find_element(By.TAG_NAME, "canvas")
        sign = 1
        while proc.poll() is None:
            chain = ActionChains(driver, duration=10).move_to_element_with_offset(canvas, -100 * sign, 0)
            chain = chain.click_and_hold()
            for _ in range(20):
                chain.move_by_offset(10 * sign, 0).pause(0.02)
            chain.release().perform()
            sign = -sign
    except Exception:  # noqa: BLE001, S110 - the training may end mid-drag
        pass
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def training(data: Path, steps: int, rounds: int, orbit_during: bool) -> dict:
    work = Path(tempfile.mkdtemp(prefix="bench-view-train-"))
    runs = []
    try:
        for r in range(rounds):
            for view in ((False, True) if r % 2 == 0 else (True, False)):
                runs.append({**train_once(data, work / f"r{r}_{int(view)}", steps, view, None), "load_1m": load()})
            if orbit_during:
                runs.append({**train_once(data, work / f"r{r}_orbit", steps, True, 1.0), "orbiting": True,
                             "load_1m": load()})  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)

    def med(rows):
        return statistics.median(x["sec_per_kimg_median"] for x in rows) if rows else None

    base = med([x for x in runs if not x["view"]])
    idle = med([x for x in runs if x["view"] and not x.get("orbiting")])
    busy = med([x for x in runs if x.get("orbiting")])
    def cpu_share(rows):
        rows = [x for x in rows if x.get("viewer_cpu_s") is not None]
        return sum(x["viewer_cpu_s"] for x in rows) / sum(x["train_cpu_s"] for x in rows) if rows else None

    return {"runs": runs, "sec_per_kimg": {"train": base, "train --view (no browser)": idle,
            "train --view (browser orbiting)": busy},
            "slowdown_view_idle": idle / base - 1, "slowdown_view_orbiting": busy / base - 1 if busy else None,
            "viewer_cpu_over_train_cpu_idle": cpu_share([x for x in runs if x["view"] and not x.get("orbiting")]),
            "viewer_cpu_over_train_cpu_orbiting": cpu_share([x for x in runs if x.get("orbiting")])}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ckpt", type=Path, help="Generator checkpoint for the first-image and orbit measurements.")
    ap.add_argument("--data", type=Path, help="Dataset for the training slow-down measurement.")
    ap.add_argument("--trials", type=int, default=5)
    ap.add_argument("--orbit-s", type=float, default=6.0)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--orbit-during", action="store_true")
    ap.add_argument("--threads", type=int, default=1, help="torch threads of the viewer (the CLI uses torch's default)")
    ap.add_argument("--ganspace", type=Path, help="GANSpace components for the --screenshots page.")
    ap.add_argument("--screenshots", type=Path, help="Also save pictures of the page into this folder.")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    report: dict = {"machine": {"cpus": os.cpu_count(), "torch_threads": args.threads}}
    if args.ckpt:
        from gan3dkit.view.app import Viewer
        from gan3dkit.view.sources import open_source

        report["load_1m_before"] = load()
        source = open_source(args.ckpt)
        gs = None
        if args.ganspace:
            from gan3dkit.edit.ganspace import load_ganspace

            gs = load_ganspace(args.ganspace, source.G)
        viewer = Viewer(source, port=free_port(), out=Path(tempfile.mkdtemp()), ganspace=gs)
        try:
            if args.screenshots:
                report["screenshots"] = screenshots(viewer, args.screenshots)
            report["first_image"] = first_image(viewer, args.trials)
            report["orbit"] = orbit(viewer, args.orbit_s)
            report["model"] = {"img_resolution": viewer.source.img_resolution, "nrr": viewer.source.nrr}
        finally:
            viewer.stop()
        report["load_1m_after"] = load()
        save(report, args.out)
    if args.data:
        report["training"] = training(args.data, args.steps, args.rounds, args.orbit_during)
    save(report, args.out)
    print(json.dumps(report, indent=2))


def save(report: dict, out: Path | None) -> None:
    """Write what is measured so far (a long run that is stopped keeps its first parts)."""
    if out is not None:
        out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
