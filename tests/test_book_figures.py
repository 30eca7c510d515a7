"""Committed figures are what their scripts draw."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_pipeline_svg_is_up_to_date(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("pipeline", ROOT / "book" / "figures" / "pipeline.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    fresh = module.main(tmp_path / "pipeline.svg")
    committed = ROOT / "book" / "figures" / "pipeline.svg"
    assert fresh.read_bytes() == committed.read_bytes(), (
        "book/figures/pipeline.svg is out of date: run `python book/figures/pipeline.py`"
    )
