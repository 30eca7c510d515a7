"""A pytest plugin that keeps only the tests that skip where CUDA is missing.

    python3 -m pytest -p cuda_tests tests/...   # with benchmarks/device on PYTHONPATH

A test is kept when one of its ``skipif`` marks gives a reason naming CUDA and its condition equals "CUDA
is missing" on this machine (``skipif(not torch.cuda.is_available(), reason="needs CUDA")``), so the same
tests are selected with or without a GPU: on a GPU they run, elsewhere they are reported as skipped. A test
that skips where CUDA *is* present (it checks the error without CUDA) is left out.
"""

from __future__ import annotations

import pytest
import torch


def needs_cuda(item: pytest.Item, cuda_missing: bool) -> bool:
    """Whether ``item`` carries a skipif mark on CUDA whose condition is ``cuda_missing``."""
    for mark in item.iter_markers("skipif"):
        reason = str(mark.kwargs.get("reason", ""))
        conditions = [*mark.args, *([mark.kwargs["condition"]] if "condition" in mark.kwargs else [])]
        if "cuda" in reason.lower() and conditions and all(isinstance(c, bool) for c in conditions) \
                and any(conditions) == cuda_missing:
            return True
    return False


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect every test that does not need CUDA and print the ones kept."""
    cuda_missing = not torch.cuda.is_available()
    kept = [item for item in items if needs_cuda(item, cuda_missing)]
    dropped = [item for item in items if not needs_cuda(item, cuda_missing)]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
    items[:] = kept
    print(f"\ncuda_tests: {len(kept)} test(s) need CUDA (CUDA {'missing' if cuda_missing else 'present'}):")
    for item in kept:
        print(f"  {item.nodeid}")
