"""The book's static labelling page in a real browser (headless Chromium driven by selenium).

Ten pairs are answered with key presses and clicks, one answer is undone, the answers are exported, and
the exported file is loaded with ``ipl_core.data.labels.load_labels`` and checked label by label. One test
serves the page from a folder it builds itself (page files from ``book/_extra/labelling`` and a small query
set), so it runs without a book build; the other opens the page of the built book (after ``make book``).
Both skip with the reason when Chromium, chromedriver or selenium are missing
(``apt-get install chromium chromium-driver``; selenium is in the test extra).
"""

from __future__ import annotations

import functools
import http.server
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from ipl_core.data import load_labels
from ipl_core.data.labels import ANSWERS, load_query_set
from ipl_core.labelling import make_query_set
from ipl_core.render import PhysicsStates

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "book" / "_extra" / "labelling"
BUILT = ROOT / "_build" / "html" / "labelling"
BOOK_SET = "metaworld-drawer-open"


def needs_browser() -> None:
    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        pytest.skip("needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)")
    pytest.importorskip("selenium", reason="needs selenium (the test extra)")


@contextmanager
def serve(folder: Path) -> Iterator[str]:
    """Serve ``folder`` over HTTP on a free local port; yields the base URL."""
    handler = functools.partial(QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def chromium(downloads: Path) -> Iterator[object]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--autoplay-policy=no-user-gesture-required", "--window-size=900,900"):
        options.add_argument(flag)
    options.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                              "download.prompt_for_download": False})
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def wait(condition, what: str, timeout_s: float = 20.0):
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


# Answers to ten pairs: (how, what); keys go to the page, clicks to the buttons. The fourth answer (a skip)
# is undone and pair 4 answered again.
STEPS = [("key", "ArrowLeft"), ("click", "right"), ("key", "ArrowDown"), ("key", "s"), ("key", "u"),
         ("click", "left"), ("key", "ArrowRight"), ("click", "equal"), ("key", "e"), ("click", "skip"),
         ("key", "ArrowLeft"), ("key", "ArrowRight")]
EXPECTED = ["left", "right", "equal", "left", "right", "equal", "equal", "skip", "left", "right"]


def label_ten_pairs(base_url: str, set_name: str, downloads: Path, screenshot: Path | None = None) -> Path:
    """Open the page, answer with keys and clicks (one undo), export; returns the exported file."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    keys = {"ArrowLeft": Keys.ARROW_LEFT, "ArrowRight": Keys.ARROW_RIGHT, "ArrowDown": Keys.ARROW_DOWN,
            "s": "s", "u": "u", "e": "e"}
    with chromium(downloads) as driver:
        driver.get(f"{base_url}/index.html?set={set_name}")
        wait(lambda: driver.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "true",
             "the page to read pairs.json")
        assert "Pair 1 of" in driver.find_element(By.ID, "status").text
        # the clip is decoded and plays (H.264 in MP4)
        wait(lambda: driver.execute_script("const v = document.getElementById('clip');"
                                           "return v.readyState >= 2 && v.videoWidth > 0 && !v.error;"),
             "the first clip to play")
        if screenshot is not None:
            driver.save_screenshot(str(screenshot))
        for count, (how, what) in enumerate(STEPS, start=1):
            if how == "key":
                ActionChains(driver).send_keys(keys[what]).perform()
            else:
                driver.find_element(By.ID, f"btn-{what}").click()
            undone = sum(step[1] == "u" for step in STEPS[:count])
            expected = count - 2 * undone  # an undo is no answer and takes one back
            wait(lambda expected=expected: driver.find_element(By.TAG_NAME, "body").get_attribute(
                "data-answered") == str(expected), f"{expected} answers after step {count}")
        assert driver.find_element(By.ID, "progress").get_attribute("value") == str(len(EXPECTED))
        # reloading keeps the answers (local storage)
        driver.refresh()
        wait(lambda: driver.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "true", "reload")
        assert f"Resumed: {len(EXPECTED)} answers" in driver.find_element(By.ID, "status").text
        driver.find_element(By.ID, "btn-export").click()
        return wait(lambda: next(iter(downloads.glob("labels-*.json")), None), "the exported file")


def check_export(exported: Path, query_set: Path) -> None:
    queries = load_query_set(query_set)
    prefs = load_labels(exported, queries)
    labelled = [(pair, answer) for pair, answer in enumerate(EXPECTED) if answer != "skip"]
    assert prefs.label.tolist() == [ANSWERS[answer] for _, answer in labelled]
    segments = queries.segments()
    for row, (pair, _) in enumerate(labelled):
        np.testing.assert_array_equal(prefs.obs_1[row], segments["obs_1"][pair])


class GreyRenderer:
    """Frames filled with a grey level per row: a stand-in for MuJoCo, so the test needs no simulator."""

    def frames(self, states: PhysicsStates, rows: np.ndarray) -> np.ndarray:
        return np.stack([np.full((64, 64, 3), (40 + 7 * r) % 256, dtype=np.uint8) for r in rows])

    def close(self) -> None:
        pass


def test_labelling_page_in_chromium_from_a_folder_built_here(tmp_path: Path) -> None:
    needs_browser()
    pytest.importorskip("imageio_ffmpeg", reason="clips need imageio-ffmpeg (the envs extra)")
    from ipl_core.data.datasets import OfflineDataset

    site = tmp_path / "site"
    shutil.copytree(PAGE, site, ignore=shutil.ignore_patterns("sets"))
    rng = np.random.default_rng(0)
    n, length = 120, 20
    obs = rng.normal(size=(n, 3)).astype(np.float32)
    offline = OfflineDataset(obs, rng.uniform(-1, 1, (n, 2)).astype(np.float32), obs, rng.normal(size=n),
                             np.zeros(n, bool), np.tile(np.arange(length) == length - 1, n // length), "toy")
    states = PhysicsStates(qpos=np.zeros((n, 1)), qvel=np.zeros((n, 1)))
    make_query_set(site / "sets" / "toy", offline, states, GreyRenderer, "toy/v0", "Which grey is nicer?",
                   num_pairs=12, segment_length=5, seed=0, fps=5)
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    with serve(site) as url:
        exported = label_ten_pairs(url, "toy", downloads)
    check_export(exported, site / "sets" / "toy")


@pytest.mark.skipif(not (BUILT / "sets" / BOOK_SET / "pairs.json").is_file(),
                    reason=f"no built labelling page at {BUILT}: run `make book` first")
def test_labelling_page_of_the_built_book(tmp_path: Path) -> None:
    needs_browser()
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    with serve(BUILT) as url:
        exported = label_ten_pairs(url, BOOK_SET, downloads)
    check_export(exported, BUILT / "sets" / BOOK_SET)
