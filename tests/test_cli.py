"""``ipl-train`` on small files written here: outputs, exact resumption, seeds, and clear errors."""

from __future__ import annotations

import dataclasses
import importlib.metadata
import pickle
import re
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import torch

from ipl_core.agents import known_methods
from ipl_core.cli import main, parse_overrides, parser
from ipl_core.config import PRESETS, OfflineConfig
from ipl_core.data import (
    OfflineDataset,
    load_d4rl_hdf5,
    load_pt_human_labels,
    qlearning_dataset,
    save_preferences,
    write_d4rl_hdf5,
)
from ipl_core.data.errors import DataFormatError
from ipl_core.data.robomimic import ROBOMIMIC_LOW_DIM_KEYS
from ipl_core.policy import load_policy

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--set", "hidden_dim=32", "--set", "pref_batch_size=4", "--set", "offline_batch_size=32",
        "--set", "subsample_length=8", "--set", "log_every=2", "--set", "eval_every=3",
        "--set", "checkpoint_every=4", "--no-progress"]


def write_files(folder: Path, episodes: int = 4, length: int = 40, obs_dim: int = 3,
                act_dim: int = 2, queries: int = 12, query_length: int = 10) -> tuple[Path, Path]:
    """A D4RL-layout file of time-limited episodes, and a PT label folder whose indices point into its
    qlearning view (which drops the last step of every episode)."""
    rng = np.random.default_rng(0)
    n = episodes * length
    obs = rng.normal(size=(n, obs_dim)).astype(np.float32)
    timeouts = np.zeros(n, dtype=bool)
    timeouts[length - 1::length] = True
    data = OfflineDataset(obs, rng.uniform(-1, 1, (n, act_dim)).astype(np.float32),
                          np.roll(obs, -1, axis=0), rng.normal(size=n).astype(np.float32),
                          np.zeros(n, dtype=bool), timeouts)
    path = write_d4rl_hdf5(folder / "toy-medium-v2.hdf5", data)
    kept = length - 1  # view rows per episode
    starts = rng.integers(0, kept - query_length + 1, size=(2, queries)) + kept * rng.integers(
        0, episodes, size=(2, queries))
    labels = folder / "human_label" / "toy-medium-v2"
    labels.mkdir(parents=True)
    for name, value in ((f"indices_num{queries}_q{query_length}", starts[0].tolist()),
                        (f"indices_2_num{queries}_q{query_length}", starts[1].tolist()),
                        ("label_human", rng.integers(-1, 2, size=queries).tolist())):
        (labels / name).write_bytes(pickle.dumps(value))
    return path, labels


@pytest.fixture()
def files(tmp_path: Path) -> tuple[Path, Path]:
    torch.set_num_threads(1)
    return write_files(tmp_path)


def run(data: Path, labels: Path, out: Path, *extra: str) -> int:
    return main(["--data", str(data), "--labels", str(labels), "--out", str(out), *TINY, *extra])


def test_writes_every_seed_and_a_policy_that_acts_as_the_trained_actor(files, tmp_path: Path, capsys) -> None:
    data, labels = files
    assert run(data, labels, tmp_path / "run", "--steps", "6", "--seeds", "0", "1", "--method", "mr",
               "--set", "reward_steps=3") == 0
    assert "seed 1: 6 steps" in capsys.readouterr().out
    for seed in (0, 1):
        folder = tmp_path / "run" / f"seed={seed}"
        assert {p.name for p in folder.iterdir()} >= {"config.json", "metrics.parquet", "checkpoint.pt",
                                                      "policy.pt"}
        metrics = pd.read_parquet(folder / "metrics.parquet")
        assert set(metrics.seed) == {seed} and metrics.step.max() == 6
        policy = load_policy(folder)
        assert policy.method == "mr" and (policy.obs_dim, policy.act_dim) == (3, 2)
        # the saved actor is the checkpoint's actor: same actions
        state = torch.load(folder / "checkpoint.pt", weights_only=True)["agent"]
        obs = np.random.default_rng(1).normal(size=(5, 3))
        first = state["actor.net.layers.0.weight"][0].double()  # (out, in), nn.Linear's layout
        hidden = torch.relu(torch.as_tensor(obs) @ first.T + state["actor.net.layers.0.bias"][0].double())
        for i in (1, 2):
            hidden = hidden @ state[f"actor.net.layers.{i}.weight"][0].double().T
            hidden = hidden + state[f"actor.net.layers.{i}.bias"][0].double()
            if i == 1:
                hidden = torch.relu(hidden)
        np.testing.assert_allclose(policy.act(obs), torch.tanh(hidden).numpy(), atol=1e-5)
    seeds = [pd.read_parquet(tmp_path / "run" / f"seed={s}" / "metrics.parquet").value.to_numpy()
             for s in (0, 1)]
    assert not np.allclose(seeds[0], seeds[1])


