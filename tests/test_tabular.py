"""ipl_core.tabular: hand-computed values on tiny MDPs; Lemma 1 and Proposition 1 on random MDPs."""

import numpy as np
import pytest

from ipl_core.tabular import (
    MDP,
    Preferences,
    bellman_operator,
    fit_ipl,
    fit_ipl_policy,
    fit_reward,
    greedy_policy,
    gridworld,
    inverse_bellman,
    inverse_bellman_policy,
    ipl_objective,
    optimal_policy,
    policy_evaluation,
    policy_return,
    random_mdp,
    random_preferences,
    reward_objective,
    sample_segments,
    soft_bellman_operator,
    soft_optimal_policy,
    soft_value,
    soft_value_iteration,
    transition_matrix,
)

LOG2, LOG3 = np.log(2.0), np.log(3.0)


@pytest.fixture
def two_state() -> MDP:
    """Action a moves deterministically to state a; gamma = 1/2."""
    P = np.zeros((2, 2, 2))
    P[:, 0, 0] = 1.0
    P[:, 1, 1] = 1.0
    return MDP(P, 0.5)


R_HAND = np.array([[1.0, 0.0], [0.0, 2.0]])
PI_ALWAYS_1 = np.array([[0.0, 1.0], [0.0, 1.0]])
# Under "always action 1": V(1) = 2 + V(1)/2 = 4, V(0) = Q(0, 1) = 0 + 4/2 = 2,
# Q(0, 0) = 1 + 2/2, Q(1, 0) = 0 + 2/2.
Q_HAND = np.array([[2.0, 2.0], [1.0, 4.0]])


def one_state(gamma: float) -> MDP:
    return MDP(np.ones((1, 2, 1)), gamma)


# --- hand-computed values --------------------------------------------------------------------------


def test_policy_evaluation_by_hand(two_state: MDP) -> None:
    np.testing.assert_allclose(policy_evaluation(two_state, R_HAND, PI_ALWAYS_1), Q_HAND, atol=1e-12)


def test_inverse_bellman_policy_by_hand(two_state: MDP) -> None:
    np.testing.assert_allclose(inverse_bellman_policy(two_state, Q_HAND, PI_ALWAYS_1), R_HAND, atol=1e-12)


def test_bellman_operator_by_hand(two_state: MDP) -> None:
    np.testing.assert_allclose(bellman_operator(two_state, np.zeros((2, 2)), R_HAND, PI_ALWAYS_1), R_HAND)
    ones = np.ones((2, 2))
    np.testing.assert_allclose(bellman_operator(two_state, ones, R_HAND, PI_ALWAYS_1), R_HAND + 0.5)
    np.testing.assert_allclose(bellman_operator(two_state, Q_HAND, R_HAND, PI_ALWAYS_1), Q_HAND)


def test_transition_matrix_by_hand(two_state: MDP) -> None:
    # (s, a) -> (s' = a, a' = 1): rows of pairs (0,0), (1,0) go to (0,1) = index 1; the others to (1,1) = 3.
    expected = np.zeros((4, 4))
    expected[[0, 2], 1] = 1.0
    expected[[1, 3], 3] = 1.0
    np.testing.assert_array_equal(transition_matrix(two_state, PI_ALWAYS_1), expected)


def test_soft_value_by_hand(two_state: MDP) -> None:
    Q = np.array([[0.0, LOG3], [1.0, 1.0]])
    # alpha log (1/2)(e^0 + e^log3) = log 2;  alpha log (1/2)(e + e) = 1.
    np.testing.assert_allclose(soft_value(two_state, Q, 1.0), [LOG2, 1.0], atol=1e-12)
    # With alpha = 2 the second state is unchanged: 2 log (1/2)(2 e^(1/2)) = 1.
    assert soft_value(two_state, Q, 2.0)[1] == pytest.approx(1.0, abs=1e-12)
    mu = np.array([[0.25, 0.75], [0.5, 0.5]])
    # log (1/4 + 3/4 * 3) = log(5/2).
    assert soft_value(two_state, Q, 1.0, mu)[0] == pytest.approx(np.log(2.5), abs=1e-12)


def test_soft_optimal_policy_by_hand(two_state: MDP) -> None:
    Q = np.array([[0.0, LOG3], [1.0, 1.0]])
    np.testing.assert_allclose(soft_optimal_policy(two_state, Q, 1.0), [[0.25, 0.75], [0.5, 0.5]], atol=1e-12)


