"""Run a study's grid with papermill: ``python -m ipl_core.experiments.run <study|all> --profile smoke``.

The grid's cells (see :mod:`ipl_core.experiments.studies`) that differ only in the seed form one
configuration, ``results/<study>/<profile>/<config-id>/``. The unit of work is a **group**: up to
``--seeds-per-process`` seeds of one configuration, executed as one papermill run of
``book/experiments/<study>.ipynb`` with the parameters ``seeds`` (a list), ``run_dir`` (the configuration's
folder) and ``threads``. The notebook trains the group's seeds together and writes each seed's tables into
``run_dir/seed=<k>/``; after the run succeeded the runner writes each seed's ``config.json``, which marks that
seed complete. Complete seeds are skipped; an interrupted group is run again and the notebook resumes from its
checkpoints. Groups run in local processes (``--jobs``, which may share one GPU) or on a Ray cluster
(``--ray-address``); ``--dry-run`` lists the groups and an estimate of their wall time instead. Finally
:func:`ipl_core.experiments.aggregate.aggregate` turns the runs into the study's tables. Taught in the
appendix "Running the experiments at scale".
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from ipl_core.experiments.aggregate import aggregate, check
from ipl_core.experiments.studies import STUDIES, Cell, expand
from ipl_core.io import ALL_PROFILES, REPO_ROOT, RESULTS_DIR, device_description, git_commit, write_json

EXPERIMENTS_DIR = REPO_ROOT / "book" / "experiments"
THROUGHPUT_FILE = REPO_ROOT / "benchmarks" / "throughput-cpu.json"
"""Measured single-seed throughput at each study's shapes on a 2-core CPU (``benchmarks/throughput.py``)."""


@dataclass(frozen=True)
class Group:
    """Seeds of one configuration that run in one process: cells equal in everything but the seed."""

    cells: tuple[Cell, ...]

    @property
    def first(self) -> Cell:
        return self.cells[0]

    @property
    def seeds(self) -> list[int]:
        return [c.params["seed"] for c in self.cells]

    def parameters(self, results_dir: Path, threads: int) -> dict[str, Any]:
        """The papermill parameters: the configuration's values, ``seeds``, ``run_dir`` and ``threads``."""
        params = {k: v for k, v in self.first.params.items() if k != "seed"}
        return {**params, "seeds": self.seeds, "profile": self.first.profile,
                "run_dir": str(config_dir(self.first, results_dir).resolve()), "threads": threads}


def config_dir(cell: Cell, results_dir: Path) -> Path:
    """The folder of a cell's configuration: ``results/<study>/<profile>/<config-id>``."""
    return Path(results_dir) / cell.study / cell.profile / cell.config_id


def cell_dir(cell: Cell, results_dir: Path) -> Path:
    """Where one seed's results go: ``<config folder>/seed=<k>``."""
    return config_dir(cell, results_dir) / f"seed={cell.params['seed']}"


def is_complete(cell: Cell, results_dir: Path) -> bool:
    """A seed is complete when its ``config.json`` exists (written after its group's run succeeded)."""
    return (cell_dir(cell, results_dir) / "config.json").is_file()


def make_groups(cells: list[Cell], seeds_per_process: int) -> list[Group]:
    """Cells grouped by configuration (in the grid's order), each configuration's seeds cut into chunks
    of ``seeds_per_process``."""
    if seeds_per_process < 1:
        raise ValueError(f"seeds_per_process must be at least 1, got {seeds_per_process}")
    configs: dict[tuple[str, str, str], list[Cell]] = {}
    for cell in cells:
        configs.setdefault((cell.study, cell.profile, cell.config_id), []).append(cell)
    return [
        Group(tuple(members[i : i + seeds_per_process]))
        for members in configs.values()
        for i in range(0, len(members), seeds_per_process)
    ]


