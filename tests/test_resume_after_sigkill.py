"""Acceptance of the runner: a cell killed with SIGKILL mid-way and started again finishes with the same
metrics as an uninterrupted run (the notebook resumes from the trainer's checkpoint). About 30 s."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

SETTINGS = "steps=120, checkpoint_every=40, eval_every=40, log_every=20, reward_steps=120"
SCRIPT = f"""
import sys
from pathlib import Path
from ipl_core.experiments.run import run_grid
from ipl_core.experiments.studies import expand
cells = expand("ipl-metaworld-scaling", "smoke", method=("ipl",), {SETTINGS})
run_grid(cells, Path(sys.argv[1]))
"""


def run(results: Path) -> subprocess.Popen:
    env = {**os.environ, "MUJOCO_GL": "egl"}
    return subprocess.Popen(
        [sys.executable, "-c", SCRIPT, str(results)],
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def metrics_of(results: Path) -> pd.DataFrame:
    (path,) = results.glob("ipl-metaworld-scaling/smoke/*/seed=0/metrics.parquet")
    return pd.read_parquet(path)


def test_a_killed_cell_resumes_to_the_same_metrics(tmp_path: Path) -> None:
    assert run(tmp_path / "straight").wait(timeout=600) == 0
    killed = run(tmp_path / "killed")
    deadline = time.time() + 600
    checkpoints = tmp_path / "killed" / "ipl-metaworld-scaling" / "smoke"
    while not list(checkpoints.glob("*/seed=0/train/checkpoint.pt")):
        assert time.time() < deadline and killed.poll() is None, "no checkpoint appeared"
        time.sleep(0.2)
    os.killpg(killed.pid, signal.SIGKILL)  # the runner and its notebook kernel, mid-run
    killed.wait()
    assert not list(checkpoints.glob("*/seed=0/config.json")), "the cell finished before it was killed"
    assert run(tmp_path / "killed").wait(timeout=600) == 0
    pd.testing.assert_frame_equal(metrics_of(tmp_path / "straight"), metrics_of(tmp_path / "killed"))