def test_running_again_with_more_steps_trains_on_as_an_uninterrupted_run(files, tmp_path: Path) -> None:
    data, labels = files
    assert run(data, labels, tmp_path / "straight", "--steps", "10") == 0
    assert run(data, labels, tmp_path / "resumed", "--steps", "5") == 0
    assert run(data, labels, tmp_path / "resumed", "--steps", "10") == 0
    straight = pd.read_parquet(tmp_path / "straight" / "seed=0" / "metrics.parquet")
    resumed = pd.read_parquet(tmp_path / "resumed" / "seed=0" / "metrics.parquet")
    # the first call ended at step 5 and logged and evaluated there; every other row is the same
    extra = resumed.step == 5
    assert extra.any() and not (straight.step == 5).any()
    pd.testing.assert_frame_equal(straight, resumed[~extra].reset_index(drop=True))
    weights = [torch.load(tmp_path / run / "seed=0" / "checkpoint.pt", weights_only=True)["agent"]
               for run in ("straight", "resumed")]
    for name, value in weights[0].items():
        torch.testing.assert_close(weights[1][name], value, rtol=0, atol=0, msg=name)
    obs = np.ones((2, 3))
    np.testing.assert_array_equal(load_policy(tmp_path / "straight" / "seed=0").act(obs),
                                  load_policy(tmp_path / "resumed" / "seed=0").act(obs))


def test_a_scripted_teacher_labels_the_d4rl_file(files, tmp_path: Path) -> None:
    data, _ = files
    argv = ["--data", str(data), "--teacher", "oracle", "--query-length", "10", "--num-queries", "30",
            "--out", str(tmp_path / "t"), "--steps", "3", *TINY]
    assert main(argv) == 0
    assert (tmp_path / "t" / "seed=0" / "policy.pt").is_file()


def test_robomimic_file_with_a_scripted_teacher(tmp_path: Path, capsys) -> None:
    rng = np.random.default_rng(2)
    path = tmp_path / "low_dim.hdf5"
    with h5py.File(path, "w") as handle:
        for demo in ("demo_0", "demo_1", "demo_2"):
            handle.create_dataset(f"data/{demo}/actions", data=rng.uniform(-1, 1, (30, 2)))
            handle.create_dataset(f"data/{demo}/rewards", data=rng.normal(size=30))
            handle.create_dataset(f"data/{demo}/dones", data=np.zeros(30))
            for key in ROBOMIMIC_LOW_DIM_KEYS:
                handle.create_dataset(f"data/{demo}/obs/{key}", data=rng.normal(size=(30, 1)))
    argv = ["--data", str(path), "--format", "robomimic", "--teacher", "noisy", "--query-length", "10",
            "--num-queries", "20", "--out", str(tmp_path / "r"), "--steps", "3", *TINY]
    assert main(argv) == 0
    assert "87 transitions and 20 preference pairs of 10 steps" in capsys.readouterr().err
    assert load_policy(tmp_path / "r" / "seed=0").obs_dim == len(ROBOMIMIC_LOW_DIM_KEYS)


def test_npz_preferences_of_another_dataset_are_refused(files, tmp_path: Path, capsys) -> None:
    data, labels = files
    other = write_files(tmp_path / "other", obs_dim=4)[0]
    view = qlearning_dataset(load_d4rl_hdf5(other)).dataset
    npz = save_preferences(tmp_path / "other.npz", load_pt_human_labels(labels, view))
    args = ["--data", str(data), "--preferences", str(npz), "--out", str(tmp_path / "x"), "--steps", "2"]
    assert main(args + TINY) == 2
    err = capsys.readouterr().err
    assert str(npz) in err and "obs_dim=4" in err and "obs_dim=3" in err and "labels of this dataset" in err
    own = load_pt_human_labels(labels, qlearning_dataset(load_d4rl_hdf5(data)).dataset)
    args[3], args[5] = str(save_preferences(tmp_path / "own.npz", own)), str(tmp_path / "y")
    assert main(args + TINY) == 0


def test_a_resume_on_other_data_is_refused(files, tmp_path: Path, capsys) -> None:
    data, labels = files
    assert run(data, labels, tmp_path / "r", "--steps", "2") == 0
    capsys.readouterr()
    other_data, other_labels = write_files(tmp_path / "other", episodes=5)
    assert run(other_data, other_labels, tmp_path / "r", "--steps", "4") == 2
    err = capsys.readouterr().err
    assert "data.json" in err and "other data" in err and "transitions" in err
    # the same arrays in a file elsewhere resume; the same shapes with other values do not
    moved = tmp_path / "moved"
    moved.mkdir()
    (moved / "data.hdf5").write_bytes(data.read_bytes())
    assert run(moved / "data.hdf5", labels, tmp_path / "r", "--steps", "4") == 0
    changed = load_d4rl_hdf5(data)
    changed.observations[0, 0] += 1.0
    write_d4rl_hdf5(moved / "changed.hdf5", changed)
    assert run(moved / "changed.hdf5", labels, tmp_path / "r", "--steps", "6") == 2
    assert "data_sha256" in capsys.readouterr().err