def default_threads(jobs: int) -> int:
    """Torch threads per process: this machine's cores shared out among the ``jobs`` processes. On a
    GPU the same share serves the CPU side (batches, evaluation environments)."""
    return max(1, (os.cpu_count() or 1) // max(1, jobs))


def run_group(
    group: Group,
    results_dir: Path,
    experiments_dir: Path = EXPERIMENTS_DIR,
    threads: int = 1,
    progress_bar: bool = False,
) -> list[Path]:
    """Execute the study notebook once for the group's incomplete seeds; return every seed's folder."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    todo = Group(tuple(c for c in group.cells if not is_complete(c, results_dir)))
    folders = [cell_dir(c, results_dir) for c in group.cells]
    if not todo.cells:
        return folders
    cell = todo.first
    notebook = Path(experiments_dir) / f"{cell.study}.ipynb"
    if not notebook.is_file():
        raise FileNotFoundError(f"study {cell.study!r}: no experiment notebook at {notebook}")
    out = config_dir(cell, results_dir)
    out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("MUJOCO_GL", "egl")
    parameters = todo.parameters(results_dir, threads)
    stem = f"seeds={'-'.join(map(str, todo.seeds))}"
    partial = out / f"{stem}.partial.ipynb"
    with Attempts(out / f"{stem}.attempts.json") as attempts:
        try:
            papermill.execute_notebook(str(notebook), str(partial), parameters=parameters,
                                       cwd=str(experiments_dir), progress_bar=progress_bar)
        except PapermillExecutionError as error:
            if "OutOfMemoryError" in error.ename:
                raise RuntimeError(
                    f"{out}: {len(todo.seeds)} seeds in one process (seeds_per_process) do not fit in the "
                    f"memory of device={cell.params['device']!r} ({error.ename}); lower --seeds-per-process"
                ) from error
            raise
    wall = attempts.seconds
    for member in todo.cells:
        folder = cell_dir(member, results_dir)
        if not (folder / "metrics.parquet").is_file():
            raise FileNotFoundError(f"{notebook.name} ran for seeds {todo.seeds} but wrote no "
                                    f"{folder / 'metrics.parquet'}; expected one per seed")
    for member in todo.cells:
        folder = cell_dir(member, results_dir)
        shutil.copyfile(partial, folder / "executed.ipynb")
        write_json(folder / "config.json", {
            **{k: v for k, v in parameters.items() if k not in ("seeds", "run_dir")},
            "seed": member.params["seed"],
            "run_dir": str(folder.resolve()),
            "study": member.study,
            "config_id": member.config_id,
            "commit": attempts.commits,
            "device_description": device_description(str(member.params["device"])),
            "seeds_per_process": len(todo.seeds),
            "wall_time_s": wall / len(todo.seeds),  # this seed's share: the sum over seeds is the compute
            "process_wall_time_s": wall,
            "attempts": len(attempts.records),
            "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        })
    partial.unlink()
    attempts.path.unlink()
    return folders


class Attempts:
    """The processes that ran one group of seeds, kept in ``path`` (JSON: a list of ``{"commit", "seconds"}``)
    while the group is unfinished. An interrupted process leaves its commit and its seconds (rewritten every
    ``interval`` seconds, so a killed one loses at most that much); the process that resumes from its
    checkpoints adds its own, so a finished cell records every commit it ran at and all of its wall time."""

    def __init__(self, path: Path, interval: float = 30.0) -> None:
        self.path, self.interval = path, interval
        self.records: list[dict[str, Any]] = []
        if path.is_file():
            try:
                self.records = [{"commit": str(r["commit"]), "seconds": float(r["seconds"])}
                                for r in json.loads(path.read_text())]
            except (TypeError, KeyError, ValueError) as error:  # ValueError: also bad JSON
                raise ValueError(f"{path}: expected a JSON list of records with 'commit' and 'seconds' "
                                 f"({error!r}); repair or delete it") from error
        self.records.append({"commit": git_commit(), "seconds": 0.0})
        self._started, self._stop = time.perf_counter(), threading.Event()
        self._beat = threading.Thread(target=self._write_every_interval, daemon=True)

    def _write(self) -> None:
        self.records[-1]["seconds"] = time.perf_counter() - self._started
        write_json(self.path, self.records)

    def _write_every_interval(self) -> None:
        while not self._stop.wait(self.interval):
            self._write()

    def __enter__(self) -> Attempts:
        self._write()
        self._beat.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._beat.join()
        self._write()

    @property
    def seconds(self) -> float:
        """Wall-clock seconds of every attempt together."""
        return float(sum(r["seconds"] for r in self.records))

    @property
    def commits(self) -> str:
        """Every commit an attempt ran at, in order, joined by ``;``."""
        return ";".join(dict.fromkeys(r["commit"] for r in self.records))


def run_grid(
    cells: list[Cell],
    results_dir: Path = RESULTS_DIR,
    jobs: int = 1,
    ray_address: str | None = None,
    experiments_dir: Path = EXPERIMENTS_DIR,
    seeds_per_process: int = 1,
    threads: int | None = None,
) -> list[Path]:
    """Run every incomplete seed, ``seeds_per_process`` seeds of a configuration per notebook run, locally
    with ``jobs`` processes at once or on a Ray cluster; return the folders of the seeds that ran."""
    if jobs < 1:
        raise ValueError(f"jobs must be at least 1, got {jobs}")
    if threads is None:  # on Ray a group asks a node for `threads` CPUs; nodes may be smaller than this one
        threads = 1 if ray_address is not None else default_threads(jobs)
    if threads < 1:
        raise ValueError(f"threads must be at least 1, got {threads}")
    todo = make_groups([c for c in cells if not is_complete(c, results_dir)], seeds_per_process)
    bar = tqdm(total=len(cells), initial=len(cells) - sum(len(g.cells) for g in todo), desc="seeds",
               unit="seed")
    done: list[Path] = []
    if ray_address is None:
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            futures = {pool.submit(run_group, g, results_dir, experiments_dir, threads, jobs == 1): g
                       for g in todo}
            for future in as_completed(futures):
                done.extend(future.result())
                bar.update(len(futures[future].cells))
    else:
        import ray

        ray.init(
            address=None if ray_address == "local" else ray_address,
            ignore_reinit_error=True,
            include_dashboard=False,
            log_to_driver=False,
        )
        remote = ray.remote(num_cpus=threads)(run_group)
        pending = {
            remote.remote(g, Path(results_dir).resolve(), Path(experiments_dir).resolve(), threads): g
            for g in todo
        }
        waiting = list(pending)
        while waiting:
            ready, waiting = ray.wait(waiting, num_returns=1)
            done.extend(ray.get(ready[0]))
            bar.update(len(pending[ready[0]].cells))
    bar.close()
    return done


def load_throughput(path: Path = THROUGHPUT_FILE) -> dict[str, Any]:
    """The measured throughput file (see :data:`THROUGHPUT_FILE`); a clear error if it is unreadable."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise FileNotFoundError(f"{path}: no readable throughput measurements ({error}); make them with "
                                "`python benchmarks/throughput.py`") from error
    for key in ("date", "command", "device", "studies"):
        if key not in data:
            raise KeyError(f"{path}: missing key {key!r}; expected date, command, device and studies")
    return data