def test_soft_value_iteration_one_state_closed_form() -> None:
    # One state, r = (0, log 3), alpha = 1: V = gamma V + log 2, so V = log 2 / (1 - gamma), Q = r + gamma V.
    mdp = one_state(0.5)
    r = np.array([[0.0, LOG3]])
    Q = soft_value_iteration(mdp, r, 1.0)
    np.testing.assert_allclose(Q, r + 0.5 * LOG2 / 0.5, atol=1e-10)


def test_inverse_soft_bellman_one_state_by_hand() -> None:
    mdp = one_state(0.5)
    Q = np.array([[0.0, LOG3]])
    np.testing.assert_allclose(inverse_bellman(mdp, Q, 1.0), [[-0.5 * LOG2, LOG3 - 0.5 * LOG2]], atol=1e-12)


def test_soft_value_iteration_tends_to_hard_optimum(two_state: MDP) -> None:
    # The hard optimum of R_HAND is Q_HAND (in state 0 both actions give 2). The soft value lies in
    # [max - alpha log 2, max], so |Q_soft - Q_hard| <= alpha log 2 / (1 - gamma).
    alpha = 1e-3
    Q = soft_value_iteration(two_state, R_HAND, alpha)
    assert np.abs(Q - Q_HAND).max() <= alpha * LOG2 / 0.5 + 1e-9
    assert np.all(Q <= Q_HAND + 1e-9)


def test_objectives_by_hand(two_state: MDP) -> None:
    prefs = Preferences(np.array([[[0, 0], [1, 1]]]), np.array([[[0, 1], [1, 0]]]), np.array([1.0]))
    # Returns 3 and 0: BCE = -log sigmoid(3); mean r^2 = (1 + 0 + 0 + 4) / 4.
    expected = np.log1p(np.exp(-3.0)) + 0.1 * 1.25
    assert reward_objective(two_state, prefs, R_HAND, 0.1) == pytest.approx(expected, abs=1e-12)
    # IPL's objective is the reward objective of the implicit reward (Eq. 5-6).
    Q = policy_evaluation(two_state, R_HAND, PI_ALWAYS_1)
    r_implicit = inverse_bellman(two_state, Q, 0.7)
    assert ipl_objective(two_state, prefs, Q, 0.1, 0.7) == pytest.approx(
        reward_objective(two_state, prefs, r_implicit, 0.1), abs=1e-12
    )


def test_fit_reward_one_pair_optimality_condition() -> None:
    # Pair (0, 0) > (0, 1) on one state: by symmetry r = (x, -x) with lam x = sigmoid(-2x)
    # (gradient of log(1 + e^{-2x}) + lam x^2 set to zero).
    mdp = one_state(0.5)
    prefs = Preferences(np.array([[[0, 0]]]), np.array([[[0, 1]]]), np.array([1.0]))
    lam = 0.3
    r = fit_reward(mdp, prefs, lam)
    x = r[0, 0]
    assert r[0, 1] == pytest.approx(-x, abs=1e-10)
    assert lam * x == pytest.approx(1 / (1 + np.exp(2 * x)), abs=1e-10)
    assert x > 0


def test_fit_reward_ties_give_zero() -> None:
    mdp = one_state(0.5)
    prefs = Preferences(np.array([[[0, 0]]]), np.array([[[0, 1]]]), np.array([0.5]))
    np.testing.assert_allclose(fit_reward(mdp, prefs, 0.1), 0.0, atol=1e-10)


# --- random MDPs: Lemma 1, contraction, Proposition 1 ----------------------------------------------


@pytest.mark.parametrize("seed", range(3))
def test_lemma1_round_trip(seed: int) -> None:
    rng = np.random.default_rng(seed)
    mdp = random_mdp(6, 3, 0.9, rng)
    r = rng.normal(size=(6, 3))
    pi = rng.dirichlet(np.ones(3), size=6)
    Q = policy_evaluation(mdp, r, pi)
    np.testing.assert_allclose(inverse_bellman_policy(mdp, Q, pi), r, atol=1e-12)
    np.testing.assert_allclose(bellman_operator(mdp, Q, r, pi), Q, atol=1e-12)
    Q_any = rng.normal(size=(6, 3))
    r_any = inverse_bellman_policy(mdp, Q_any, pi)
    np.testing.assert_allclose(policy_evaluation(mdp, r_any, pi), Q_any, atol=1e-10)


