"""The regret preference model: exact optimal advantages, the regret teacher, and what a partial-return fit
learns from regret labels (Knox et al.; CPL Sec. 2-3)."""

import numpy as np
import pytest

from ipl_core import tabular as T
from ipl_core.teachers import RegretTeacher, ScriptedTeacher, estimated_advantage


@pytest.fixture
def two_state() -> T.MDP:
    """Action a moves deterministically to state a; gamma = 1/2."""
    P = np.zeros((2, 2, 2))
    P[:, 0, 0] = 1.0
    P[:, 1, 1] = 1.0
    return T.MDP(P, gamma=0.5)


def test_optimal_advantage_by_hand(two_state: T.MDP) -> None:
    # r = 1 for action 1: Q*(s, 1) = 1 / (1 - 1/2) = 2, Q*(s, 0) = 0 + 1/2 * 2 = 1, so A* = (-1, 0).
    r = np.array([[0.0, 1.0], [0.0, 1.0]])
    np.testing.assert_allclose(T.optimal_advantage(two_state, r), [[-1.0, 0.0], [-1.0, 0.0]], atol=1e-12)


def test_soft_optimal_advantage_by_hand(two_state: T.MDP) -> None:
    # Both states have the same soft value V (same rewards, same moves), so A*(s, a) = r(s, a) + g V - V and
    # pi* = logistic(+-1 / alpha); A* = alpha log(pi* / mu) with mu uniform.
    r, alpha = np.array([[0.0, 1.0], [0.0, 1.0]]), 0.5
    p1 = 1 / (1 + np.exp(-1 / alpha))
    expected = alpha * np.log(np.array([[1 - p1, p1], [1 - p1, p1]]) * 2)  # log(pi / mu), mu = 1/2
    np.testing.assert_allclose(T.optimal_advantage(two_state, r, alpha), expected, atol=1e-10)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_optimal_advantage_is_potential_shaping_and_greedy_is_optimal(seed: int) -> None:
    rng = np.random.default_rng(seed)
    mdp = T.random_mdp(6, 3, 0.9, rng)
    r = rng.normal(size=(6, 3))
    A = T.optimal_advantage(mdp, r)
    pi_star = T.optimal_policy(mdp, r)
    V = T.policy_evaluation(mdp, r, pi_star).max(axis=1)
    np.testing.assert_allclose(A, r + mdp.gamma * mdp.P @ V - V[:, None], atol=1e-10)  # Ng et al. shaping
    assert A.max() <= 1e-12 and np.allclose(A.max(axis=1), 0.0, atol=1e-12)
    best = T.policy_return(mdp, r, pi_star)
    assert T.policy_return(mdp, r, T.greedy_policy(A)) == pytest.approx(best, abs=1e-10)
    # A* used as a reward is a shaped reward: its optimal policy is optimal for r (continuing task)
    assert T.policy_return(mdp, r, T.optimal_policy(mdp, A)) == pytest.approx(best, abs=1e-10)


@pytest.mark.parametrize("seed", [0, 1])
def test_soft_advantage_is_alpha_log_pi(seed: int) -> None:
    """CPL's bijection A*(s, a) = alpha log pi*(a|s) (with the reference mu: alpha log(pi* / mu))."""
    rng = np.random.default_rng(seed)
    mdp, r, alpha = T.random_mdp(5, 4, 0.8, rng), rng.normal(size=(5, 4)), 0.3
    mu = rng.dirichlet(np.ones(4), size=5)
    A = T.optimal_advantage(mdp, r, alpha, mu)
    pi = T.soft_optimal_policy(mdp, T.soft_value_iteration(mdp, r, alpha, mu), alpha, mu)
    np.testing.assert_allclose(A, alpha * np.log(pi / mu), atol=1e-10)
    np.testing.assert_allclose((mu * np.exp(A / alpha)).sum(axis=1), 1.0, atol=1e-12)


def test_regret_labels_are_bradley_terry_on_summed_advantages() -> None:
    rng = np.random.default_rng(0)
    mdp, r = T.random_mdp(4, 2, 0.9, rng), rng.normal(size=(4, 2))
    prefs = T.regret_preferences(mdp, r, 50, 3, np.random.default_rng(1), soft_labels=True)
    A = T.optimal_advantage(mdp, r)
    d = A[prefs.seg1[..., 0], prefs.seg1[..., 1]].sum(1) - A[prefs.seg2[..., 0], prefs.seg2[..., 1]].sum(1)
    np.testing.assert_allclose(prefs.label, 1 / (1 + np.exp(-d)), atol=1e-12)
    reward_labels = T.random_preferences(mdp, r, 50, 3, np.random.default_rng(1), soft_labels=True)
    np.testing.assert_array_equal(reward_labels.seg1, prefs.seg1)  # same segments, other teacher
    assert not np.allclose(reward_labels.label, prefs.label)


