"""The built HTML reads cleanly: no raw maths, no unresolved roles, no '???' references, no error output.

Runs on `_build/html` when it exists (after `make book`); skipped with a reason otherwise. The text a reader
sees is checked: code blocks, cell inputs, scripts and the maths that MathJax typesets are left out.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
needs_build = pytest.mark.skipif(
    not (HTML / "index.html").is_file(), reason=f"no built book at {HTML}: run `make book` first"
)

RAW_MATH = re.compile(r"\$|\\\(|\\\)|\\\[|\\\]|\\(?:frac|mathcal|lVert|sum|alpha|gamma|pi|sigma)\b")
UNRESOLVED_ROLE = re.compile(r"\{(?:eq|doc|cite(?::[pt])?|glue(?::text)?|numref|ref|math)\}`?")
# Tags whose text is not prose: code, maths (MathJax typesets it), scripts and styles.
NOT_PROSE = ["pre", "code", "script", "style", "mjx-container", "math", "svg"]


def toc_pages() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    return [toc["root"]] + [c["file"] for part in toc["parts"] for c in part["chapters"]]


def prose_and_outputs(page: str) -> tuple[str, list[str]]:
    """The article's prose (maths and code removed) and the text of its error or traceback outputs."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup((HTML / f"{page}.html").read_text(), "html.parser")
    article = soup.find("article") or soup
    errors = [node.get_text() for node in article.select(".output.traceback, .output.error")]
    stderr = [node.get_text() for node in article.select(".output.stderr")]
    errors += [text for text in stderr if re.search(r"Traceback|Error\b", text)]
    for node in article.select(", ".join(NOT_PROSE) + ", .math, span.math, div.math, .cell_input"):
        node.decompose()
    return article.get_text(" "), errors


def snippets(text: str, pattern: re.Pattern[str]) -> list[str]:
    return [" ".join(text[max(0, m.start() - 40) : m.end() + 40].split()) for m in pattern.finditer(text)][:5]


@needs_build
@pytest.mark.parametrize("page", toc_pages())
def test_page_is_built(page: str) -> None:
    assert (HTML / f"{page}.html").is_file(), f"{page}.html is missing from {HTML}"


@needs_build
@pytest.mark.parametrize("page", toc_pages())
def test_no_raw_maths_unresolved_roles_or_missing_references(page: str) -> None:
    if not (HTML / f"{page}.html").is_file():
        pytest.fail(f"{page}.html is missing from {HTML}")
    text, _ = prose_and_outputs(page)
    assert not RAW_MATH.search(text), f"{page}: raw LaTeX in the prose: {snippets(text, RAW_MATH)}"
    assert not UNRESOLVED_ROLE.search(text), f"{page}: unresolved role: {snippets(text, UNRESOLVED_ROLE)}"
    assert "???" not in text, f"{page}: unresolved reference '???': {snippets(text, re.compile(r'[?]{3}'))}"


@needs_build
@pytest.mark.parametrize("page", toc_pages())
def test_no_error_output(page: str) -> None:
    if not (HTML / f"{page}.html").is_file():
        pytest.fail(f"{page}.html is missing from {HTML}")
    _, errors = prose_and_outputs(page)
    assert not errors, f"{page}: error output in the page: {[e[:200] for e in errors]}"


def test_the_checks_catch_known_defects() -> None:
    """The patterns flag the defects they are for, and leave ordinary prose alone."""
    assert RAW_MATH.search(r"+ \alpha \log Z(s)$ and stray \)s\(")
    assert UNRESOLVED_ROLE.search("see {eq}`th-ipl-loss` and {doc}`mdp`")
    assert not RAW_MATH.search("The Bellman operator (1.1) is a contraction; it costs 5 USD.")
    assert not UNRESOLVED_ROLE.search("a set {1, 2} and a dict {'eq': 1}")


@pytest.mark.slow
@needs_build
def test_every_page_renders_in_headless_chromium(tmp_path: Path) -> None:
    """benchmarks/screenshot_book.py opens every page, MathJax typesets it without errors, a PNG results."""
    import shutil
    import subprocess
    import sys

    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        pytest.skip("needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)")
    pytest.importorskip("selenium", reason="needs selenium (the test extra)")
    script = ROOT / "benchmarks" / "screenshot_book.py"
    command = [sys.executable, str(script), "--html", str(HTML), "--out", str(tmp_path)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    for page in toc_pages():
        png = tmp_path / f"{page.replace('/', '__')}.png"
        assert png.stat().st_size > 10_000, f"{page}: empty screenshot"