@pytest.mark.parametrize("seed", range(3))
def test_soft_round_trip(seed: int) -> None:
    rng = np.random.default_rng(seed)
    mdp = random_mdp(6, 3, 0.9, rng)
    r = rng.normal(size=(6, 3))
    mu = rng.dirichlet(np.ones(3), size=6)
    Q = soft_value_iteration(mdp, r, 0.3, mu)
    np.testing.assert_allclose(inverse_bellman(mdp, Q, 0.3, mu), r, atol=1e-10)
    np.testing.assert_allclose(soft_bellman_operator(mdp, Q, r, 0.3, mu), Q, atol=1e-10)
    Q_any = rng.normal(size=(6, 3))
    r_any = inverse_bellman(mdp, Q_any, 0.3, mu)
    np.testing.assert_allclose(soft_value_iteration(mdp, r_any, 0.3, mu), Q_any, atol=1e-9)


@pytest.mark.parametrize("seed", range(3))
def test_bellman_operators_are_gamma_contractions(seed: int) -> None:
    rng = np.random.default_rng(seed)
    mdp = random_mdp(5, 3, 0.8, rng)
    r, pi = rng.normal(size=(5, 3)), rng.dirichlet(np.ones(3), size=5)
    for _ in range(5):
        Q1, Q2 = rng.normal(size=(5, 3)) * 10, rng.normal(size=(5, 3)) * 10
        gap = np.abs(Q1 - Q2).max()
        assert np.abs(bellman_operator(mdp, Q1, r, pi) - bellman_operator(mdp, Q2, r, pi)).max() <= 0.8 * gap
        soft_1, soft_2 = soft_bellman_operator(mdp, Q1, r, 0.5), soft_bellman_operator(mdp, Q2, r, 0.5)
        soft_gap = np.abs(soft_1 - soft_2).max()
        assert soft_gap <= 0.8 * gap + 1e-12


def test_fit_reward_solves_regularised_logistic_regression() -> None:
    # Proposition 1's view: logits x_i . r with x_i the difference of visit counts; the gradient
    # X^T (sigmoid(X r) - y) / N + 2 lam r / (S A) vanishes at r*.
    rng = np.random.default_rng(7)
    mdp = random_mdp(4, 2, 0.9, rng)
    prefs = random_preferences(mdp, rng.normal(size=(4, 2)), 30, 3, rng)
    lam = 0.05
    r = fit_reward(mdp, prefs, lam)
    X = np.zeros((30, 8))
    for i in range(30):
        np.add.at(X[i], prefs.seg1[i, :, 0] * 2 + prefs.seg1[i, :, 1], 1.0)
        np.add.at(X[i], prefs.seg2[i, :, 0] * 2 + prefs.seg2[i, :, 1], -1.0)
    logits = X @ r.reshape(-1)
    gradient = X.T @ (1 / (1 + np.exp(-logits)) - prefs.label) / 30 + 2 * lam * r.reshape(-1) / 8
    np.testing.assert_allclose(gradient, 0.0, atol=1e-9)


@pytest.mark.parametrize("seed", range(4))
def test_proposition1_fit_ipl_reaches_soft_optimal_q_of_r_star(seed: int) -> None:
    rng = np.random.default_rng(seed)
    gamma, alpha, lam = (0.9, 0.5, 0.1) if seed % 2 == 0 else (0.7, 1.0, 0.01)
    mdp = random_mdp(5, 3, gamma, rng)
    prefs = random_preferences(mdp, rng.normal(size=(5, 3)), 40, 4, rng)
    r_star = fit_reward(mdp, prefs, lam)
    Q_two_step = soft_value_iteration(mdp, r_star, alpha)
    Q_ipl = fit_ipl(mdp, prefs, lam, alpha)
    assert np.abs(Q_ipl - Q_two_step).max() < 1e-6  # the issue asks for 1e-3
    np.testing.assert_allclose(inverse_bellman(mdp, Q_ipl, alpha), r_star, atol=1e-7)


def test_fit_ipl_policy_is_policy_evaluation_of_r_star() -> None:
    rng = np.random.default_rng(11)
    mdp = random_mdp(5, 3, 0.9, rng)
    prefs = random_preferences(mdp, rng.normal(size=(5, 3)), 40, 4, rng)
    pi = rng.dirichlet(np.ones(3), size=5)
    r_star = fit_reward(mdp, prefs, 0.1)
    Q_pi = policy_evaluation(mdp, r_star, pi)
    np.testing.assert_allclose(fit_ipl_policy(mdp, prefs, 0.1, pi), Q_pi, atol=1e-7)