@pytest.mark.parametrize("case", ["labels-of-another-dataset", "query-length", "missing-file", "actions",
                                  "set-field", "set-value"])
def test_bad_input_fails_with_a_message_naming_the_file_and_the_mismatch(case, files, tmp_path: Path,
                                                                          capsys) -> None:
    data, labels = files
    args = ["--data", str(data), "--labels", str(labels), "--out", str(tmp_path / "x"), "--steps", "2"]
    if case == "labels-of-another-dataset":
        # the labels of a longer dataset (12 episodes) point past the end of this one
        _, long_labels = write_files(tmp_path / "long", episodes=12)
        (long_labels / "indices_num12_q10").write_bytes(pickle.dumps([400] * 12))
        args[3] = str(long_labels)
        expected = [str(long_labels / "indices_num12_q10"), "runs past the dataset"]
    elif case == "query-length":
        args += ["--query-length", "8"]
        expected = [str(labels / "indices_num12_q10"), "query length 10", "got 8"]
    elif case == "missing-file":
        args[1] = str(tmp_path / "nope.hdf5")
        expected = [str(tmp_path / "nope.hdf5"), "no such file"]
    elif case == "actions":
        view = load_d4rl_hdf5(data)
        big = OfflineDataset(view.observations, 2 * view.actions, view.next_observations, view.rewards,
                             view.terminals, view.timeouts)
        args[1] = str(write_d4rl_hdf5(tmp_path / "big.hdf5", big))
        expected = [str(tmp_path / "big.hdf5"), "expected them in [-1, 1]"]
    elif case == "set-field":
        args += ["--set", "lamda=1"]
        expected = ["lamda=1", "FIELD one of"]
    else:
        args += ["--set", "steps=many"]
        expected = ["steps expects a int", "'many'"]
    assert main(args + TINY) == 2
    err = capsys.readouterr().err
    assert err.startswith("ipl-train: error: ")
    for text in expected:
        assert text in err, (text, err)
    assert not (tmp_path / "x" / "seed=0" / "checkpoint.pt").exists()


def test_parse_overrides_types() -> None:
    assert parse_overrides(["lam=0.25", "balance_losses=true", "steps=7", "precision=bf16"]) == {
        "lam": 0.25, "balance_losses": True, "steps": 7, "precision": "bf16"}
    with pytest.raises(ValueError, match="balance_losses expects a bool"):
        parse_overrides(["balance_losses=maybe"])


def test_the_labels_index_the_qlearning_view(files) -> None:
    """The CLI trains on D4RL's qlearning view: the label indices of the folder fit it and not more."""
    data, _ = files
    assert len(qlearning_dataset(load_d4rl_hdf5(data)).dataset) == 4 * 39


def test_the_readme_section_uses_names_and_options_that_exist() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Use ipl_core on your own data", 1)[1].split("\n## ", 1)[0]
    python = section.split("```python\n", 1)[1].split("```", 1)[0]
    compile(python, "README.md", "exec")
    exec("\n".join(line for line in python.splitlines() if line.startswith("from ")), {})
    options = {option for action in parser()._actions for option in action.option_strings}
    used = set(re.findall(r"(--[a-z][a-z-]+)", section))
    assert len(used) >= 8 and used <= options, used - options


def test_module_entry_point_runs(files, tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "ipl_core.cli", "--help"], capture_output=True, text=True,
                            cwd=ROOT, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0 and "ipl-train" in result.stdout and "--labels" in result.stdout


def test_a_label_folder_without_a_query_length_in_its_names_asks_for_the_flag(files, tmp_path: Path,
                                                                             capsys) -> None:
    data, labels = files
    for path in labels.glob("indices*_q10"):  # the published D4RL folders: indices_num<N>, no _q<L>
        path.rename(path.with_name(path.name.removesuffix("_q10")))
    assert run(data, labels, tmp_path / "x", "--steps", "2") == 2
    err = capsys.readouterr().err
    assert str(labels / "indices_num12") in err and "pass --query-length (100 for D4RL)" in err, err
    view = qlearning_dataset(load_d4rl_hdf5(data)).dataset
    with pytest.raises(DataFormatError, match=r"pass query_length \(100 for D4RL\)"):  # the Python API's
        load_pt_human_labels(labels, view)
    assert run(data, labels, tmp_path / "x", "--steps", "2", "--query-length", "10") == 0


