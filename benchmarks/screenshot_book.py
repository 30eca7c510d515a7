"""Screenshots of every chapter page of a built book, taken by headless Chromium.

    python benchmarks/screenshot_book.py [--html _build/html] [--out _build/screenshots] [--width 1280]

Needs Debian's `chromium` and `chromium-driver` and the PyPI package `selenium` (the `test` extra). Pages are
opened from disk (file://), so the local MathJax copy renders the maths with no network. For each page of
`_toc.yml` it writes `<out>/<page path with / as __>.png`: the top of the page, and the whole page when
`--full-page` is given (the window is stretched to the page's height). It prints one line per page with the
number of MathJax formulas that rendered, of those that failed, and of display equations too wide for the
text column (they scroll sideways: split them with `aligned`), and exits with status 1 when a page is
missing, a formula failed to render or a display equation is too wide.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def toc_pages(toc_file: Path) -> list[str]:
    """Every page of the table of contents, root first, as paths without suffix ("book/foundations/mdp")."""
    toc = yaml.safe_load(toc_file.read_text())
    pages = [toc["root"]]
    for part in toc.get("parts", []):
        pages += [chapter["file"] for chapter in part["chapters"]]
    return pages


def browser(width: int, height: int):  # -> selenium.webdriver.Chrome (imported lazily: optional)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--allow-file-access-from-files", f"--window-size={width},{height}"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def wait_for_mathjax(driver, timeout_s: float = 30.0) -> tuple[int, int]:
    """Wait until MathJax has typeset the page; return (formulas rendered, formulas with an error)."""
    script = """
        const mj = window.MathJax;
        if (!mj || !mj.startup || !mj.startup.promise) { return 'none'; }
        if (!window.__iplDone) { window.__iplDone = 'wait'; mj.startup.promise.then(() => mj.typesetPromise ?
            mj.typesetPromise() : null).then(() => { window.__iplDone = 'done'; }); }
        return window.__iplDone;
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        state = driver.execute_script(script)
        if state in ("done", "none"):
            break
        time.sleep(0.2)
    rendered = driver.execute_script("return document.querySelectorAll('mjx-container').length;")
    errors = driver.execute_script("return document.querySelectorAll('mjx-merror, [data-mjx-error]').length;")
    return int(rendered), int(errors)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--html", type=Path, default=ROOT / "_build" / "html")
    parser.add_argument("--out", type=Path, default=ROOT / "_build" / "screenshots")
    parser.add_argument("--toc", type=Path, default=ROOT / "_toc.yml")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=900)
    parser.add_argument("--full-page", action="store_true", help="capture the whole page, not only its top")
    args = parser.parse_args(argv)
    if not (args.html / "index.html").is_file():
        print(f"error: no built book at {args.html} (run `make book` first)", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    failures = 0
    driver = browser(args.width, args.height)
    try:
        for page in toc_pages(args.toc):
            html = args.html / f"{page}.html"
            if not html.is_file():
                print(f"MISSING {html}")
                failures += 1
                continue
            driver.set_window_size(args.width, args.height)
            driver.get(html.resolve().as_uri())
            rendered, errors = wait_for_mathjax(driver)
            too_wide = int(driver.execute_script(
                "return [...document.querySelectorAll('div.math mjx-container')]"
                ".filter(e => e.scrollWidth > e.clientWidth + 1).length;"
            ))
            if args.full_page:
                height = driver.execute_script("return document.documentElement.scrollHeight;")
                driver.set_window_size(args.width, min(int(height), 30000))
            png = args.out / f"{page.replace('/', '__')}.png"
            driver.save_screenshot(str(png))
            failures += errors > 0 or too_wide > 0
            status = "ok" if errors == 0 and too_wide == 0 else "FAILED"
            print(f"{status} {page}: {rendered} formulas, {errors} errors, {too_wide} too wide -> {png}")
    finally:
        driver.quit()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
