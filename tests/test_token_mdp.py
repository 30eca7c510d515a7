"""DPO as inverse Q-learning on a deterministic token tree: exact identities and the implicit-reward trend."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ipl_core import token_mdp as M


@pytest.fixture(scope="module")
def problem():
    tree = M.TokenTree(3, 4)
    rng = np.random.default_rng(0)
    log_mu = np.log(rng.dirichlet(np.ones(3), size=tree.n_nodes))
    reward = rng.normal(size=3 ** 4)
    return tree, log_mu, reward, 0.5, rng


def test_tree_indexing_by_hand() -> None:
    tree = M.TokenTree(2, 2)
    assert tree.n_nodes == 3 and tree.offset(1) == 1
    np.testing.assert_array_equal(tree.responses(), [[0, 0], [0, 1], [1, 0], [1, 1]])
    np.testing.assert_array_equal(tree.nodes(tree.responses()), [[0, 1], [0, 1], [0, 2], [0, 2]])
    np.testing.assert_array_equal(tree.children(), [[1, 2], [-1, -1], [-1, -1]])
    with pytest.raises(ValueError, match="tokens outside"):
        tree.nodes(np.array([[0, 2]]))
    with pytest.raises(ValueError, match="vocab >= 2"):
        M.TokenTree(1, 3)


def test_soft_optimal_q_by_hand() -> None:
    # one token, two choices, uniform reference: Q* = r, pi* = softmax(r / alpha)
    tree, alpha = M.TokenTree(2, 1), 0.5
    r = np.array([1.0, 0.0])
    Q = M.soft_optimal_q(tree, tree.terminal_reward(r), np.log([[0.5, 0.5]]), alpha)
    np.testing.assert_allclose(Q, [[1.0, 0.0]])
    p = 1 / (1 + np.exp(-2.0))
    np.testing.assert_allclose(np.exp(M.policy_of(tree, Q, np.log([[0.5, 0.5]]), alpha)), [[p, 1 - p]])


def test_dpo_implicit_reward_telescopes_to_return_minus_v0(problem) -> None:
    """alpha sum_t log(pi* / mu) = r(y) - V*(s_0) for every response, and T* Q* = r (gamma = 1)."""
    tree, log_mu, reward, alpha, _ = problem
    r = tree.terminal_reward(reward)
    Q = M.soft_optimal_q(tree, r, log_mu, alpha)
    log_pi = M.policy_of(tree, Q, log_mu, alpha)
    Y = tree.responses()
    dpo = alpha * (M.response_log_prob(tree, log_pi, Y) - M.response_log_prob(tree, log_mu, Y)).numpy()
    v0 = M.soft_value(tree, Q, log_mu, alpha)[0]
    np.testing.assert_allclose(dpo, reward - v0, atol=1e-10)
    np.testing.assert_allclose(M.inverse_bellman(tree, Q, log_mu, alpha), r, atol=1e-10)
    np.testing.assert_allclose(np.exp(log_pi).sum(-1), 1.0, atol=1e-12)


def test_every_policy_is_soft_optimal_for_its_q_and_dpo_is_ipl_at_gamma_one(problem) -> None:
    tree, log_mu, _, alpha, rng = problem
    log_pi = np.log(rng.dirichlet(np.ones(3), size=tree.n_nodes))
    for potential in (None, rng.normal(size=tree.n_nodes)):
        Q = M.q_of_policy(tree, log_pi, log_mu, alpha, potential)
        np.testing.assert_allclose(M.policy_of(tree, Q, log_mu, alpha), log_pi, atol=1e-10)
        Y = tree.responses()
        dpo = alpha * (M.response_log_prob(tree, log_pi, Y) - M.response_log_prob(tree, log_mu, Y)).numpy()
        ipl = M.implicit_return(tree, M.inverse_bellman(tree, Q, log_mu, alpha), Y)
        np.testing.assert_allclose(dpo, ipl - M.soft_value(tree, Q, log_mu, alpha)[0], atol=1e-10)


def _pairs(tree, log_source, reward, rng, n):
    Y = tree.responses()
    p = np.exp(M.response_log_prob(tree, log_source, Y).numpy())
    a, b = rng.choice(len(Y), size=n, p=p / p.sum()), rng.choice(len(Y), size=n, p=p / p.sum())
    first = rng.random(n) < 1 / (1 + np.exp(-(reward[a] - reward[b])))
    return Y[np.where(first, a, b)], Y[np.where(first, b, a)]


def test_chosen_implicit_rewards_fall_on_reference_data_and_rise_on_optimal_data(problem) -> None:
    """At the optimum E_y[alpha log(pi*/mu)(y)] = E_y[r] - V*(s_0): negative for y ~ mu
    (-alpha KL(mu || pi*)), positive for y ~ pi* (alpha KL(pi* || mu))."""
    torch.set_num_threads(1)
    tree, log_mu, reward, alpha, _ = problem
    Q = M.soft_optimal_q(tree, tree.terminal_reward(reward), log_mu, alpha)
    log_star = M.policy_of(tree, Q, log_mu, alpha)
    rng = np.random.default_rng(1)
    on_ref = M.train_dpo(tree, *_pairs(tree, log_mu, reward, rng, 1000), log_mu, alpha, steps=100)
    on_star = M.train_dpo(tree, *_pairs(tree, log_star, reward, rng, 1000), log_mu, alpha, steps=100)
    assert abs(on_ref.chosen[0]) < 1e-12 and abs(on_star.chosen[0]) < 1e-12  # pi = mu at the start
    assert on_ref.loss[-1] < on_ref.loss[0] and on_star.loss[-1] < on_star.loss[0]
    assert on_ref.chosen[-1] < -0.1 and on_ref.rejected[-1] < on_ref.chosen[-1]
    assert on_star.chosen[-1] > 0.1
