"""The book and the library speak of their subject only, and every course chapter opens on Colab."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]

# Phrases about how the book was made rather than about preference-based RL. Each is a regular expression,
# matched case-insensitively against the text a reader sees (notebook sources, markdown, library code).
PROCESS_TALK = [
    r"FACTS\.md",
    r"\.\./shared\b",
    r"\bshared/(papers|STYLE)",
    r"\bthe issue\b",
    r"\bthis issue\b",
    r"\bissue #?\d+",
    r"\bsessions?\b",
    r"machines? that (built|builds|build)",
    r"\b(CPU|GPU|computer) that built\b",
    r"\bbuilt this (book|page|chapter)\b",
    r"where this book is built",
    r"\bNo GPU was\b",
    r"\b(was|were) lent\b",
    r"\bthe builders?\b",
]
PATTERN = re.compile("|".join(f"(?:{p})" for p in PROCESS_TALK), re.IGNORECASE)


def published_files() -> list[Path]:
    """Notebooks and markdown under book/, the library's code, and the top-level documents."""
    files = [p for p in (ROOT / "book").rglob("*") if p.suffix in {".ipynb", ".md"}]
    files += list((ROOT / "ipl_core").rglob("*.py"))
    files += [ROOT / name for name in ("README.md", "CONTRIBUTING.md", "pyproject.toml", "environment.yml")]
    skip = {"_build", ".ipynb_checkpoints"}
    return sorted(p for p in files if p.is_file() and not skip & set(p.parts))


def readable_text(path: Path) -> list[str]:
    """The lines of a file; for a notebook, the lines of its cell sources (outputs are never committed)."""
    if path.suffix == ".ipynb":
        cells = json.loads(path.read_text())["cells"]
        return [line for cell in cells for line in "".join(cell["source"]).splitlines()]
    return path.read_text().splitlines()


def process_talk(lines: list[str]) -> list[str]:
    return [f"line {i + 1}: {line.strip()}" for i, line in enumerate(lines) if PATTERN.search(line)]


@pytest.mark.parametrize(
    "phrase",
    [
        "as measured in FACTS.md",
        "copied from ../shared/papers/",
        "(the issue asked for agreement better than 10^-3)",
        "No GPU was lent to the sessions that built this book",
        "cannot be downloaded on the machine that built this book",
        "On the CPU that built this page",
    ],
)
def test_the_pattern_catches_known_process_talk(phrase: str) -> None:
    assert process_talk([phrase]), phrase


@pytest.mark.parametrize(
    "phrase",
    ["on a 2-core CPU", "The book builds with no network access", "issues of scale", "a lent hand"],
)
def test_the_pattern_leaves_subject_text_alone(phrase: str) -> None:
    assert not process_talk([phrase]), phrase


