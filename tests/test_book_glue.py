"""Every value a chapter's text shows through ``{glue:text}`` or ``{glue:figure}`` is glued by that chapter.

A missing name only fails the HTML build (a warning under ``-W``); this finds it without executing anything:
the names a notebook's code glues (string literals, f-strings as patterns) must cover every name its
markdown uses.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

BOOK = Path(__file__).resolve().parents[1] / "book"
NOTEBOOKS = sorted(p for p in BOOK.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
USED = re.compile(r"\{glue(?::text|:figure|:any|:md)?\}`([^`:]+)(?::[^`]*)?`|```\{glue:figure\}\s+(\S+)")
GLUED = re.compile(r"""glue\(\s*(f?)(["'])(.+?)\2""")


def glued_patterns(code: str) -> list[re.Pattern[str]]:
    """The names ``glue(...)`` calls in ``code`` give, as regular expressions (an f-string's fields match
    any text)."""
    patterns = []
    for is_f, _, name in GLUED.findall(code):
        if is_f:
            parts = re.split(r"\{[^}]*\}", name)
            patterns.append(re.compile(".+".join(re.escape(p) for p in parts) + r"\Z"))
        else:
            patterns.append(re.compile(re.escape(name) + r"\Z"))
    return patterns


def test_the_check_finds_a_missing_name() -> None:
    patterns = glued_patterns('glue("a-b", 1)\nglue(f"diff-{x}-{y}", 2)')
    assert any(p.match("diff-mrn-pebble") for p in patterns)
    assert not any(p.match("diff") for p in patterns)
    assert not any(p.match("a-c") for p in patterns)
    assert [m for m in USED.findall("see {glue:text}`a-b` and\n```{glue:figure} fig-x\n") if any(m)] == [
        ("a-b", ""), ("", "fig-x")]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: str(p.relative_to(BOOK)))
def test_every_glued_name_the_text_uses_is_glued(path: Path) -> None:
    cells = json.loads(path.read_text())["cells"]
    code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    text = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    patterns = glued_patterns(code)
    used = {a or b for a, b in USED.findall(text)}
    missing = sorted(name for name in used if not any(p.match(name) for p in patterns))
    assert not missing, f"{path.relative_to(BOOK)}: the text uses glue names no code cell glues: {missing}"
