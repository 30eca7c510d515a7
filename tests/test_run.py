"""The study grid, the papermill runner (groups of seeds, local threads and Ray, dry runs, devices) and the
aggregation."""

from __future__ import annotations

import json
import time
from pathlib import Path

import nbformat
import pandas as pd
import pytest
import torch

from ipl_core.experiments import studies
from ipl_core.experiments.aggregate import aggregate
from ipl_core.experiments.results import load_study
from ipl_core.experiments.run import (
    Attempts,
    Group,
    cell_dir,
    config_dir,
    main,
    make_groups,
    parse_setting,
    plan,
    run_grid,
    run_group,
)
from ipl_core.experiments.studies import Study, expand

TINY = Study(
    name="tiny",
    grid={p: {"width": (1, 2), "seed": (0, 1)} for p in ("smoke", "cpu", "full")},
    settings={p: {"steps": 3} for p in ("smoke", "cpu", "full")},
    score_metrics=("score",),
)


@pytest.fixture
def tiny_study(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A study whose notebook writes, for each of its seeds, a 3-step learning curve that depends on width
    and seed, and records the process id and thread count it ran with."""
    monkeypatch.setitem(studies.STUDIES, "tiny", TINY)
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell(
        'profile = "smoke"\nrun_dir = None\nseeds = [0]\nthreads = 1\nwidth = 1\nsteps = 3\ndevice = "cpu"'
    )
    params.metadata["tags"] = ["parameters"]
    body = nbformat.v4.new_code_cell(
        "import os\n"
        "import pandas as pd\n"
        "from ipl_core.io import write_table\n"
        "for seed in seeds:\n"
        "    rows = [{'step': s, 'seed': seed, 'score': width * (s + 1) + 0.1 * seed, 'pid': os.getpid(),\n"
        "             'threads': threads} for s in range(steps)]\n"
        "    write_table(f'{run_dir}/seed={seed}/metrics.parquet', pd.DataFrame(rows))\n"
    )
    nb.cells = [params, body]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    experiments = tmp_path / "experiments"
    experiments.mkdir()
    nbformat.write(nb, experiments / "tiny.ipynb")
    return experiments


def test_expand_crosses_the_axes_and_applies_overrides() -> None:
    cells = expand("bradley-terry", "smoke")
    assert len(cells) == 3 * 2
    assert {c.params["num_queries"] for c in cells} == {10, 100, 1000}
    assert all(c.params["num_states"] == 20 for c in cells)
    assert len(expand("bradley-terry", "smoke", seed=(5,))) == 3
    assert [c.relative_dir for c in expand("bradley-terry", "smoke")] == [c.relative_dir for c in cells]
    assert cells[0].relative_dir.startswith("num_queries=10,settings=") and cells[0].relative_dir.endswith(
        "seed=0"
    )
    with pytest.raises(KeyError, match="no grid axis or setting 'nope'"):
        expand("bradley-terry", "smoke", nope=1)
    with pytest.raises(KeyError, match="known studies"):
        expand("missing", "smoke")
    with pytest.raises(KeyError, match="unknown profile"):
        expand("bradley-terry", "huge")


def test_a_setting_change_gives_a_new_config_id() -> None:
    a = expand("bradley-terry", "smoke")[0]
    b = expand("bradley-terry", "smoke", l2=1.0)[0]
    assert a.config_id != b.config_id


def test_local_grid_skips_complete_cells_and_reruns_incomplete_ones(tiny_study: Path, tmp_path: Path) -> None:
    results = tmp_path / "results"
    cells = expand("tiny", "smoke")
    run_grid(cells, results, jobs=2, experiments_dir=tiny_study)
    out = aggregate("tiny", "smoke", results)
    summary = pd.read_parquet(out / "summary.parquet").set_index("width")
    assert summary.loc[2, "final_mean"] == pytest.approx(2 * 3 + 0.05)
    config = json.loads((cell_dir(cells[0], results) / "config.json").read_text())
    assert config["width"] == 1 and config["profile"] == "smoke"
    # A complete seed is skipped: its folder is left untouched.
    marker = cell_dir(cells[0], results) / "metrics.parquet"
    before = marker.stat().st_mtime_ns
    run_group(Group((cells[0],)), results, tiny_study)
    assert marker.stat().st_mtime_ns == before
    # A seed whose config.json is missing (killed before completion) runs again.
    (cell_dir(cells[1], results) / "config.json").unlink()
    assert run_grid(cells, results, experiments_dir=tiny_study) == [cell_dir(cells[1], results)]
    assert load_study("tiny", root=results).info.seeds == (0, 1)


def test_ray_gives_the_same_results_as_local_processes(tiny_study: Path, tmp_path: Path) -> None:
    ray = pytest.importorskip("ray")
    cells = expand("tiny", "smoke", seed=(0,))
    run_grid(cells, tmp_path / "local", experiments_dir=tiny_study)
    try:
        run_grid(cells, tmp_path / "ray", ray_address="local", experiments_dir=tiny_study)
    finally:
        ray.shutdown()
    local = aggregate("tiny", "smoke", tmp_path / "local")
    remote = aggregate("tiny", "smoke", tmp_path / "ray")
    columns = ["step", "seed", "score", "width"]
    pd.testing.assert_frame_equal(
        pd.read_parquet(local / "runs.parquet")[columns], pd.read_parquet(remote / "runs.parquet")[columns]
    )


def test_missing_notebook_is_named(tmp_path: Path, tiny_study: Path) -> None:
    cell = expand("bradley-terry", "smoke")[0]
    with pytest.raises(FileNotFoundError, match="no experiment notebook"):
        run_group(Group((cell,)), tmp_path, experiments_dir=tiny_study)


def test_set_overrides_parse_json_then_text() -> None:
    assert parse_setting("steps=5000") == ("steps", 5000)
    assert parse_setting("device=cuda") == ("device", "cuda")
    assert parse_setting("num_queries=[500, 2000]") == ("num_queries", [500, 2000])
    with pytest.raises(ValueError, match="--set expects KEY=VALUE, got 'steps'"):
        parse_setting("steps")
    overrides = dict([parse_setting("l2=0.5"), parse_setting("num_queries=[7]")])
    cells = studies.expand("bradley-terry", "smoke", **overrides)
    assert {c.params["l2"] for c in cells} == {0.5} and {c.params["num_queries"] for c in cells} == {7}


def test_steps_left_to_the_task_files_are_read_from_the_runs(
    tiny_study: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Online studies at `full` keep `total_steps` of each task's TOML (None in the profile): the run's
    recorded steps are then the last step the runs logged, so the book can still say how long they ran."""
    study = Study(name="tiny", grid={"smoke": {"width": (1,), "seed": (0,)}},
                  settings={"smoke": {"total_steps": None}}, score_metrics=("score",))
    monkeypatch.setitem(studies.STUDIES, "tiny", study)
    results = tmp_path / "results"
    run_grid(expand("tiny", "smoke"), results, experiments_dir=tiny_study)
    aggregate("tiny", "smoke", results)
    info = load_study("tiny", root=results).info
    assert info.steps == 2  # the notebook logs steps 0, 1, 2
    assert "2 steps per seed" in info.describe()


def test_seeds_of_a_configuration_run_in_one_process(tiny_study: Path, tmp_path: Path) -> None:
    results = tmp_path / "results"
    cells = expand("tiny", "smoke")
    run_grid(cells, results, jobs=2, experiments_dir=tiny_study, seeds_per_process=2, threads=3)
    for width in (1, 2):
        members = [c for c in cells if c.params["width"] == width]
        runs = [pd.read_parquet(cell_dir(c, results) / "metrics.parquet") for c in members]
        assert len({int(r.pid.iloc[0]) for r in runs}) == 1, "both seeds of a configuration in one process"
        assert all((r.threads == 3).all() for r in runs)
        for cell, run in zip(members, runs, strict=True):
            seed = cell.params["seed"]
            assert list(run.score) == pytest.approx([width * (s + 1) + 0.1 * seed for s in range(3)])
            config = json.loads((cell_dir(cell, results) / "config.json").read_text())
            assert (config["seed"], config["seeds_per_process"], config["threads"]) == (seed, 2, 3)
            assert config["device"] == "cpu" and config["commit"] and config["wall_time_s"] > 0
            assert config["process_wall_time_s"] == pytest.approx(2 * config["wall_time_s"])
            assert config["run_dir"] == str(cell_dir(cell, results).resolve())
    assert not list(results.rglob("*.partial.ipynb"))
    pids = {int(pd.read_parquet(p).pid.iloc[0]) for p in results.rglob("metrics.parquet")}
    assert len(pids) == 2  # one process per configuration
    # The layout is that of one seed per process: the aggregation reads it unchanged.
    summary = pd.read_parquet(aggregate("tiny", "smoke", results) / "summary.parquet").set_index("width")
    assert summary.loc[2, "final_mean"] == pytest.approx(2 * 3 + 0.05)


def test_a_resumed_group_records_every_attempt(tiny_study: Path, tmp_path: Path) -> None:
    """An interrupted process leaves its commit and seconds; the finished cells add them to their own."""
    results = tmp_path / "results"
    cells = [c for c in expand("tiny", "smoke") if c.params["width"] == 1]
    earlier = [{"commit": "0" * 40, "seconds": 100.0}]  # what a killed process left behind
    (config_dir(cells[0], results)).mkdir(parents=True)
    (config_dir(cells[0], results) / "seeds=0-1.attempts.json").write_text(json.dumps(earlier))
    run_group(Group(tuple(cells)), results, tiny_study)
    for cell in cells:
        config = json.loads((cell_dir(cell, results) / "config.json").read_text())
        first, now = config["commit"].split(";")
        assert first == "0" * 40 and now and config["attempts"] == 2
        assert 100.0 < config["process_wall_time_s"] < 200.0
        assert config["wall_time_s"] == pytest.approx(config["process_wall_time_s"] / 2)
    assert not list(results.rglob("*.attempts.json"))  # gone once the group has finished
    info = load_study("tiny", root=aggregate("tiny", "smoke", results).parents[1]).info
    assert info.commit.split(";")[0] == "0" * 40 and info.commit.count(";") == 1  # each commit once


def test_an_interrupted_attempt_is_kept_with_its_seconds(tmp_path: Path) -> None:
    path = tmp_path / "seeds=0.attempts.json"
    with pytest.raises(KeyboardInterrupt), Attempts(path, interval=0.05):
        time.sleep(0.2)
        assert json.loads(path.read_text())[0]["seconds"] > 0.0  # rewritten while the process runs
        raise KeyboardInterrupt
    [record] = json.loads(path.read_text())
    assert record["seconds"] >= 0.2 and record["commit"]
    with Attempts(path) as attempts:
        pass
    assert len(attempts.records) == 2 and attempts.seconds >= 0.2
    path.write_text('[{"commit": "abc"}]')
    with pytest.raises(ValueError, match=r"seeds=0.attempts.json: expected a JSON list .*'seconds'"):
        Attempts(path)


def test_groups_cut_each_configuration_into_chunks_of_seeds() -> None:
    cells = expand("bradley-terry", "smoke", seed=(0, 1, 2, 3, 4), num_queries=(10, 100))
    groups = make_groups(cells, 2)
    assert [g.seeds for g in groups] == [[0, 1], [2, 3], [4], [0, 1], [2, 3], [4]]
    assert all(len({c.config_id for c in g.cells}) == 1 for g in groups)
    assert [g.seeds for g in make_groups(cells, 1)] == [[k] for k in range(5)] * 2
    params = groups[0].parameters(Path("/r"), threads=2)
    assert params["seeds"] == [0, 1] and "seed" not in params and params["threads"] == 2
    assert params["run_dir"] == str(config_dir(cells[0], Path("/r")))
    with pytest.raises(ValueError, match="seeds_per_process must be at least 1"):
        make_groups(cells, 0)


def test_the_device_is_checked_and_is_not_part_of_the_config_id(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in studies.STUDIES:  # every study accepts the setting
        assert {c.params["device"] for c in expand(name, "smoke", device="cpu")} == {"cpu"}
    with pytest.raises(ValueError, match=r"setting device='tpu' is not a device; expected 'cpu', 'cuda'"):
        expand("ipl-metaworld-scaling", "smoke", device="tpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for name in ("ipl-locomotion", "online", "online-feedback"):
        with pytest.raises(ValueError, match=r"setting device='cuda' but CUDA is not available"):
            expand(name, "smoke", device="cuda")
    assert expand("bradley-terry", "smoke", device="cuda")  # a numpy study accepts and ignores it
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    with pytest.raises(ValueError, match=r"setting device='cuda:2' but only 2 CUDA device"):
        expand("ipl-metaworld-budget", "smoke", device="cuda:2")
    for name in ("ipl-metaworld-budget", "online"):
        on_gpu = expand(name, "smoke", device="cuda:1")
        on_cpu = expand(name, "smoke")
        assert [c.config_id for c in on_gpu] == [c.config_id for c in on_cpu]  # resumable on either device


def test_bad_input_stops_the_runner_before_any_work(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    results = tmp_path / "results"
    (results / "bradley-terry").mkdir(parents=True)
    (results / "bradley-terry" / "keep.txt").write_text("untouched")
    before = sorted(results.rglob("*"))
    for argv in (["all", "--set", "device=tpu"], ["online", "--set", "device=cuda"],
                 ["bradley-terry", "--seeds-per-process", "0"], ["bradley-terry", "--set", "nope=1"]):
        with pytest.raises(SystemExit) as stop:
            main([*argv, "--results-dir", str(results)])
        assert stop.value.code == 2
    errors = capsys.readouterr().err
    assert "device='tpu' is not a device" in errors and "device='cuda' but CUDA is not available" in errors
    assert "--seeds-per-process must be at least 1" in errors and "no grid axis or setting 'nope'" in errors
    assert sorted(results.rglob("*")) == before
    assert (results / "bradley-terry" / "keep.txt").read_text() == "untouched"


THROUGHPUT = {"date": "2026-11-29", "command": "python benchmarks/throughput.py", "device": "cpu (2 cores)",
              "studies": {"ipl-metaworld-scaling": {"env_steps_per_s": 1000.0, "methods": {
                  "ipl": {"updates_per_s": 50.0},
                  "mr": {"updates_per_s": 100.0, "with_reward_model_per_s": 20.0}}}}}


def test_a_dry_run_estimates_from_measured_rates_by_hand(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cells = expand("ipl-metaworld-scaling", "smoke", method=("ipl", "mr"), seed=(0, 1, 2))
    table, line = plan(cells, tmp_path, seeds_per_process=2, jobs=2, throughput=THROUGHPUT)
    assert list(table.seeds) == [[0, 1], [2], [0, 1], [2]]
    # ipl: 40 steps / 50 per s + 3 evaluations (steps 0, 20, 40) x 1 episode x 50 steps / 1000 per s = 0.95 s
    # mr: all 40 steps train the reward model too (reward_steps 40): 40 / 20 + 0.15 = 2.15 s; per group
    # times its seeds
    assert list(table.estimate_s) == pytest.approx([2 * 0.95, 0.95, 2 * 2.15, 2.15])
    total_h = 3 * (0.95 + 2.15) / 3600
    assert f"estimated {total_h:.1f} CPU-hours" in line and "an estimate, not a measurement" in line
    assert "6 seeds in 4 groups of up to 2, 6 to run" in line
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    gpu = expand("ipl-metaworld-scaling", "smoke", device="cuda")
    table, line = plan(gpu, tmp_path, seeds_per_process=5, jobs=4, throughput=THROUGHPUT)
    assert line.endswith("wall time on cuda: not measured on a GPU yet") and table.estimate_s.isna().all()
    _, line = plan(expand("bradley-terry", "smoke"), tmp_path, 1, 1, throughput=THROUGHPUT)
    assert "no throughput measured for 6 groups" in line  # 3 sizes x 2 seeds


def test_the_dry_run_of_the_full_profile_lists_groups_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    main(["ipl-metaworld-scaling", "--profile", "full", "--dry-run", "--seeds-per-process", "5",
          "--results-dir", str(tmp_path), "--set", 'method=["ipl", "mr"]'])
    out = capsys.readouterr().out
    assert "200 seeds in 40 groups of up to 5, 200 to run" in out and "CPU-hours" in out
    main(["ipl-metaworld-scaling", "--profile", "full", "--dry-run", "--seeds-per-process", "5",
          "--results-dir", str(tmp_path)])
    out = capsys.readouterr().out  # IPL, MR, CPL and BC: every method has a measured rate
    assert "400 seeds in 80 groups of up to 5, 400 to run; estimated" in out and "CPU-hours" in out
    main(["online", "--profile", "full", "--dry-run", "--results-dir", str(tmp_path)])
    out = capsys.readouterr().out
    assert "540 seeds in 540 groups of up to 1, 540 to run; wall time: no throughput measured for 540" in out
    assert not list(tmp_path.iterdir())


def test_running_out_of_memory_names_the_setting(tiny_study: Path, tmp_path: Path) -> None:
    nb = nbformat.read(tiny_study / "tiny.ipynb", as_version=4)
    nb.cells.insert(1, nbformat.v4.new_code_cell(
        "import torch\nif len(seeds) > 1:\n    raise torch.cuda.OutOfMemoryError('CUDA out of memory')"))
    nbformat.write(nb, tiny_study / "tiny.ipynb")
    cells = expand("tiny", "smoke", width=(1,))
    with pytest.raises(RuntimeError, match=r"2 seeds in one process \(seeds_per_process\) do not fit"):
        run_grid(cells, tmp_path, experiments_dir=tiny_study, seeds_per_process=2)
    assert not list(tmp_path.rglob("config.json"))
    run_grid(cells, tmp_path, experiments_dir=tiny_study, seeds_per_process=1)
    assert len(list(tmp_path.rglob("config.json"))) == 2


def test_a_notebook_that_skips_a_seed_is_an_error(tiny_study: Path, tmp_path: Path) -> None:
    nb = nbformat.read(tiny_study / "tiny.ipynb", as_version=4)
    nb.cells[1].source = nb.cells[1].source.replace("for seed in seeds:", "for seed in seeds[:1]:")
    nbformat.write(nb, tiny_study / "tiny.ipynb")
    with pytest.raises(FileNotFoundError, match=r"wrote no .*seed=1/metrics\.parquet; expected one per seed"):
        run_grid(expand("tiny", "smoke", width=(1,)), tmp_path, experiments_dir=tiny_study,
                 seeds_per_process=2)
    assert not list(tmp_path.rglob("config.json"))


@pytest.mark.parametrize("study", sorted(studies.STUDIES))
def test_every_notebook_takes_seeds_run_dir_threads_and_device(study: str) -> None:
    """The runner's papermill parameters: a list `seeds` (never one `seed`), the configuration's `run_dir`,
    `threads` (no hard-coded thread count) and `device`, beside every grid axis and setting."""
    import ast

    from ipl_core.experiments.run import EXPERIMENTS_DIR

    notebook = nbformat.read(EXPERIMENTS_DIR / f"{study}.ipynb", as_version=4)
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert "parameters" in code[0].metadata.get("tags", [])
    tree = ast.parse(code[0].source)
    names = {t.id for node in tree.body if isinstance(node, ast.Assign) for t in node.targets}
    assert {"profile", "run_dir", "seeds", "threads", "device"} <= names and "seed" not in names
    for profile in ("smoke", "cpu", "full"):
        spec = studies.STUDIES[study]
        assert (set(spec.grid[profile]) - {"seed"}) | set(spec.settings[profile]) <= names
    import papermill  # papermill must read the parameters too (it warns and skips a line it cannot parse)

    inspected = papermill.inspect_notebook(str(EXPERIMENTS_DIR / f"{study}.ipynb"))
    assert {"profile", "run_dir", "seeds", "threads", "device"} <= set(inspected)
    body = "\n".join(c.source for c in code[1:])
    assert "torch.set_num_threads(threads)" in body and "set_num_threads(1)" not in body
    assert 'f"seed={seed}"' in body  # each seed's tables in run_dir/seed=<k>/


def test_cpu_and_full_refuse_a_dirty_tree_unless_allowed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    import ipl_core.experiments.run as runner

    monkeypatch.setattr(runner, "git_commit", lambda: "a" * 40 + "+dirty")
    ran: list[str] = []
    monkeypatch.setattr(runner, "run_grid", lambda cells, *args, **kwargs: ran.append(cells[0].study))
    monkeypatch.setattr(runner, "aggregate", lambda *args, **kwargs: tmp_path)
    with pytest.raises(SystemExit):
        runner.main(["bradley-terry", "--profile", "cpu", "--results-dir", str(tmp_path)])
    assert "uncommitted changes" in capsys.readouterr().err and ran == []
    cpu = ["bradley-terry", "--profile", "cpu", "--results-dir", str(tmp_path)]
    assert runner.main([*cpu, "--allow-dirty"]) == 0
    assert runner.main(["bradley-terry", "--profile", "smoke", "--results-dir", str(tmp_path)]) == 0
    assert ran == ["bradley-terry", "bradley-terry"]


def test_check_mode_exits_one_on_stale_tables(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import ipl_core.experiments.run as runner

    monkeypatch.setattr(runner, "check", lambda *args, **kwargs: ["run.json: seeds differ"])
    assert runner.main(["bradley-terry", "--profile", "cpu", "--check", "--results-dir", str(tmp_path)]) == 1
    monkeypatch.setattr(runner, "check", lambda *args, **kwargs: [])
    assert runner.main(["bradley-terry", "--profile", "cpu", "--check", "--results-dir", str(tmp_path)]) == 0


def test_profile_table_lists_what_a_profile_shrinks() -> None:
    """The appendix's table of profiles is read from the studies: against itself a profile changes
    nothing, and the cpu row of the scaling study names its steps beside the paper's."""
    from ipl_core.experiments.studies import STUDIES, profile_table

    same = profile_table("full", reference="full")
    assert [row["study"] for row in same] == list(STUDIES)
    assert all(row["changed settings (reference value)"] == "none" for row in same)
    assert all(" of " not in row["grid"] for row in same)
    cpu = {row["study"]: row for row in profile_table("cpu")}
    scaling = cpu["ipl-metaworld-scaling"]
    assert "steps 5,000 (200,000)" in scaling["changed settings (reference value)"]
    assert "task 2 of 5" in scaling["grid"] and scaling["cells"] == 80
    assert "total_steps 20,000 (1,000,000)" in cpu["online"]["changed settings (reference value)"]
    with pytest.raises(KeyError, match="unknown profile"):
        profile_table("huge")


def test_has_change_reads_the_history() -> None:
    """The commit that added ipl_core/seeding.py has it, its parent and the root commit do not; a commit the
    history does not hold, or an empty one, cannot be told."""
    import subprocess

    from ipl_core.io import REPO_ROOT, has_change

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True).stdout.strip()

    added = git("log", "--reverse", "--format=%H", "--diff-filter=A", "--", "ipl_core/seeding.py").split()
    if not added or not git("rev-parse", "--verify", "-q", f"{added[0]}^"):
        pytest.skip("the history does not reach back past the commit that added ipl_core/seeding.py")
    assert has_change(added[0], "ipl_core/seeding.py") is True
    assert has_change(git("rev-parse", "HEAD") + "+dirty", "ipl_core/seeding.py") is True
    assert has_change(git("rev-parse", f"{added[0]}^"), "ipl_core/seeding.py") is False
    assert has_change("f" * 40, "ipl_core/seeding.py") is None
    assert has_change("", "ipl_core/seeding.py") is None
    # a run whose cells ran at two commits has the change only if both have it
    assert has_change(f"{added[0]};{git('rev-parse', 'HEAD')}", "ipl_core/seeding.py") is True
    assert has_change(f"{git('rev-parse', f'{added[0]}^')};{added[0]}", "ipl_core/seeding.py") is False
    restart = 'optimizers["actor"].state.clear()'
    assert has_change(git("rev-parse", "HEAD"), "ipl_core/offline.py", restart) is True
    assert has_change(added[0], "ipl_core/offline.py", restart) is False
