"""Speed of labelling: rendering throughput (pairs per second on one core) and the labelling page's load time.

Rendering: the MetaWorld drawer-open data of the smoke recipe, MuJoCo's physics states replayed once, then
``--pairs`` pairs of ``--segment-length`` steps drawn and rendered at 128 x 128 pixels per segment with
Mesa's software EGL restricted to one thread (``LP_NUM_THREADS=1``), and encoded to H.264 by ffmpeg;
drawing frames and encoding are timed apart. Page: a query set of 100 pairs (clips of the same size and
length, grey frames, so that building it takes seconds) is served over HTTP and the book's labelling page
is opened ``--loads`` times in headless Chromium; load time is from navigation start until the pairs are
read and the first clip plays. Ratios are within this run only.

    MUJOCO_GL=egl python benchmarks/bench_labelling.py
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("LP_NUM_THREADS", "1")  # Mesa's llvmpipe: one rendering thread, i.e. one core
os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from screenshot_labelling import PAGE, browser, serve, wait

from ipl_core.render import FRAME_SIZE, PhysicsStates, pair_frames, write_pair_clip


def rendering(pairs: int, segment_length: int, root: Path) -> None:
    from ipl_core.data.d4rl import load_d4rl_hdf5
    from ipl_core.data.metaworld_gen import generate_metaworld, metaworld_recipe
    from ipl_core.labelling import draw_pairs
    from ipl_core.render import (
        METAWORLD_CAMERA,
        FrameRenderer,
        load_physics,
        metaworld_model,
        metaworld_physics,
    )

    recipe = metaworld_recipe("drawer-open", "smoke")
    offline = load_d4rl_hdf5(generate_metaworld(recipe, root=root, progress=False).offline)
    start = time.perf_counter()
    states = load_physics(metaworld_physics(recipe, root=root))
    replay = time.perf_counter() - start
    starts = draw_pairs(offline, pairs, segment_length, np.random.default_rng(0))
    draw = FrameRenderer(metaworld_model(recipe.task), METAWORLD_CAMERA)
    steps = np.arange(segment_length)
    draw.frames(states, steps[:2])  # warm-up: the first frame compiles shaders
    drawing = encoding = 0.0
    for i, (a, b) in enumerate(starts):
        t0 = time.perf_counter()
        frames = pair_frames(draw.frames(states, a + steps), draw.frames(states, b + steps))
        t1 = time.perf_counter()
        write_pair_clip(root / "clips" / f"{i}.mp4", frames, fps=10)
        drawing, encoding = drawing + t1 - t0, encoding + time.perf_counter() - t1
    draw.close()
    frames_total = 2 * pairs * segment_length
    print(f"rendering ({FRAME_SIZE} x {FRAME_SIZE} per segment, {segment_length}-step segments, "
          f"LP_NUM_THREADS={os.environ['LP_NUM_THREADS']}, {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.1f}):")
    print(f"  physics replay of {len(offline)} rows: {replay:.2f} s")
    print(f"  drawing: {frames_total / drawing:.1f} frames/s; encoding: {pairs / encoding:.1f} pairs/s")
    print(f"  throughput: {pairs / (drawing + encoding):.2f} pairs/s per core "
          f"({(drawing + encoding) / pairs:.2f} s per pair, {pairs} pairs)")


class GreyRenderer:
    def frames(self, states: PhysicsStates, rows: np.ndarray) -> np.ndarray:
        return np.stack([np.full((FRAME_SIZE, FRAME_SIZE, 3), (40 + 7 * r) % 256, np.uint8) for r in rows])

    def close(self) -> None:
        pass


def page_load(loads: int, segment_length: int, root: Path) -> None:
    from ipl_core.data.datasets import OfflineDataset
    from ipl_core.labelling import make_query_set

    site = root / "site"
    shutil.copytree(PAGE, site, ignore=shutil.ignore_patterns("sets"))
    n, length = 4000, 100
    obs = np.zeros((n, 3), np.float32)
    timeouts = np.tile(np.arange(length) == length - 1, n // length)
    offline = OfflineDataset(obs, np.zeros((n, 2), np.float32), obs, np.zeros(n, np.float32),
                             np.zeros(n, bool), timeouts, "bench")
    states = PhysicsStates(qpos=np.zeros((n, 1)), qvel=np.zeros((n, 1)))
    make_query_set(site / "sets" / "bench", offline, states, GreyRenderer, "bench/v0", "Which is better?",
                   num_pairs=100, segment_length=segment_length, seed=0)
    size = sum(p.stat().st_size for p in (site / "sets" / "bench").rglob("*")) / 1e6
    driver = browser()
    times = []
    try:
        with serve(site) as url:
            for _ in range(loads):
                driver.get("about:blank")
                driver.get(f"{url}/index.html?set=bench")
                wait(lambda: driver.execute_script(
                    "const v = document.getElementById('clip');"
                    "return document.body.dataset.ready === 'true' && v.readyState >= 2;"), "the page")
                times.append(driver.execute_script("return performance.now();"))
    finally:
        driver.quit()
    print(f"page load with 100 pairs ({size:.1f} MB of clips and pairs, served locally): median "
          f"{np.median(times):.0f} ms until the pairs are read and the first clip can play "
          f"(min {min(times):.0f}, max {max(times):.0f} ms, {loads} loads)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=8)
    parser.add_argument("--segment-length", type=int, default=25)
    parser.add_argument("--loads", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-labelling-") as tmp:
        rendering(args.pairs, args.segment_length, Path(tmp))
        if shutil.which("chromium") and shutil.which("chromedriver"):
            page_load(args.loads, args.segment_length, Path(tmp))
        else:
            print("page load: skipped (needs chromium and chromium-driver)")


if __name__ == "__main__":
    main()