def test_shift_invariance_without_regularisation() -> None:
    # Equal-length segments: adding c to every reward, or c to every Q (T*(Q + c) = T* Q + (1 - gamma) c),
    # leaves the Bradley-Terry loss unchanged; the regulariser is what breaks the tie.
    rng = np.random.default_rng(3)
    mdp = random_mdp(4, 2, 0.9, rng)
    prefs = random_preferences(mdp, rng.normal(size=(4, 2)), 20, 3, rng)
    Q = rng.normal(size=(4, 2))
    base = ipl_objective(mdp, prefs, Q, 0.0, 0.5)
    assert ipl_objective(mdp, prefs, Q + 100.0, 0.0, 0.5) == pytest.approx(base, abs=1e-10)
    assert ipl_objective(mdp, prefs, Q + 100.0, 0.1, 0.5) > ipl_objective(mdp, prefs, Q, 0.1, 0.5) + 1.0


# --- samplers and constructors ---------------------------------------------------------------------


def test_sampled_segments_follow_the_dynamics() -> None:
    rng = np.random.default_rng(0)
    P = np.zeros((4, 2, 4))
    for s in range(4):
        P[s, 0, (s + 1) % 4] = 1.0
        P[s, 1, (s + 3) % 4] = 0.5
        P[s, 1, s] = 0.5
    mdp = MDP(P, 0.9)
    segments = sample_segments(mdp, 200, 6, rng)
    assert segments.shape == (200, 6, 2)
    s, a, s_next = segments[:, :-1, 0], segments[:, :-1, 1], segments[:, 1:, 0]
    assert np.all(mdp.P[s, a, s_next] > 0)
    assert set(np.unique(segments[..., 1])) == {0, 1}


def test_random_preferences_soft_labels_are_bradley_terry() -> None:
    rng = np.random.default_rng(1)
    mdp = random_mdp(3, 2, 0.9, rng)
    r = rng.normal(size=(3, 2))
    prefs = random_preferences(mdp, r, 10, 2, rng, soft_labels=True)
    diff = r[prefs.seg1[..., 0], prefs.seg1[..., 1]].sum(1) - r[prefs.seg2[..., 0], prefs.seg2[..., 1]].sum(1)
    np.testing.assert_allclose(prefs.label, 1 / (1 + np.exp(-diff)), atol=1e-12)
    hard = random_preferences(mdp, r, 10, 2, rng)
    assert set(np.unique(hard.label)) <= {0.0, 1.0}


def test_gridworld_moves() -> None:
    mdp = gridworld(2, 3, 0.9)
    assert (mdp.n_states, mdp.n_actions) == (6, 4)
    assert mdp.P[0, 3, 1] == 1.0  # right from (0, 0)
    assert mdp.P[0, 1, 3] == 1.0  # down from (0, 0)
    assert mdp.P[0, 0, 0] == 1.0  # up from the top row: stay
    assert mdp.P[5, 3, 5] == 1.0  # right from the last column: stay
    slippery = gridworld(2, 3, 0.9, slip=0.4)
    # right from (0, 0): 0.6 + 0.1 to (0, 1); up and left stay (0.1 each); down 0.1.
    np.testing.assert_allclose(slippery.P[0, 3], [0.2, 0.7, 0, 0.1, 0, 0], atol=1e-12)


# --- bad input -------------------------------------------------------------------------------------


def test_bad_mdp_raises() -> None:
    with pytest.raises(ValueError, match=r"MDP.P\[s, a\] must sum to 1.*P\[1, 0\]"):
        MDP(np.array([[[1.0, 0.0]], [[0.5, 0.4]]]), 0.9)
    with pytest.raises(ValueError, match="shape"):
        MDP(np.ones((2, 2)), 0.9)
    with pytest.raises(ValueError, match="non-negative"):
        MDP(np.array([[[1.5, -0.5]], [[0.5, 0.5]]]), 0.9)
    with pytest.raises(ValueError, match="gamma"):
        MDP(np.ones((1, 1, 1)), 1.0)
    with pytest.raises(ValueError, match="gamma"):
        MDP(np.ones((1, 1, 1)), -0.1)