def cell_seconds(cell: Cell, throughput: dict[str, Any]) -> float | None:
    """Estimated seconds of one seed of ``cell`` on the measured CPU, from :func:`load_throughput`'s
    rates: training steps over the measured updates per second of its method (at the rate measured with
    its reward model for the steps that train one, plus a separate reward-model phase where there is
    one) and its evaluation steps over the measured simulator steps per second. None when the study or
    the method has no measurement."""
    rates = throughput["studies"].get(cell.study)
    if rates is None:
        return None
    params = cell.params
    method = str(params.get("method", params.get("variant", params.get("algorithm", ""))))
    measured = rates.get("methods", {}).get(method)
    if measured is None:
        return None
    steps = params.get("steps") or params.get("total_steps") or 0
    seconds = steps / measured["updates_per_s"]
    reward_steps = measured.get("reward_steps", params.get("reward_steps")) or 0  # a variant may set its own
    if "with_reward_model_per_s" in measured:  # MR: its first reward_steps updates also train the reward
        shared = min(reward_steps, steps)
        seconds += shared / measured["with_reward_model_per_s"] - shared / measured["updates_per_s"]
    if "reward_phase_per_s" in measured:  # NMR, PT: the reward model is fitted before IQL
        seconds += reward_steps / measured["reward_phase_per_s"]
    if params.get("eval_every") and params.get("eval_episodes") and "env_steps_per_s" in rates:
        evaluations = steps // params["eval_every"] + 1
        length = params.get("eval_episode_length") or params.get("episode_length") or 0
        seconds += evaluations * params["eval_episodes"] * length / rates["env_steps_per_s"]
    return seconds


