"""CPL's side of the MetaWorld studies: dense comparisons, regret labels against exact regret on a tabular
case, and the grids (CPL and BC beside IPL and MR at every profile; the cpl-metaworld study)."""

from __future__ import annotations

import numpy as np
import pytest

from ipl_core import tabular as T
from ipl_core.data.datasets import OfflineDataset
from ipl_core.data.segments import dense_pairs, make_regret_preference_dataset
from ipl_core.experiments.run import load_throughput, plan
from ipl_core.experiments.studies import CPU_SEEDS, STUDIES, expand
from ipl_core.io import RESULTS_DIR


def test_dense_pairs_by_hand() -> None:
    first, second = dense_pairs(5, 3, np.random.default_rng(0))
    assert len(first) == len(second) == 15
    np.testing.assert_array_equal(first, np.repeat(np.arange(5), 3))  # segment i first in 3 pairs
    assert (first != second).all() and set(second) <= set(range(5))
    every = dense_pairs(2, 4, np.random.default_rng(1))  # two segments: the partner is always the other
    np.testing.assert_array_equal(every[1], 1 - every[0])
    with pytest.raises(ValueError, match="num_segments >= 2"):
        dense_pairs(1, 3, np.random.default_rng(0))


def _grid_episodes(grid: T.MDP, r: np.ndarray, episodes: int, length: int,
                   rng: np.random.Generator) -> OfflineDataset:
    """Random-action episodes of a deterministic gridworld, states one-hot, the last step a time-out."""
    n = grid.n_states
    states, actions, next_states = [], [], []
    for _ in range(episodes):
        s = int(rng.integers(n))
        for _ in range(length):
            a = int(rng.integers(grid.n_actions))
            s_next = int(grid.P[s, a].argmax())
            states.append(s), actions.append(a), next_states.append(s_next)
            s = s_next
    states, actions, next_states = map(np.asarray, (states, actions, next_states))
    eye = np.eye(n, dtype=np.float32)
    act = (np.eye(grid.n_actions, dtype=np.float32)[actions] * 2 - 1) * 0.5
    timeouts = np.zeros(len(states), np.float32)
    timeouts[length - 1::length] = 1.0
    return OfflineDataset(eye[states], act, eye[next_states], r[states, actions].astype(np.float32),
                          np.zeros(len(states), np.float32), timeouts, source="gridworld")


@pytest.mark.parametrize("seed", [0, 1])
def test_regret_labels_with_the_exact_value_are_the_exact_regret_labels(seed: int) -> None:
    """On a deterministic 3x3 grid with V = V*, the labels of make_regret_preference_dataset are those of the
    exact optimal advantages A* = Q* - V* summed over each segment (wherever the exact sums differ)."""
    grid = T.gridworld(3, 3, 0.9)
    rng = np.random.default_rng(seed)
    r = rng.normal(size=(9, 4))
    v_star = T.policy_evaluation(grid, r, T.optimal_policy(grid, r)).max(axis=1)
    a_star = T.optimal_advantage(grid, r)
    data = _grid_episodes(grid, r, episodes=6, length=20, rng=rng)
    prefs = make_regret_preference_dataset(data, 30, 4, 5, lambda obs: v_star[obs.argmax(1)], grid.gamma,
                                           np.random.default_rng(seed + 10))
    assert len(prefs) == 120 and prefs.segment_length == 5
    decode_a = lambda act: act.argmax(-1)  # noqa: E731  (the one-hot action, scaled to [-0.5, 0.5])
    exact = [a_star[obs.argmax(-1), decode_a(act)].sum(1)
             for obs, act in ((prefs.obs_1, prefs.action_1), (prefs.obs_2, prefs.action_2))]
    differ = np.abs(exact[0] - exact[1]) > 1e-6
    assert differ.mean() > 0.8
    np.testing.assert_array_equal(prefs.label[differ], (exact[0] > exact[1])[differ].astype(np.float32))
    # the return teacher disagrees with regret on some of these pairs: the labels are not returns
    by_return = prefs.reward_1.sum(1) > prefs.reward_2.sum(1)
    assert (by_return[differ] != (prefs.label[differ] > 0.5)).any()


def test_regret_labels_name_a_bad_value_function() -> None:
    grid = T.gridworld(2, 2, 0.9)
    data = _grid_episodes(grid, np.zeros((4, 4)), episodes=2, length=10, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="value must map observations"):
        make_regret_preference_dataset(data, 4, 2, 3, lambda obs: np.zeros((len(obs), 2)), 0.9,
                                       np.random.default_rng(0))


def test_cpl_and_bc_run_beside_ipl_and_mr_at_every_profile() -> None:
    scaling = STUDIES["ipl-metaworld-scaling"]
    for profile in ("smoke", "cpu", "full"):
        assert set(scaling.grid[profile]["method"]) == {"ipl", "mr", "cpl", "bc"}, profile
    assert len(expand("ipl-metaworld-scaling", "cpu")) == 16 * len(CPU_SEEDS)


def test_the_committed_cpu_cells_of_the_scaling_study_keep_their_config_ids() -> None:
    """Adding CPL and BC must not change the settings of the cpu profile: every committed IPL and MR cell
    is still a cell of the grid."""
    folder = RESULTS_DIR / "ipl-metaworld-scaling" / "cpu"
    committed = {p.name for p in folder.iterdir() if p.is_dir()} if folder.is_dir() else set()
    if not committed:
        pytest.skip("no committed cpu cells of ipl-metaworld-scaling")
    ids = {c.config_id for c in expand("ipl-metaworld-scaling", "cpu")}
    assert committed <= ids, sorted(committed - ids)


def test_the_cpl_metaworld_study_is_small_at_cpu_and_measured() -> None:
    study = STUDIES["cpl-metaworld"]
    cpu = study.grid["cpu"]
    assert set(cpu["method"]) == {"cpl", "ipl"} and len(cpu["task"]) == 1 and cpu["seed"] == CPU_SEEDS
    cells = expand("cpl-metaworld", "cpu")
    assert len(cells) == 10
    # the scaling study's data and schedule, only the labels differ
    scaling = expand("ipl-metaworld-scaling", "cpu", method=("ipl",), task=cpu["task"], num_queries=(500,))[0]
    same = {k: v for k, v in scaling.params.items() if k not in ("method", "num_queries", "seed")}
    assert {k: cells[0].params[k] for k in same} == same
    assert cells[0].params["num_segments"] == 2 * 500  # as many segments as 500 return-labelled pairs
    table, line = plan(cells, RESULTS_DIR / "__none__", seeds_per_process=1, jobs=2,
                       throughput=load_throughput())
    assert table.estimate_s.notna().all(), line
    assert table.estimate_s.sum() / 2 < 20 * 60, line  # about 15 minutes of wall time with --jobs 2
