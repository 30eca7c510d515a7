"""Run a study's grid with papermill: ``python -m ipl_core.run <study|all> --profile smoke``.

Each cell of the grid (see :mod:`ipl_core.studies`) executes ``book/experiments/<study>.ipynb`` with its
parameters into ``results/<study>/<profile>/<config-id>/seed=<k>/``; the notebook writes its tables there
(``metrics.parquet``) and the runner writes ``config.json`` last, which marks the cell complete. Complete
cells are skipped; an interrupted cell is run again and the notebook resumes from its own checkpoint.
Cells run in local processes (``--jobs``), or on a Ray cluster (``--ray-address auto`` or an address).
Finally :func:`ipl_core.aggregate.aggregate` turns the runs into the study's tables.
Taught in the appendix "Running the experiments at scale".
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from tqdm import tqdm

from ipl_core.aggregate import aggregate
from ipl_core.results import PROFILES, REPO_ROOT, RESULTS_DIR, device_description, git_commit, write_json
from ipl_core.studies import STUDIES, Cell, expand

EXPERIMENTS_DIR = REPO_ROOT / "book" / "experiments"


def cell_dir(cell: Cell, results_dir: Path) -> Path:
    """Where a cell's results go."""
    return Path(results_dir) / cell.study / cell.profile / cell.relative_dir


def is_complete(cell: Cell, results_dir: Path) -> bool:
    """A cell is complete when its ``config.json`` exists (written after the notebook succeeded)."""
    return (cell_dir(cell, results_dir) / "config.json").is_file()


def run_cell(
    cell: Cell, results_dir: Path, experiments_dir: Path = EXPERIMENTS_DIR, progress_bar: bool = False
) -> Path:
    """Execute the study notebook for one cell, unless it is complete; return the cell's folder."""
    import papermill

    out = cell_dir(cell, results_dir)
    if is_complete(cell, results_dir):
        return out
    notebook = Path(experiments_dir) / f"{cell.study}.ipynb"
    if not notebook.is_file():
        raise FileNotFoundError(f"study {cell.study!r}: no experiment notebook at {notebook}")
    out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("MUJOCO_GL", "egl")
    started = time.perf_counter()
    parameters: dict[str, Any] = {**cell.params, "profile": cell.profile, "run_dir": str(out.resolve())}
    executed = out / "executed.ipynb"
    papermill.execute_notebook(
        str(notebook),
        str(executed.with_suffix(".partial.ipynb")),
        parameters=parameters,
        cwd=str(experiments_dir),
        progress_bar=progress_bar,
    )
    shutil.move(executed.with_suffix(".partial.ipynb"), executed)
    write_json(
        out / "config.json",
        {
            **parameters,
            "study": cell.study,
            "config_id": cell.config_id,
            "commit": git_commit(),
            "device_description": device_description(str(cell.params.get("device", "cpu"))),
            "wall_time_s": time.perf_counter() - started,
        },
    )
    return out


def run_grid(
    cells: list[Cell],
    results_dir: Path = RESULTS_DIR,
    jobs: int = 1,
    ray_address: str | None = None,
    experiments_dir: Path = EXPERIMENTS_DIR,
) -> list[Path]:
    """Run every incomplete cell, locally with ``jobs`` parallel notebooks or on a Ray cluster."""
    todo = [c for c in cells if not is_complete(c, results_dir)]
    bar = tqdm(total=len(cells), initial=len(cells) - len(todo), desc="cells", unit="cell")
    done: list[Path] = []
    if ray_address is None:
        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            futures = [pool.submit(run_cell, c, results_dir, experiments_dir, jobs == 1) for c in todo]
            for future in as_completed(futures):
                done.append(future.result())
                bar.update()
    else:
        import ray

        ray.init(
            address=None if ray_address == "local" else ray_address,
            ignore_reinit_error=True,
            include_dashboard=False,
            log_to_driver=False,
        )
        remote = ray.remote(num_cpus=1)(run_cell)
        pending = [
            remote.remote(c, Path(results_dir).resolve(), Path(experiments_dir).resolve()) for c in todo
        ]
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            done.append(ray.get(ready[0]))
            bar.update()
    bar.close()
    return done


def parse_setting(text: str) -> tuple[str, Any]:
    """``"steps=5000"`` -> ``("steps", 5000)``; the value is JSON when it parses, else the text itself."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise ValueError(f"--set expects KEY=VALUE, got {text!r}")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ipl_core.run", description=__doc__.splitlines()[0])
    parser.add_argument("study", help=f"one of {sorted(STUDIES)}, or 'all'")
    parser.add_argument("--profile", default="smoke", choices=PROFILES)
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    parser.add_argument("--jobs", type=int, default=1, help="cells run at once on this machine")
    parser.add_argument(
        "--ray-address",
        default=None,
        help="run cells on Ray: 'auto' (an existing cluster), 'local' (start one), or an address",
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=None, help="override the profile's seeds")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a setting or grid axis (VALUE read as JSON, else as text), e.g. --set device=cuda",
    )
    args = parser.parse_args(argv)
    studies = sorted(STUDIES) if args.study == "all" else [args.study]
    for name in studies:
        overrides = {"seed": tuple(args.seeds)} if args.seeds else {}
        overrides |= dict(parse_setting(text) for text in args.set)
        cells = expand(name, args.profile, **overrides)
        tqdm.write(f"{name} ({args.profile}): {len(cells)} cells")
        run_grid(cells, args.results_dir, args.jobs, args.ray_address)
        out = aggregate(name, args.profile, args.results_dir)
        tqdm.write(f"{name}: aggregated into {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