def plan(cells: list[Cell], results_dir: Path, seeds_per_process: int, jobs: int,
         throughput: dict[str, Any] | None = None) -> tuple[pd.DataFrame, str]:
    """The groups of a dry run (configuration, seeds, how many are complete, estimated seconds on the
    measured CPU) and one line that sums them up for ``jobs`` processes on the cells' device. On the CPU a
    group's seeds are counted at the single-seed rate, one after another: the rates are measured for one
    seed, and there is no measurement of what batching seeds gains on a CPU."""
    throughput = load_throughput() if throughput is None else throughput
    rows = []
    for group in make_groups(cells, seeds_per_process):
        todo = [c for c in group.cells if not is_complete(c, results_dir)]
        per_seed = cell_seconds(group.first, throughput)
        rows.append({"config_id": group.first.config_id, "seeds": group.seeds,
                     "complete": len(group.cells) - len(todo),
                     "estimate_s": np.nan if per_seed is None else per_seed * len(todo)})
    table = pd.DataFrame(rows)
    device = str(cells[0].params["device"]) if cells else "cpu"
    todo_seeds = sum(len(r["seeds"]) - r["complete"] for r in rows)
    head = f"{len(cells)} seeds in {len(rows)} groups of up to {seeds_per_process}, {todo_seeds} to run"
    if device != "cpu":
        return table.assign(estimate_s=np.nan), f"{head}; wall time on {device}: not measured on a GPU yet"
    unknown = table["estimate_s"].isna() & (table["complete"] < table["seeds"].map(len))
    if unknown.any():
        return table, f"{head}; wall time: no throughput measured for {int(unknown.sum())} groups"
    hours = float(table["estimate_s"].sum()) / 3600
    return table, (f"{head}; estimated {hours:.1f} CPU-hours at the rates measured on "
                   f"{throughput['device']} ({throughput['date']}): about {hours / jobs:.1f} h of wall "
                   f"time with --jobs {jobs} (an estimate, not a measurement)")


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
    parser = argparse.ArgumentParser(prog="python -m ipl_core.experiments.run",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("study", help=f"one of {sorted(STUDIES)}, or 'all'")
    parser.add_argument("--profile", default="smoke", choices=ALL_PROFILES)
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    parser.add_argument("--jobs", type=int, default=1,
                        help="processes at once on this machine (they may share one GPU)")
    parser.add_argument("--seeds-per-process", type=int, default=1,
                        help="seeds of one configuration trained together in one process (default 1)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads per process (default: this machine's cores // jobs; 1 on Ray)")
    parser.add_argument("--dry-run", action="store_true",
                        help="list the groups and the estimated wall time; run nothing")
    parser.add_argument("--check", action="store_true",
                        help="check that the stored run.json and summary.parquet agree with the cells on "
                             "disk; run nothing, exit 1 when they disagree")
    parser.add_argument("--allow-dirty", action="store_true",
                        help="run the cpu or full profile from a work tree with uncommitted changes (the "
                             "cells then record the commit with '+dirty', and the book shows it)")
    parser.add_argument(
        "--ray-address",
        default=None,
        help="run groups on Ray: 'auto' (an existing cluster), 'local' (start one), or an address",
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
    for name, value in (("--jobs", args.jobs), ("--seeds-per-process", args.seeds_per_process),
                        ("--threads", args.threads)):
        if value is not None and value < 1:
            parser.error(f"{name} must be at least 1, got {value}")
    studies = sorted(STUDIES) if args.study == "all" else [args.study]
    overrides = {"seed": tuple(args.seeds)} if args.seeds else {}
    try:
        overrides |= dict(parse_setting(text) for text in args.set)
        grids = {name: expand(name, args.profile, **overrides) for name in studies}  # checks all first
    except (KeyError, ValueError) as error:
        parser.error(str(error.args[0]) if error.args else str(error))
    if args.check:
        problems = [f"{name} ({args.profile}): {problem}" for name, cells in grids.items()
                    for problem in check(name, args.profile, args.results_dir, cells=cells)]
        agree = f"{', '.join(grids)} ({args.profile}): the stored tables agree with the cells"
        print("\n".join(problems) or agree)
        return 1 if problems else 0
    dirty = git_commit().endswith("+dirty")
    if args.profile != "smoke" and not args.dry_run and not args.allow_dirty and dirty:
        parser.error(f"the work tree has uncommitted changes: results of the {args.profile} profile must "
                     "come from a commit; commit first, or pass --allow-dirty (recorded as '+dirty' with "
                     "each cell)")
    for name, cells in grids.items():
        if args.dry_run:
            table, summary = plan(cells, args.results_dir, args.seeds_per_process, args.jobs)
            with pd.option_context("display.max_rows", None, "display.width", 200,
                                   "display.max_colwidth", 90):
                table["estimate_s"] = table["estimate_s"].round()
                print(f"{name} ({args.profile}):\n{table.to_string(index=False)}\n{summary}")
            continue
        tqdm.write(f"{name} ({args.profile}): {len(cells)} seeds")
        run_grid(cells, args.results_dir, args.jobs, args.ray_address,
                 seeds_per_process=args.seeds_per_process, threads=args.threads)
        out = aggregate(name, args.profile, args.results_dir, cells=cells)
        tqdm.write(f"{name}: aggregated into {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