def test_a_partial_return_fit_of_regret_labels_learns_the_optimal_advantage() -> None:
    """Knox et al.: the 'reward' fitted under the partial-return model to regret labels is A*, up to the
    constant that equal-length segments cannot see (here the regulariser's choice, minus the mean of A*)."""
    rng = np.random.default_rng(0)
    mdp, r = T.random_mdp(5, 3, 0.9, rng), rng.normal(size=(5, 3))
    A = T.optimal_advantage(mdp, r)
    prefs = T.regret_preferences(mdp, r, 400, 4, np.random.default_rng(1), soft_labels=True)
    r_hat = T.fit_reward(mdp, prefs, lam=1e-4)
    np.testing.assert_allclose(r_hat, A - A.mean(), atol=5e-3)  # O(lam): measured 1.8e-3
    assert not np.allclose(r_hat, r, atol=0.1)  # it is not the reward


def test_fixed_entries_stay_zero_and_absorbing_segments_pin_the_constant() -> None:
    n = 3
    grid = T.with_absorbing_state(T.gridworld(n, n, 0.9), [n * n - 1])
    S = grid.n_states
    r = -np.ones((S, 4))
    r[[n * n - 1, S - 1]] = 0.0
    zero = np.zeros((S, 4), dtype=bool)
    zero[S - 1] = True
    A = T.optimal_advantage(grid, r)
    prefs = T.regret_preferences(grid, r, 300, 3, np.random.default_rng(0), soft_labels=True)
    assert (prefs.seg1[..., 0] == S - 1).any()
    r_hat = T.fit_reward(grid, prefs, 1e-4, zero=zero)
    assert np.all(r_hat[S - 1] == 0.0)
    np.testing.assert_allclose(r_hat, A, atol=1e-2)  # no free constant left


def test_with_absorbing_state_checks_its_terminals() -> None:
    with pytest.raises(ValueError, match="terminals"):
        T.with_absorbing_state(T.gridworld(2, 2, 0.9), [4])


def test_estimated_advantage_with_the_exact_value_is_exact_on_deterministic_moves() -> None:
    grid = T.gridworld(3, 3, 0.9)
    r = np.zeros((9, 4))
    r[8] = 1.0
    A = T.optimal_advantage(grid, r)
    V = T.policy_evaluation(grid, r, T.optimal_policy(grid, r)).max(axis=1)
    seg = T.sample_segments(grid, 20, 5, np.random.default_rng(0))
    next_state = grid.P[seg[..., 0], seg[..., 1]].argmax(-1)
    values = np.concatenate([V[seg[..., 0]], V[next_state[:, -1:]]], axis=1)
    estimate = estimated_advantage(r[seg[..., 0], seg[..., 1]], values, grid.gamma)
    np.testing.assert_allclose(estimate, A[seg[..., 0], seg[..., 1]], atol=1e-12)


def test_estimated_advantage_by_hand_and_bad_shapes() -> None:
    # r = (1, 2), V = (3, 4, 5), gamma = 1/2: (1 + 2 - 3, 2 + 2.5 - 4) = (0, 0.5);
    # a terminal drops the bootstrap
    got = estimated_advantage(np.array([[1.0, 2.0]]), np.array([[3.0, 4.0, 5.0]]), 0.5)
    np.testing.assert_allclose(got, [[0.0, 0.5]])
    got = estimated_advantage(np.array([[1.0, 2.0]]), np.array([[3.0, 4.0, 5.0]]), 0.5, np.array([[0, 1]]))
    np.testing.assert_allclose(got, [[0.0, -2.0]])
    with pytest.raises(ValueError, match="value \\(N, T \\+ 1\\)"):
        estimated_advantage(np.ones((2, 3)), np.ones((2, 3)), 0.9)


def test_regret_teacher_prefers_the_smaller_regret() -> None:
    adv_1 = np.array([[0.0, -1.0], [-3.0, 0.0]])
    adv_2 = np.array([[-0.5, -0.2], [0.0, -1.0]])
    labels = RegretTeacher().label(adv_1, adv_2, np.random.default_rng(0))
    np.testing.assert_array_equal(labels.label, [0.0, 0.0])
    labels = RegretTeacher().label(adv_2, adv_1, np.random.default_rng(0))
    np.testing.assert_array_equal(labels.label, [1.0, 1.0])
    noisy = RegretTeacher(beta=1.0).label(adv_1, adv_2, np.random.default_rng(3))
    same = ScriptedTeacher(beta=1.0).label(adv_1, adv_2, np.random.default_rng(3))
    np.testing.assert_array_equal(noisy.label, same.label)