def test_bad_arrays_raise(two_state: MDP) -> None:
    with pytest.raises(ValueError, match=r"r must have shape \(S, A\) = \(2, 2\)"):
        policy_evaluation(two_state, np.zeros(4), PI_ALWAYS_1)
    with pytest.raises(ValueError, match="pi must hold a probability distribution"):
        policy_evaluation(two_state, R_HAND, np.ones((2, 2)))
    with pytest.raises(ValueError, match="alpha"):
        inverse_bellman(two_state, Q_HAND, 0.0)


def test_bad_preferences_raise(two_state: MDP) -> None:
    good = np.array([[[0, 0], [1, 1]]])
    with pytest.raises(ValueError, match=r"seg1 holds state index 7, outside \[0, 2\)"):
        fit_reward(two_state, Preferences(np.array([[[7, 0], [1, 1]]]), good, np.array([1.0])), 0.1)
    with pytest.raises(ValueError, match=r"seg2 holds action index -1"):
        fit_ipl(two_state, Preferences(good, np.array([[[0, -1], [1, 1]]]), np.array([1.0])), 0.1, 1.0)
    with pytest.raises(ValueError, match="label must hold probabilities"):
        Preferences(good, good, np.array([2.0]))
    with pytest.raises(ValueError, match=r"seg1 must have shape \(N, k, 2\)"):
        Preferences(good[0], good[0], np.array([1.0]))
    with pytest.raises(ValueError, match="integer"):
        Preferences(good.astype(float), good, np.array([1.0]))
    with pytest.raises(ValueError, match="lam"):
        fit_reward(two_state, Preferences(good, good, np.array([1.0])), -1.0)


def test_objective_has_torch_gradient_through_inverse_bellman() -> None:
    # fit_ipl differentiates through T* with torch; central differences of the numpy-facing ipl_objective
    # must vanish at its result, which fails if the two disagree.
    rng = np.random.default_rng(5)
    mdp = random_mdp(3, 2, 0.8, rng)
    prefs = random_preferences(mdp, rng.normal(size=(3, 2)), 15, 2, rng)
    Q = fit_ipl(mdp, prefs, 0.2, 0.5)
    eps, grads = 1e-6, np.zeros((3, 2))
    for index in np.ndindex(3, 2):
        step = np.zeros((3, 2))
        step[index] = eps
        grads[index] = (ipl_objective(mdp, prefs, Q + step, 0.2, 0.5)
                        - ipl_objective(mdp, prefs, Q - step, 0.2, 0.5)) / (2 * eps)
    np.testing.assert_allclose(grads, 0.0, atol=1e-8)


# --- true returns and optimal policies: closing the loop in book/ipl/theory.ipynb ------------------


def test_policy_return_by_hand(two_state: MDP) -> None:
    # Q_HAND under "always action 1": V = (2, 4)
    assert policy_return(two_state, R_HAND, PI_ALWAYS_1) == pytest.approx(3.0, abs=1e-12)
    assert policy_return(two_state, R_HAND, PI_ALWAYS_1, start=np.array([1.0, 0.0])) == pytest.approx(2.0)
    with pytest.raises(ValueError, match="start must be a distribution"):
        policy_return(two_state, R_HAND, PI_ALWAYS_1, start=np.array([0.5, 0.6]))


def test_greedy_policy_by_hand() -> None:
    np.testing.assert_array_equal(greedy_policy(np.array([[0.0, 1.0], [3.0, 3.0]])), [[0, 1], [1, 0]])
    with pytest.raises(ValueError, match="finite"):
        greedy_policy(np.array([[np.nan, 1.0]]))


def test_optimal_policy_by_hand(two_state: MDP) -> None:
    # r(1, 1) = 3: staying in state 1 is worth 6, so state 0 moves there (0 + 6/2 = 3 > 1 + 3/2)
    r = np.array([[1.0, 0.0], [0.0, 3.0]])
    np.testing.assert_array_equal(optimal_policy(two_state, r), PI_ALWAYS_1)


@pytest.mark.parametrize("seed", range(4))
def test_optimal_policy_beats_every_deterministic_policy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    mdp, r = random_mdp(3, 2, gamma=0.9, rng=rng), rng.normal(size=(3, 2))
    V_star = (optimal_policy(mdp, r) * policy_evaluation(mdp, r, optimal_policy(mdp, r))).sum(axis=1)
    for choice in np.ndindex(2, 2, 2):
        pi = np.eye(2)[list(choice)]
        V = (pi * policy_evaluation(mdp, r, pi)).sum(axis=1)
        assert np.all(V_star >= V - 1e-10)
