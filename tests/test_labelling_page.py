"""The book's static labelling page in a real browser (headless Chromium driven by selenium).

Ten pairs are answered with key presses and clicks, one answer is undone, the answers are exported, and
the exported file is loaded with ``ipl_core.data.labels.load_labels`` and checked label by label. One test
serves the page from a folder it builds itself (page files from ``book/_extra/labelling`` and a small query
set), so it runs without a book build; the other opens the page of the built book (after ``make book``).
Further tests on the folder built here check what the page does around that: stored answers it cannot read
are set aside and reported, two tabs of one set lose no answer, a failed save is reported until saving works
again, a key answers once (held keys, Space or Enter on a clicked button, Caps Lock), Export waits for the
pairs and an answer, and the status, progress bar and clip are labelled for screen readers. All skip with the
reason when Chromium, chromedriver or selenium are missing
(``apt-get install chromium chromium-driver``; selenium is in the test extra).
"""

from __future__ import annotations

import functools
import http.server
import json
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


def build_toy_site(site: Path) -> Path:
    """The page files and a query set of twelve pairs named ``toy`` in ``site``; returns ``site``."""
    from ipl_core.data.datasets import OfflineDataset

    shutil.copytree(PAGE, site, ignore=shutil.ignore_patterns("sets"))
    rng = np.random.default_rng(0)
    n, length = 120, 20
    obs = rng.normal(size=(n, 3)).astype(np.float32)
    offline = OfflineDataset(obs, rng.uniform(-1, 1, (n, 2)).astype(np.float32), obs, rng.normal(size=n),
                             np.zeros(n, bool), np.tile(np.arange(length) == length - 1, n // length), "toy")
    states = PhysicsStates(qpos=np.zeros((n, 1)), qvel=np.zeros((n, 1)))
    make_query_set(site / "sets" / "toy", offline, states, GreyRenderer, "toy/v0", "Which grey is nicer?",
                   num_pairs=12, segment_length=5, seed=0, fps=5)
    return site


@pytest.fixture(scope="module")
def toy_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    needs_browser()
    pytest.importorskip("imageio_ffmpeg", reason="clips need imageio-ffmpeg (the envs extra)")
    return build_toy_site(tmp_path_factory.mktemp("labelling") / "site")


def test_labelling_page_in_chromium_from_a_folder_built_here(toy_site: Path, tmp_path: Path) -> None:
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    with serve(toy_site) as url:
        exported = label_ten_pairs(url, "toy", downloads)
    check_export(exported, toy_site / "sets" / "toy")


# The page's behaviour around local storage, tabs, keys and its first moments, on the toy set.
def storage_key(site: Path) -> str:
    pairs = json.loads((site / "sets" / "toy" / "pairs.json").read_text())
    return f"ipl-book-labels:{pairs['dataset_id']}:{pairs['fingerprint']}"


def open_toy(driver, url: str) -> None:
    from selenium.webdriver.common.by import By

    driver.get(f"{url}/index.html?set=toy")
    wait(lambda: driver.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "true",
         "the page to read pairs.json")


def answered(driver) -> int:
    from selenium.webdriver.common.by import By

    return int(driver.find_element(By.TAG_NAME, "body").get_attribute("data-answered"))


def press(driver, key: str, expected: int) -> None:
    """Press ``key`` and wait until the page holds ``expected`` answers."""
    from selenium.webdriver.common.action_chains import ActionChains

    ActionChains(driver).send_keys(key).perform()
    wait(lambda: answered(driver) == expected, f"{expected} answers after pressing {key!r}")


def status(driver) -> str:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.ID, "status").text


def stored(driver, key: str):
    return json.loads(driver.execute_script("return localStorage.getItem(arguments[0]);", key))


def test_unreadable_stored_entries_are_set_aside_and_the_readable_ones_kept(toy_site: Path,
                                                                            tmp_path: Path) -> None:
    from selenium.webdriver.common.keys import Keys

    key = storage_key(toy_site)
    backups = "return Object.keys(localStorage).filter((k) => k.startsWith(arguments[0])).sort();"
    get = "return localStorage.getItem(arguments[0]);"
    with serve(toy_site) as url, chromium(tmp_path) as driver:
        open_toy(driver, url)
        raw = '[[0,"left"],[1,"right"],[2,"maybe"]]'
        driver.execute_script("localStorage.setItem(arguments[0], arguments[1]);", key, raw)
        open_toy(driver, url)
        assert "2 answered" in status(driver)
        assert "1 stored entry could not be read and was set aside" in status(driver)
        [backup] = driver.execute_script(backups, key + ":set-aside:")
        assert driver.execute_script(get, backup) == raw
        press(driver, Keys.ARROW_LEFT, 3)  # pair 3 is the next one
        assert stored(driver, key) == [[0, "left"], [1, "right"], [2, "left"]]
        assert driver.execute_script(get, backup) == raw
        # a stored text that is no JSON at all is set aside too, next to the first one
        driver.execute_script("localStorage.setItem(arguments[0], arguments[1]);", key, "[[0,")
        open_toy(driver, url)
        assert "0 answered" in status(driver) and "1 stored entry could not be read" in status(driver)
        assert [driver.execute_script(get, k) for k in driver.execute_script(backups, key + ":set-aside:")] \
            == [raw, "[[0,"]


def test_two_tabs_of_one_set_lose_no_answer(toy_site: Path, tmp_path: Path) -> None:
    from selenium.webdriver.common.keys import Keys

    key = storage_key(toy_site)
    with serve(toy_site) as url, chromium(tmp_path) as driver:
        open_toy(driver, url)
        tab_a = driver.current_window_handle
        driver.switch_to.new_window("tab")
        open_toy(driver, url)
        tab_b = driver.current_window_handle
        driver.switch_to.window(tab_a)
        for count in (1, 2, 3):
            press(driver, Keys.ARROW_LEFT, count)
        driver.switch_to.window(tab_b)
        wait(lambda: answered(driver) == 3, "tab B to take in tab A's answers")
        assert "Pair 4 of 12" in status(driver)
        press(driver, Keys.ARROW_RIGHT, 4)
        press(driver, Keys.ARROW_RIGHT, 5)
        driver.switch_to.window(tab_a)
        wait(lambda: answered(driver) == 5, "tab A to take in tab B's answers")
        press(driver, "e", 6)
        assert stored(driver, key) == [[0, "left"], [1, "left"], [2, "left"], [3, "right"], [4, "right"],
                                       [5, "equal"]]
        # answers stored while this tab heard nothing of them (no storage event) are kept as well
        driver.execute_script("const list = JSON.parse(localStorage.getItem(arguments[0]));"
                              "list.push([9, 'skip']);"
                              "localStorage.setItem(arguments[0], JSON.stringify(list));", key)
        press(driver, Keys.ARROW_LEFT, 8)
        assert stored(driver, key) == [[0, "left"], [1, "left"], [2, "left"], [3, "right"], [4, "right"],
                                       [5, "equal"], [9, "skip"], [6, "left"]]


def test_a_failed_save_warns_until_saving_works_again(toy_site: Path, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    key = storage_key(toy_site)
    with serve(toy_site) as url, chromium(tmp_path) as driver:
        open_toy(driver, url)
        press(driver, Keys.ARROW_LEFT, 1)
        assert "not being saved" not in status(driver).lower()
        driver.execute_script("window.realSetItem = Storage.prototype.setItem;"
                              "Storage.prototype.setItem = function () {"
                              "  throw new DOMException('full', 'QuotaExceededError'); };")
        press(driver, Keys.ARROW_RIGHT, 2)
        assert "answers are not being saved" in status(driver).lower() and "export them now" in status(driver)
        press(driver, "e", 3)  # the warning stays
        assert "answers are not being saved" in status(driver).lower() and "export them now" in status(driver)
        assert stored(driver, key) == [[0, "left"]]
        assert driver.find_element(By.ID, "btn-export").is_enabled()
        driver.execute_script("Storage.prototype.setItem = window.realSetItem;")
        press(driver, "s", 4)
        assert "not being saved" not in status(driver).lower()
        assert stored(driver, key) == [[0, "left"], [1, "right"], [2, "equal"], [3, "skip"]]


def test_keys_answer_once_and_never_press_the_focused_button(toy_site: Path, tmp_path: Path) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    key = storage_key(toy_site)
    with serve(toy_site) as url, chromium(tmp_path) as driver:
        open_toy(driver, url)
        driver.find_element(By.ID, "btn-left").click()
        wait(lambda: answered(driver) == 1, "the click's answer")
        ActionChains(driver).send_keys(Keys.SPACE).send_keys(Keys.ENTER).perform()
        time.sleep(0.5)
        assert answered(driver) == 1, "Space or Enter pressed the clicked button again"
        # a held arrow key: one press, then the keyboard's repeats
        arrow = {"key": "ArrowRight", "code": "ArrowRight", "windowsVirtualKeyCode": 39}
        for repeat in (False, True, True, True):
            driver.execute_cdp_cmd("Input.dispatchKeyEvent",
                                   {"type": "rawKeyDown", "autoRepeat": repeat, **arrow})
        driver.execute_cdp_cmd("Input.dispatchKeyEvent", {"type": "keyUp", **arrow})
        wait(lambda: answered(driver) >= 2, "the arrow's answer")
        time.sleep(0.5)
        assert answered(driver) == 2, "a held arrow key answered several pairs"
        # Caps Lock on: the letters come in upper case
        press(driver, "E", 3)
        press(driver, "S", 4)
        press(driver, "U", 3)
        assert stored(driver, key) == [[0, "left"], [1, "right"], [2, "equal"]]


def test_export_waits_for_the_pairs_and_an_answer_and_the_page_is_labelled(toy_site: Path,
                                                                           tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    with serve(toy_site) as url, chromium(tmp_path) as driver:
        driver.get(f"{url}/index.html?set=no-such-set")  # its pairs.json never comes
        wait(lambda: "Could not read" in driver.find_element(By.ID, "question").text, "the error")
        assert not any(b.is_enabled() for b in driver.find_elements(By.TAG_NAME, "button"))
        open_toy(driver, url)
        export = driver.find_element(By.ID, "btn-export")
        assert not export.is_enabled()
        press(driver, Keys.ARROW_LEFT, 1)
        assert export.is_enabled()
        press(driver, "u", 0)
        assert not export.is_enabled()
        assert driver.find_element(By.ID, "status").get_attribute("aria-live") == "polite"
        for element in ("progress", "clip"):
            assert (driver.find_element(By.ID, element).get_attribute("aria-label") or "").strip(), element


@pytest.mark.skipif(not (BUILT / "sets" / BOOK_SET / "pairs.json").is_file(),
                    reason=f"no built labelling page at {BUILT}: run `make book` first")
def test_labelling_page_of_the_built_book(tmp_path: Path) -> None:
    needs_browser()
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    with serve(BUILT) as url:
        exported = label_ten_pairs(url, BOOK_SET, downloads)
    check_export(exported, BUILT / "sets" / BOOK_SET)
