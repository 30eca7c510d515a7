"""Screenshots of the labelling page and the labelling widget, in headless Chromium.

The page is the book's ``labelling/index.html`` served over HTTP with the query set the chapter "Be the
teacher" renders (run the chapter first); three pairs are answered before the picture. The widget is its
own ES module (``ipl_core.labelling_widget``) rendered in a plain page with a stand-in for the Jupyter
model that holds the state the widget would receive after the same three answers.

    MUJOCO_GL=egl python benchmarks/screenshot_labelling.py --out book/_static/screenshots
"""

from __future__ import annotations

import argparse
import functools
import http.server
import json
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "book" / "_extra" / "labelling"
SET = "metaworld-drawer-open"


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def serve(folder: Path) -> Iterator[str]:
    """Serve ``folder`` over HTTP on a free local port; yields the base URL."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                             functools.partial(QuietHandler, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def browser(width: int = 760, height: int = 820):  # -> selenium.webdriver.Chrome
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--autoplay-policy=no-user-gesture-required", f"--window-size={width},{height}"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(shutil.which("chromedriver") or "/usr/bin/chromedriver"),
                            options=options)


def wait(condition, what: str, timeout_s: float = 30.0):
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if value := condition():
            return value
        time.sleep(0.05)
    raise TimeoutError(f"timed out after {timeout_s} s waiting for {what}")


def video_playing(driver, selector: str) -> bool:
    script = (f"const v = document.querySelector({selector!r});"
              "return v && v.readyState >= 2 && v.currentTime > 0.3;")
    return bool(driver.execute_script(script))


def page_screenshot(out: Path) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    driver = browser()
    try:
        with serve(PAGE) as url:
            driver.get(f"{url}/index.html?set={SET}")
            wait(lambda: driver.execute_script("return document.body.dataset.ready === 'true'"), "the pairs")
            driver.execute_script("localStorage.clear()")
            driver.refresh()
            wait(lambda: driver.execute_script("return document.body.dataset.ready === 'true'"), "the pairs")
            for key in (Keys.ARROW_LEFT, Keys.ARROW_RIGHT, "s"):
                ActionChains(driver).send_keys(key).perform()
            wait(lambda: video_playing(driver, "#clip"), "the clip to play")
            driver.save_screenshot(str(out))
            driver.execute_script("localStorage.clear()")
    finally:
        driver.quit()


def widget_screenshot(out: Path) -> None:
    from ipl_core.data.labels import load_query_set
    from ipl_core.labelling import LabellingState
    from ipl_core.labelling_widget import _ESM, KEYS, handle, view_state

    queries = load_query_set(PAGE / "sets" / SET)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        labelling = LabellingState(queries, folder / "my_labels.npz")
        for action in ("left", "right"):
            handle(labelling, action)
        state = view_state(labelling, handle(labelling, "skip"))
        (folder / "widget.js").write_text(_ESM % {"keys": json.dumps(KEYS)})
        (folder / "index.html").write_text(f"""<!DOCTYPE html><html><body style="margin: 16px">
<div id="widget"></div>
<script type="module">
import widget from "./widget.js";
const state = {json.dumps(state)};
const model = {{ get: () => state, on: () => {{}}, send: () => {{}} }};
widget.render({{ model, el: document.getElementById("widget") }});
</script></body></html>""")
        driver = browser(620, 600)
        try:
            with serve(folder) as url:
                driver.get(f"{url}/index.html")
                wait(lambda: video_playing(driver, ".ipl-labelling video"), "the widget's clip to play")
                driver.save_screenshot(str(out))
        finally:
            driver.quit()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "book" / "_static" / "screenshots")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    page_screenshot(args.out / "labelling_page.png")
    widget_screenshot(args.out / "labelling_widget.png")
    print(f"wrote {args.out / 'labelling_page.png'} and {args.out / 'labelling_widget.png'}")


if __name__ == "__main__":
    main()