def test_version_and_the_package_entry_point(files, tmp_path: Path, capsys) -> None:
    version = importlib.metadata.version("ipl_core")
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out.strip() == f"ipl-train {version}"
    data, labels = files
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    shown = subprocess.run([sys.executable, "-m", "ipl_core", "--version"], capture_output=True, text=True,
                           cwd=ROOT, env=env)
    assert shown.returncode == 0 and shown.stdout.strip() == f"ipl-train {version}", shown.stderr
    command = [sys.executable, "-m", "ipl_core", "--data", str(data), "--labels", str(labels), "--out",
               str(tmp_path / "m"), "--steps", "2", *TINY]
    trained = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env)
    assert trained.returncode == 0 and "seed 0: 2 steps" in trained.stdout, trained.stderr


@pytest.mark.parametrize("setting", [["--seeds", "0", "0"], ["--set", "subsample_length=50"],
                                     ["--set", "lamda=1"], ["--method", "pt"]])
@pytest.mark.parametrize("out_exists", [False, True])
def test_a_run_refused_before_training_leaves_out_as_it_was(setting, out_exists, files, tmp_path: Path,
                                                            capsys) -> None:
    data, labels = files
    out = tmp_path / "run"
    if out_exists:
        out.mkdir()
        (out / "notes.txt").write_text("mine")
    assert run(data, labels, out, "--steps", "2", *setting) == 2
    assert capsys.readouterr().err.splitlines()[-1].startswith("ipl-train: error: ")
    if out_exists:
        assert [p.name for p in out.iterdir()] == ["notes.txt"]
    else:
        assert not out.exists()


def test_a_resume_says_so_and_fewer_steps_than_done_are_refused(files, tmp_path: Path, capsys) -> None:
    data, labels = files
    out = tmp_path / "run"
    assert run(data, labels, out, "--steps", "4") == 0
    assert "resum" not in capsys.readouterr().err
    assert run(data, labels, out, "--steps", "6") == 0
    captured = capsys.readouterr()
    assert f"resuming from step 4 (the checkpoints in {out}) to step 6" in captured.err
    assert "seed 0: 6 steps" in captured.out
    assert run(data, labels, out, "--steps", "3") == 2
    captured = capsys.readouterr()
    assert "--steps 3" in captured.err and "step 6 already" in captured.err and not captured.out
    assert pd.read_parquet(out / "seed=0" / "metrics.parquet").step.max() == 6
    assert (out / "data.json").is_file()


def test_minari_format_without_the_minari_package(monkeypatch, tmp_path: Path, capsys) -> None:
    monkeypatch.setitem(sys.modules, "minari", None)  # as if not installed: importing it fails
    argv = ["--data", str(tmp_path / "datasets" / "toy-v0"), "--format", "minari", "--teacher", "oracle",
            "--out", str(tmp_path / "run"), *TINY]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "--format minari" in err and "minari package" in err and "pip install minari" in err
    assert not (tmp_path / "run").exists()


def test_oracle_iql_notes_that_it_does_not_use_the_labels(files, tmp_path: Path, capsys) -> None:
    data, labels = files
    assert run(data, labels, tmp_path / "iql", "--steps", "2", "--method", "iql") == 0
    notes = [line for line in capsys.readouterr().err.splitlines() if "not used" in line]
    assert notes == ["ipl-train: note: --method iql trains on the rewards of --data; the labels of --labels "
                     "are not used"]
    assert run(data, labels, tmp_path / "ipl", "--steps", "2") == 0
    assert "not used" not in capsys.readouterr().err


def test_help_ends_with_methods_presets_fields_and_the_output_layout() -> None:
    text = parser().format_help()
    epilog = text.split("--no-progress", 2)[2]  # after the usage line and the options
    words = set(re.findall(r"[\w<>=/.-]+", epilog))
    assert set(known_methods()) <= words and set(PRESETS) <= words
    assert {f.name for f in dataclasses.fields(OfflineConfig)} <= words
    assert {"data.json", "seed=<k>/config.json", "seed=<k>/metrics.parquet", "seed=<k>/checkpoint.pt",
            "seed=<k>/policy.pt"} <= words
    assert "OfflineConfig field" in epilog and "--query-length 100" in epilog


def test_labels_whose_segments_cross_an_episode_end_are_refused_or_dropped(files, tmp_path: Path,
                                                                          capsys) -> None:
    data, labels = files
    starts = pickle.loads((labels / "indices_num12_q10").read_bytes())
    starts[0] = 39 - 5  # 34..43 runs from the first episode (39 view rows) into the second
    (labels / "indices_num12_q10").write_bytes(pickle.dumps(starts))
    assert run(data, labels, tmp_path / "refused", "--steps", "2") == 2
    assert "--drop-crossing" in capsys.readouterr().err
    assert run(data, labels, tmp_path / "dropped", "--steps", "2", "--drop-crossing") == 0
    assert "11 preference pairs" in capsys.readouterr().err