@pytest.mark.parametrize("path", published_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_process_talk(path: Path) -> None:
    found = process_talk(readable_text(path))
    assert not found, f"{path.relative_to(ROOT)} talks about how the book was made:\n" + "\n".join(found)


def course_chapters() -> list[Path]:
    """The notebook chapters of Parts I-IV and VI in _toc.yml (the appendix and Part V read stored runs)."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    chapters = []
    for part in toc["parts"]:
        if part["caption"].startswith(("Part I:", "Part II:", "Part III:", "Part IV:", "Part VI:")):
            chapters += [ROOT / f"{c['file']}.ipynb" for c in part["chapters"]
                         if not (ROOT / f"{c['file']}.md").is_file()]  # a part's index page is markdown
    return chapters


def test_the_course_parts_are_found() -> None:
    names = {p.stem for p in course_chapters()}
    assert {"mdp", "bradley_terry", "inverse_bellman", "theory", "offline", "reward_models", "sac"} <= names


@pytest.mark.parametrize("chapter", course_chapters(), ids=lambda p: str(p.relative_to(ROOT)))
def test_chapter_has_the_colab_install_cell(chapter: Path) -> None:
    """The second code cell (after `parameters`) installs ipl_core on Colab, and only there."""
    assert chapter.is_file(), f"{chapter.relative_to(ROOT)} is listed in _toc.yml but is not a notebook"
    code = [c for c in json.loads(chapter.read_text())["cells"] if c["cell_type"] == "code"]
    assert len(code) >= 2, f"{chapter.relative_to(ROOT)}: expected a parameters cell and an install cell"
    source = "".join(code[1]["source"])
    assert 'if "google.colab" in sys.modules:' in source, (
        f"{chapter.relative_to(ROOT)}: the second code cell is not the Colab install cell"
    )
    assert re.search(r'%pip install --quiet "ipl_core\[[a-z,]*book[a-z,]*\] @ git\+https://\S+" '
                     r'"\{torch_pin\}"$', source, re.MULTILINE), (
        f"{chapter.relative_to(ROOT)}: the install cell does not install ipl_core[book] from git beside the "
        "torch already there (tests/colab_install.py)"
    )


# "Eq. 6" must say whose: a paper's short name (IPL, MRN, IQL, ...) or "<Author> et al." right before it.
BARE_EQUATION = re.compile(r"\bEqs?\.\s*\(?\d")
OWNER = re.compile(r"(?:\b[A-Z][A-Za-z-]*[A-Z]|\bet al\.)\s+$")


def bare_equation_citations(lines: list[str]) -> list[str]:
    found = []
    for i, line in enumerate(lines):
        for match in BARE_EQUATION.finditer(line):
            if not OWNER.search(line[: match.start()]):
                found.append(f"line {i + 1}: {line.strip()}")
    return found


def test_the_equation_rule_tells_bare_from_owned_citations() -> None:
    assert bare_equation_citations(['ylabel="IPL loss (Eq. 6, nats)"', "(Eq. 4-5, Lemma 1)"])
    assert not bare_equation_citations(["IPL Eq. 6", "MRN Eqs. 10-12", "Kim et al. Eq. 4", "{eq}`bt-model`"])


BOOK_FILES = [p for p in published_files() if p.is_relative_to(ROOT / "book")]


@pytest.mark.parametrize("path", BOOK_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_papers_equations_are_cited_with_the_papers_name(path: Path) -> None:
    found = bare_equation_citations(readable_text(path))
    assert not found, (
        f"{path.relative_to(ROOT)} cites an equation without naming the paper (write 'IPL Eq. 6'):\n"
        + "\n".join(found)
    )


@pytest.mark.parametrize("path", BOOK_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_equation_references_are_not_wrapped_in_parentheses(path: Path) -> None:
    """{eq} renders as "(3.2)" already; "({eq}`x`)" shows "((3.2))"."""
    lines = readable_text(path)
    found = [f"line {i + 1}: {line.strip()}" for i, line in enumerate(lines) if "({eq}`" in line]
    assert not found, f"{path.relative_to(ROOT)} wraps {{eq}} in parentheses:\n" + "\n".join(found)


# Mechanical slips a reader sees: an equation's label instead of its number (outside {eq}, e.g. inside a
# pseudocode block), a parameter's name instead of its value ("on `task`"), and "seed(s)" for a count.
RAW_LABEL = re.compile(r"\bEqs?\.\s+[a-z][a-z0-9]*(?:-[a-z0-9]+)+")
PLURAL_HACK = re.compile(r"\b(?:seed|task|episode|run|label|configuration|evaluation episode)\(s\)")


def notebook_parameters(path: Path) -> set[str]:
    """The names the cell tagged ``parameters`` assigns."""
    cells = json.loads(path.read_text())["cells"]
    source = "".join("".join(c["source"]) for c in cells if "parameters" in c["metadata"].get("tags", []))
    return set(re.findall(r"^([A-Za-z_]\w*)\s*=", source, re.M))


def literal_parameters(path: Path) -> list[str]:
    """Markdown of a chapter that names a parameter where its value belongs: "on `task`", "for `profile`".
    The experiment notebooks (book/experiments/) describe their parameters as such and are not read."""
    if path.suffix != ".ipynb" or "experiments" in path.parts:
        return []
    names = notebook_parameters(path)
    cells = json.loads(path.read_text())["cells"]
    found = []
    for cell in cells:
        if cell["cell_type"] != "markdown":
            continue
        for name in sorted(names):
            found += re.findall(rf"\b(?:on|for|of|in|at) `{name}`", "".join(cell["source"]))
    return found


def test_the_mechanical_checks_catch_their_slips(tmp_path: Path) -> None:
    assert RAW_LABEL.search("critic step (Eq. sac-critic)") and not RAW_LABEL.search("MRN Eq. 13, IPL Eq. 6")
    assert PLURAL_HACK.search("with 5 seed(s) per cell") and not PLURAL_HACK.search("five seeds (s = 5)")
    notebook = {"cells": [
        {"cell_type": "code", "metadata": {"tags": ["parameters"]}, "source": ['task = "walker-walk"\n']},
        {"cell_type": "markdown", "metadata": {}, "source": ["This chapter reads its runs on `task`."]},
    ]}
    (tmp_path / "x.ipynb").write_text(json.dumps(notebook))
    assert literal_parameters(tmp_path / "x.ipynb") == ["on `task`"]


@pytest.mark.parametrize("path", published_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_raw_labels_literal_parameters_or_plural_hacks(path: Path) -> None:
    lines = readable_text(path)
    found = [f"line {i + 1}: {line.strip()}" for i, line in enumerate(lines)
             if RAW_LABEL.search(line) or PLURAL_HACK.search(line)]
    found += literal_parameters(path)
    assert not found, f"{path.relative_to(ROOT)}:\n" + "\n".join(found)


@pytest.mark.parametrize("path", [p for p in BOOK_FILES if p.suffix == ".ipynb"],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_pages_that_show_verdicts_show_them_whole(path: Path) -> None:
    """pandas cuts a cell at 50 characters ("do not sep..."); a page that puts verdicts in tables lifts it."""
    cells = json.loads(path.read_text())["cells"]
    code = "".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    if ".verdict(" in code:
        assert 'pd.set_option("display.max_colwidth", None)' in code, path.relative_to(ROOT)


def citation_labels(bib: str) -> dict[str, str]:
    """What an author-year citation prints for each entry: the first author's surname, "et al." for three
    or more authors, "and" the second's for two, and the year."""
    labels = {}
    for key, body in re.findall(r"@\w+\{([^,]+),(.*?)\n\}", bib, re.S):
        author = re.search(r"author\s*=\s*\{((?:[^{}]|\{[^{}]*\})*)\}", body)
        year = re.search(r"year\s*=\s*\{?(\w+)", body)
        if author is None or year is None:
            continue
        surnames = [a.split(",")[0].strip("{} ") for a in author.group(1).split(" and ")]
        year = year.group(1)
        who = surnames[0] + (" et al." if len(surnames) > 2 else f" and {surnames[1]}" if len(surnames) == 2
                             else "")
        labels[key] = f"{who} {year}"
    return labels


def test_no_two_references_print_the_same_citation() -> None:
    entry = "@a{x,\n  author = {Lee, K. and Smith, L. and Abbeel, P.},\n  year = {2021}\n}"
    assert citation_labels(entry) == {"x": "Lee et al. 2021"}
    labels = citation_labels((ROOT / "book" / "references.bib").read_text())
    seen: dict[str, list[str]] = {}
    for key, label in labels.items():
        seen.setdefault(label, []).append(key)
    assert {label: keys for label, keys in seen.items() if len(keys) > 1} == {}


FIGURE_TEXT = re.compile(r"\b(?:xlabel|ylabel|title|label|suptitle|set_title|set_xlabel|set_ylabel)"
                         r"\s*[=(]\s*r?f?r?\"([^\"]*)\"")
PLAIN_MATHS = re.compile(r"\b(?:lambda|alpha|beta|gamma|tau|psi|theta|sigma|pi|mu)\b|[α-ωΑ-Ω]|\w\^\w")


def plain_maths_in_figures(code: str) -> list[str]:
    """Figure labels and titles whose maths is plain text ("IPL lambda", "γ^k"): outside $...$ no Greek
    letter, written out or in Unicode, and no caret. Names in braces (f-string fields) are not text."""
    found = []
    for text in FIGURE_TEXT.findall(code):
        outside = re.sub(r"\$[^$]*\$|\{[^}]*\}", " ", text)
        if PLAIN_MATHS.search(outside):
            found.append(text)
    return found


def test_the_figure_rule_tells_plain_from_typeset_maths() -> None:
    assert plain_maths_in_figures('ax.set(xlabel="IPL lambda", title="γ^k gap")') == ["IPL lambda", "γ^k gap"]
    assert plain_maths_in_figures('ax.set(xlabel=r"IPL $\\lambda$", title=f"alpha = {alpha}")') == [
        "alpha = {alpha}"]
    assert plain_maths_in_figures('ax.set(title=rf"$\\alpha$ = {alpha}", ylabel="return")') == []


@pytest.mark.parametrize("path", [p for p in BOOK_FILES if p.suffix == ".ipynb"],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_figure_labels_typeset_their_maths(path: Path) -> None:
    cells = json.loads(path.read_text())["cells"]
    code = "".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    found = plain_maths_in_figures(code)
    assert not found, f"{path.relative_to(ROOT)}: {found}"
