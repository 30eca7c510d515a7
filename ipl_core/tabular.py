"""Exact tools for small tabular MDPs: Bellman operators, their inverses and IPL's tabular theory.

Arrays are numpy in and out: a reward or Q-function is an (S, A) array, a policy an (S, A) array of
probabilities. Taught in "Markov decision processes and Bellman operators" (book/foundations/mdp.ipynb),
"The inverse Bellman operator" (book/foundations/inverse_bellman.ipynb) and "IPL: theory"
(book/ipl/theory.ipynb); each section below names its chapter. Fits run in float64 (L-BFGS, then Newton
steps) to a gradient of 1e-10; the reward objective is strictly convex for lam > 0 (IPL Proposition 1).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from ipl_core.losses import cpl_loss
from ipl_core.preferences import preference_loss, preference_probability

_STOCHASTIC_ATOL = 1e-8


def _tensor(x: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(np.asarray(x, dtype=np.float64))


@dataclass(frozen=True)
class MDP:
    """A finite MDP without reward: transition probabilities P[s, a, s'] and a discount factor."""

    P: np.ndarray
    """Transition probabilities, shape (S, A, S); every P[s, a] sums to one."""
    gamma: float
    """Discount factor, 0 <= gamma < 1 (gamma = 0 is a contextual bandit)."""

    def __post_init__(self) -> None:
        P = np.asarray(self.P, dtype=np.float64)
        if P.ndim != 3 or P.shape[0] != P.shape[2] or P.shape[0] == 0 or P.shape[1] == 0:
            raise ValueError(f"MDP.P must have shape (S, A, S) with S, A >= 1, got {P.shape}")
        if not np.all(np.isfinite(P)) or P.min() < 0:
            raise ValueError("MDP.P must hold finite, non-negative probabilities")
        sums = P.sum(axis=2)
        if not np.allclose(sums, 1.0, atol=_STOCHASTIC_ATOL):
            s, a = np.unravel_index(np.abs(sums - 1).argmax(), sums.shape)
            raise ValueError(f"MDP.P[s, a] must sum to 1 over s'; P[{s}, {a}] sums to {sums[s, a]:.6g}")
        if not 0 <= self.gamma < 1:
            raise ValueError(f"MDP.gamma must satisfy 0 <= gamma < 1, got {self.gamma}")
        object.__setattr__(self, "P", P)

    @property
    def n_states(self) -> int:
        return self.P.shape[0]

    @property
    def n_actions(self) -> int:
        return self.P.shape[1]

    def check(self, name: str, x: np.ndarray) -> np.ndarray:
        """Return `x` as float64 after checking it is an (S, A) array; `name` is used in the error."""
        x = np.asarray(x, dtype=np.float64)
        if x.shape != (self.n_states, self.n_actions):
            expected = (self.n_states, self.n_actions)
            raise ValueError(f"{name} must have shape (S, A) = {expected}, got {x.shape}")
        return x

    def check_policy(self, name: str, pi: np.ndarray) -> np.ndarray:
        """Return `pi` after checking it is an (S, A) array of action distributions."""
        pi = self.check(name, pi)
        if pi.min() < 0 or not np.allclose(pi.sum(axis=1), 1.0, atol=_STOCHASTIC_ATOL):
            raise ValueError(f"{name} must hold a probability distribution over actions in every row")
        return pi


@dataclass(frozen=True)
class Preferences:
    """Pairs of segments and the probability that the first is preferred (the data of IPL Eq. 2)."""

    seg1: np.ndarray
    """First segments: integers of shape (N, k, 2), each step a (state, action) pair."""
    seg2: np.ndarray
    """Second segments, same shape as seg1."""
    label: np.ndarray
    """Shape (N,): probability that seg1 is preferred (1, 0, 0.5 or any soft label in [0, 1])."""

    def __post_init__(self) -> None:
        for name in ("seg1", "seg2"):
            seg = np.asarray(getattr(self, name))
            if seg.ndim != 3 or seg.shape[2] != 2 or 0 in seg.shape:
                raise ValueError(f"Preferences.{name} must have shape (N, k, 2), N, k >= 1, got {seg.shape}")
            if not np.issubdtype(seg.dtype, np.integer):
                raise ValueError(f"Preferences.{name} must hold integer indices, not {seg.dtype}")
            object.__setattr__(self, name, seg.astype(np.int64))
        if self.seg1.shape != self.seg2.shape:
            raise ValueError(f"Preferences.seg1 {self.seg1.shape} and seg2 {self.seg2.shape} must match")
        label = np.asarray(self.label, dtype=np.float64)
        if label.shape != (self.seg1.shape[0],):
            n = self.seg1.shape[0]
            raise ValueError(f"Preferences.label must have shape (N,) = ({n},), got {label.shape}")
        if not np.all((label >= 0) & (label <= 1)):
            raise ValueError("Preferences.label must hold probabilities in [0, 1]")
        object.__setattr__(self, "label", label)

    def check(self, mdp: MDP) -> None:
        """Raise if a state or action index lies outside the MDP."""
        for name in ("seg1", "seg2"):
            seg = getattr(self, name)
            for column, kind, size in ((0, "state", mdp.n_states), (1, "action", mdp.n_actions)):
                index = seg[..., column]
                bad = index[(index < 0) | (index >= size)]
                if bad.size:
                    raise ValueError(
                        f"Preferences.{name} holds {kind} index {bad[0]}, outside [0, {size}) for this MDP"
                    )


# ----------------------------------------------------------------------------------------------------------
# Fixed-policy operators (IPL Eq. 3-4, Lemma 1): chapters foundations/mdp and foundations/inverse_bellman


def transition_matrix(mdp: MDP, pi: np.ndarray) -> np.ndarray:
    """P^pi[(s, a), (s', a')] = P(s' | s, a) pi(a' | s'), shape (SA, SA): the matrix of IPL Lemma 1."""
    pi = mdp.check_policy("pi", pi)
    S, A = mdp.n_states, mdp.n_actions
    return (mdp.P[:, :, :, None] * pi[None, None, :, :]).reshape(S * A, S * A)


def bellman_operator(mdp: MDP, Q: np.ndarray, r: np.ndarray, pi: np.ndarray) -> np.ndarray:
    """(B^pi_r Q)(s, a) = r(s, a) + gamma E_s' [V^pi(s')] with V^pi(s) = E_{a ~ pi}[Q(s, a)], IPL Eq. 3."""
    Q, r, pi = mdp.check("Q", Q), mdp.check("r", r), mdp.check_policy("pi", pi)
    return r + mdp.gamma * mdp.P @ (pi * Q).sum(axis=1)


def policy_evaluation(mdp: MDP, r: np.ndarray, pi: np.ndarray) -> np.ndarray:
    """Q^pi = (I - gamma P^pi)^{-1} r by one linear solve: the fixed point of Eq. 3 (IPL Lemma 1)."""
    r = mdp.check("r", r)
    M = np.eye(r.size) - mdp.gamma * transition_matrix(mdp, pi)
    return np.linalg.solve(M, r.reshape(-1)).reshape(r.shape)


def inverse_bellman_policy(mdp: MDP, Q: np.ndarray, pi: np.ndarray) -> np.ndarray:
    """(T^pi Q)(s, a) = Q(s, a) - gamma E_s' [V^pi(s')] = ((I - gamma P^pi) Q)(s, a): IPL Eq. 4, Lemma 1."""
    Q = mdp.check("Q", Q)
    return Q - mdp.gamma * mdp.P @ (mdp.check_policy("pi", pi) * Q).sum(axis=1)


def greedy_policy(Q: np.ndarray) -> np.ndarray:
    """The deterministic policy pi(a|s) = 1[a = argmax_a' Q(s, a')], an (S, A) array; ties: the first."""
    Q = np.asarray(Q, dtype=np.float64)
    if Q.ndim != 2 or not np.all(np.isfinite(Q)):
        raise ValueError(f"Q must be a finite (S, A) array, got shape {Q.shape}")
    return np.eye(Q.shape[1])[Q.argmax(axis=1)]


def policy_return(mdp: MDP, r: np.ndarray, pi: np.ndarray, start: np.ndarray | None = None) -> float:
    """The true discounted return E_{s0 ~ start}[V^pi_r(s0)] of a policy under reward r (start=None: uniform).

    V^pi(s) = sum_a pi(a|s) Q^pi(s, a), with Q^pi from policy_evaluation (IPL Eq. 3). The chapter
    "IPL: theory" (book/ipl/theory.ipynb) scores IPL's greedy policy with it.
    """
    pi = mdp.check_policy("pi", pi)
    V = (pi * policy_evaluation(mdp, r, pi)).sum(axis=1)
    if start is None:
        return float(V.mean())
    start = np.asarray(start, dtype=np.float64)
    if start.shape != (mdp.n_states,) or start.min() < 0 or not np.isclose(start.sum(), 1.0):
        raise ValueError(f"start must be a distribution over the {mdp.n_states} states, got {start}")
    return float(start @ V)


def optimal_policy(mdp: MDP, r: np.ndarray, max_iter: int = 1000) -> np.ndarray:
    """A deterministic optimal policy of reward r by exact policy iteration (Sutton & Barto, Sec. 4.3)."""
    pi = greedy_policy(np.zeros_like(mdp.check("r", r)))
    for _ in range(max_iter):
        Q = policy_evaluation(mdp, r, pi)
        improved = greedy_policy(Q)
        # keep the current action where it is already greedy up to rounding, so the loop cannot cycle on ties
        keep = (pi * Q).sum(axis=1) >= Q.max(axis=1) - 1e-12 * max(1.0, np.abs(Q).max())
        improved[keep] = pi[keep]
        if np.array_equal(improved, pi):
            return pi
        pi = improved
    raise RuntimeError(f"optimal_policy did not converge in max_iter={max_iter} iterations")


# ----------------------------------------------------------------------------------------------------------
# Soft-optimal (KL-regularised, XQL) operators, IPL Section 3.3: the same two chapters


def _log_mu(mdp: MDP, mu: np.ndarray | None) -> torch.Tensor:
    if mu is None:
        return torch.full((mdp.n_states, mdp.n_actions), -np.log(mdp.n_actions), dtype=torch.float64)
    with np.errstate(divide="ignore"):
        return _tensor(np.log(mdp.check_policy("mu", mu)))


def _soft_value(Q: torch.Tensor, alpha: float, log_mu: torch.Tensor) -> torch.Tensor:
    return alpha * torch.logsumexp(Q / alpha + log_mu, dim=1)


def _inverse_bellman(
    P: torch.Tensor, gamma: float, Q: torch.Tensor, alpha: float, log_mu: torch.Tensor
) -> torch.Tensor:
    return Q - gamma * P @ _soft_value(Q, alpha, log_mu)


def _check_alpha(alpha: float) -> None:
    if not alpha > 0:
        raise ValueError(f"alpha (the KL temperature) must be positive, got {alpha}")


def soft_value(mdp: MDP, Q: np.ndarray, alpha: float, mu: np.ndarray | None = None) -> np.ndarray:
    """V(s) = alpha log sum_a mu(a|s) exp(Q(s, a) / alpha), the XQL target (IPL Sec. 3.3), mu=None uniform."""
    _check_alpha(alpha)
    return _soft_value(_tensor(mdp.check("Q", Q)), alpha, _log_mu(mdp, mu)).numpy()


def soft_optimal_policy(mdp: MDP, Q: np.ndarray, alpha: float, mu: np.ndarray | None = None) -> np.ndarray:
    """pi(a|s) = mu(a|s) exp((Q(s, a) - V(s)) / alpha), the policy of a soft Q (IPL Section 3.3)."""
    V = soft_value(mdp, Q, alpha, mu)
    log_pi = _log_mu(mdp, mu).numpy() + (mdp.check("Q", Q) - V[:, None]) / alpha
    return np.exp(log_pi)


def soft_bellman_operator(
    mdp: MDP, Q: np.ndarray, r: np.ndarray, alpha: float, mu: np.ndarray | None = None
) -> np.ndarray:
    """(B*_r Q)(s, a) = r(s, a) + gamma E_s' [V(s')] with the soft value V (IPL Section 3.3)."""
    return mdp.check("r", r) + mdp.gamma * mdp.P @ soft_value(mdp, Q, alpha, mu)


def soft_value_iteration(
    mdp: MDP, r: np.ndarray, alpha: float, mu: np.ndarray | None = None,
    tol: float = 1e-12, max_iter: int = 100_000,
) -> np.ndarray:
    """The soft-optimal Q*_r: iterate the soft Bellman operator (a gamma-contraction) from Q = 0.

    Stops when the largest change abs(Q_{k+1} - Q_k) is at most tol * max(1, largest abs(Q_k)): relative
    for large values, so rounding cannot stall it.
    """
    r = mdp.check("r", r)
    Q = np.zeros_like(r)
    for _ in range(max_iter):
        Q_next = soft_bellman_operator(mdp, Q, r, alpha, mu)
        if np.abs(Q_next - Q).max() <= tol * max(1.0, np.abs(Q).max()):
            return Q_next
        Q = Q_next
    raise RuntimeError(f"soft_value_iteration did not reach tol={tol} in max_iter={max_iter} iterations")


def inverse_bellman(mdp: MDP, Q: np.ndarray, alpha: float, mu: np.ndarray | None = None) -> np.ndarray:
    """(T* Q)(s, a) = Q(s, a) - gamma E_s' [V(s')] with the soft value V: the implicit reward, IPL Eq. 4."""
    _check_alpha(alpha)
    Q_t = _tensor(mdp.check("Q", Q))
    return _inverse_bellman(_tensor(mdp.P), mdp.gamma, Q_t, alpha, _log_mu(mdp, mu)).numpy()


# ----------------------------------------------------------------------------------------------------------
# Preference objectives and fits (IPL Eq. 2, 5, 6, Theorem 1, Proposition 1): chapter ipl/theory


def _objective(r: torch.Tensor, prefs: Preferences, lam: float) -> torch.Tensor:
    """Mean BCE of Bradley-Terry on undiscounted segment returns (Eq. 2) + lam * mean r^2 (Eq. 6)."""
    return1 = r[prefs.seg1[..., 0], prefs.seg1[..., 1]].sum(dim=-1)
    return2 = r[prefs.seg2[..., 0], prefs.seg2[..., 1]].sum(dim=-1)
    fit = preference_loss(return1, return2, torch.as_tensor(prefs.label)).loss
    return fit + lam * r.pow(2).mean()


def _check_lam(lam: float) -> None:
    if not lam >= 0:
        raise ValueError(f"lam (the regularisation weight) must be >= 0, got {lam}")


def reward_objective(mdp: MDP, prefs: Preferences, r: np.ndarray, lam: float) -> float:
    """The regularised preference loss of a reward table: mean BCE (IPL Eq. 2) + lam * mean_(s,a) r^2."""
    _check_lam(lam)
    prefs.check(mdp)
    return float(_objective(_tensor(mdp.check("r", r)), prefs, lam))


def ipl_objective(
    mdp: MDP, prefs: Preferences, Q: np.ndarray, lam: float, alpha: float, mu: np.ndarray | None = None
) -> float:
    """IPL's loss of a Q table, Eq. 6: the reward objective evaluated at the implicit reward T* Q (Eq. 5)."""
    return reward_objective(mdp, prefs, inverse_bellman(mdp, Q, alpha, mu), lam)


def _minimise(loss: Callable[[torch.Tensor], torch.Tensor], x0: np.ndarray, tol: float) -> np.ndarray:
    """Minimise a smooth function of a float64 table on one CPU thread (tiny tensors run faster there)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _lbfgs_newton(loss, x0, tol)
    finally:
        torch.set_num_threads(threads)


def _lbfgs_newton(loss: Callable[[torch.Tensor], torch.Tensor], x0: np.ndarray, tol: float) -> np.ndarray:
    """Minimise a smooth function of a float64 table: L-BFGS, then Newton steps until max |gradient| <= tol.

    Newton steps (least-squares, so a flat direction such as a shift is left alone) are kept only while they
    shrink the gradient; near a strict minimum they converge quadratically. A warning says when tol is missed.
    """
    x = _tensor(x0).clone().requires_grad_(True)
    optimizer = torch.optim.LBFGS(
        [x], max_iter=500, history_size=50, tolerance_grad=tol, tolerance_change=1e-16,
        line_search_fn="strong_wolfe",
    )

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        value = loss(x)
        value.backward()
        return value

    optimizer.step(closure)
    flat = x.detach().reshape(-1)

    def flat_loss(v: torch.Tensor) -> torch.Tensor:
        return loss(v.reshape(x.shape))

    def gradient(z: torch.Tensor) -> torch.Tensor:
        z = z.clone().requires_grad_(True)
        return torch.autograd.grad(flat_loss(z), z)[0]

    g = gradient(flat)
    for _ in range(30):
        if g.abs().max() <= tol:
            break
        hessian = torch.autograd.functional.hessian(flat_loss, flat, vectorize=True)
        step = torch.linalg.pinv(hessian, rtol=1e-10, hermitian=True) @ g  # min-norm if singular
        candidate = flat - step
        g_candidate = gradient(candidate)
        if not g_candidate.abs().max() < g.abs().max():
            break
        flat, g = candidate, g_candidate
    if g.abs().max() > tol:
        warnings.warn(
            f"the fit stopped with max |gradient| = {float(g.abs().max()):.3g} > tol = {tol}; "
            "with lam = 0 a minimum may not exist (shift invariance, separable labels)",
            RuntimeWarning,
            stacklevel=4,
        )
    return flat.reshape(x.shape).numpy()


def fit_reward(mdp: MDP, prefs: Preferences, lam: float, tol: float = 1e-10,
               zero: np.ndarray | None = None) -> np.ndarray:
    """r* = argmin_r mean BCE (IPL Eq. 2) + lam * mean r^2: the reward of Theorem 1, unique for lam > 0.

    ``zero`` (S, A) bool marks entries held at 0, such as an absorbing state's, whose reward is 0 by
    definition (the book's chapter "The regret preference model" shows why it matters)."""
    _check_lam(lam)
    prefs.check(mdp)
    r0 = np.zeros((mdp.n_states, mdp.n_actions))
    if zero is None:
        return _minimise(lambda r: _objective(r, prefs, lam), r0, tol)
    free = _tensor(~np.asarray(mdp.check("zero", zero), dtype=bool))
    return _minimise(lambda r: _objective(r * free, prefs, lam), r0, tol) * free.numpy()


def fit_ipl(
    mdp: MDP, prefs: Preferences, lam: float, alpha: float, mu: np.ndarray | None = None,
    tol: float = 1e-10,
) -> np.ndarray:
    """Minimise IPL Eq. 6 over Q directly, through the inverse soft-Bellman operator T*.

    By Proposition 1 the result is the soft-optimal Q of fit_reward's r* (no reward is ever fitted).
    """
    _check_lam(lam)
    _check_alpha(alpha)
    prefs.check(mdp)
    P, log_mu = _tensor(mdp.P), _log_mu(mdp, mu)
    return _minimise(
        lambda Q: _objective(_inverse_bellman(P, mdp.gamma, Q, alpha, log_mu), prefs, lam),
        np.zeros((mdp.n_states, mdp.n_actions)), tol,
    )


def fit_ipl_policy(
    mdp: MDP, prefs: Preferences, lam: float, pi: np.ndarray, tol: float = 1e-10
) -> np.ndarray:
    """Minimise Eq. 6 over Q through the fixed-policy operator T^pi: one step of Theorem 1's proof.

    The result satisfies (I - gamma P^pi) Q = r*, i.e. it is Q^pi for fit_reward's r* (Lemma 1).
    """
    _check_lam(lam)
    prefs.check(mdp)
    P, pi_t = _tensor(mdp.P), _tensor(mdp.check_policy("pi", pi))
    return _minimise(
        lambda Q: _objective(Q - mdp.gamma * P @ (pi_t * Q).sum(dim=1), prefs, lam),
        np.zeros((mdp.n_states, mdp.n_actions)), tol,
    )


# ----------------------------------------------------------------------------------------------------------
# Random MDPs, segments, preferences; a gridworld: used by all three chapters


def random_mdp(n_states: int, n_actions: int, gamma: float, rng: np.random.Generator) -> MDP:
    """An MDP whose rows P[s, a] are drawn from a flat Dirichlet distribution."""
    if n_states < 1 or n_actions < 1:
        raise ValueError(f"n_states and n_actions must be >= 1, got {n_states} and {n_actions}")
    return MDP(rng.dirichlet(np.ones(n_states), size=(n_states, n_actions)), gamma)


def sample_segments(mdp: MDP, n: int, length: int, rng: np.random.Generator) -> np.ndarray:
    """n segments of `length` steps, shape (n, length, 2): uniform start state, uniform random actions."""
    if n < 1 or length < 1:
        raise ValueError(f"n and length must be >= 1, got n={n}, length={length}")
    segments = np.empty((n, length, 2), dtype=np.int64)
    states = rng.integers(mdp.n_states, size=n)
    cumulative = mdp.P.cumsum(axis=2)
    for t in range(length):
        actions = rng.integers(mdp.n_actions, size=n)
        segments[:, t, 0], segments[:, t, 1] = states, actions
        u = rng.random(n)[:, None]
        states = np.minimum((u > cumulative[states, actions]).sum(axis=1), mdp.n_states - 1)
    return segments


def random_preferences(
    mdp: MDP, r_true: np.ndarray, n_pairs: int, length: int, rng: np.random.Generator,
    soft_labels: bool = False,
) -> Preferences:
    """Random segment pairs labelled by a Bradley-Terry teacher with reward r_true (IPL Eq. 1).

    soft_labels=True stores the exact probability P[seg1 > seg2]; otherwise a Bernoulli draw of it.
    """
    r_true = mdp.check("r_true", r_true)
    seg1, seg2 = sample_segments(mdp, n_pairs, length, rng), sample_segments(mdp, n_pairs, length, rng)
    return label_segments(seg1, seg2, r_true, rng, soft_labels)


def label_segments(
    seg1: np.ndarray, seg2: np.ndarray, score: np.ndarray, rng: np.random.Generator, soft_labels: bool = False
) -> Preferences:
    """Label given segment pairs by Bradley-Terry on the summed per-step ``score`` (S, A): a reward for the
    partial-return teacher (IPL Eq. 1), the optimal advantage A* for the regret teacher (Knox et al.)."""
    score = np.asarray(score, dtype=np.float64)
    total1 = score[seg1[..., 0], seg1[..., 1]].sum(axis=1)
    total2 = score[seg2[..., 0], seg2[..., 1]].sum(axis=1)
    probability = preference_probability(torch.as_tensor(total1), torch.as_tensor(total2)).numpy()
    label = probability if soft_labels else (rng.random(len(total1)) < probability).astype(np.float64)
    return Preferences(seg1, seg2, label)


# ----------------------------------------------------------------------------------------------------------
# Optimal advantages and the regret preference model (Knox et al.; CPL Sec. 2-3): chapter family/regret


def optimal_advantage(mdp: MDP, r: np.ndarray, alpha: float | None = None,
                      mu: np.ndarray | None = None) -> np.ndarray:
    """The optimal advantage ``A*_r(s, a) = Q*_r(s, a) - V*_r(s)``, an (S, A) array.

    ``alpha=None``: the ordinary (hard) optimum, ``Q*`` by exact policy iteration and
    ``V*(s) = max_a Q*(s, a)``, so ``A* <= 0`` with equality at optimal actions. ``alpha > 0``: the soft
    (KL-regularised) optimum of IPL Sec. 3.3, ``Q*`` by soft value iteration and V the soft value, so that
    ``A* = alpha log(pi*(a|s) / mu(a|s))`` (CPL Sec. 3.1, with mu uniform: the maximum-entropy case up to the
    constant ``alpha log |A|``). Taught in "The regret
    preference model" (book/family/regret.ipynb).
    """
    r = mdp.check("r", r)
    if alpha is None:
        Q = policy_evaluation(mdp, r, optimal_policy(mdp, r))
        return Q - Q.max(axis=1, keepdims=True)
    Q = soft_value_iteration(mdp, r, alpha, mu)
    return Q - soft_value(mdp, Q, alpha, mu)[:, None]


def regret_preferences(
    mdp: MDP, r_true: np.ndarray, n_pairs: int, length: int, rng: np.random.Generator,
    soft_labels: bool = False, alpha: float | None = None, mu: np.ndarray | None = None,
) -> Preferences:
    """Random segment pairs labelled by the regret teacher: Bradley-Terry on sum_t A*(s_t, a_t) (Knox et al.,
    the regret preference model; CPL's preference model), with A* from :func:`optimal_advantage` (hard for
    alpha=None, soft otherwise). Segments and draws as in :func:`random_preferences`."""
    advantage = optimal_advantage(mdp, r_true, alpha, mu)
    seg1, seg2 = sample_segments(mdp, n_pairs, length, rng), sample_segments(mdp, n_pairs, length, rng)
    return label_segments(seg1, seg2, advantage, rng, soft_labels)


def with_absorbing_state(mdp: MDP, terminals: list[int]) -> MDP:
    """The episodic version of ``mdp``: one absorbing state is appended (index S), every action in a state of
    ``terminals`` leads to it, and it leads only to itself. Rewards there are 0 by convention: the episode is
    over."""
    S, A = mdp.n_states, mdp.n_actions
    if not terminals or any(not 0 <= t < S for t in terminals):
        raise ValueError(f"terminals must be a non-empty list of states in [0, {S}), got {terminals}")
    P = np.zeros((S + 1, A, S + 1))
    P[:S, :, :S] = mdp.P
    P[terminals] = 0.0
    P[terminals, :, S] = 1.0
    P[S, :, S] = 1.0
    return MDP(P, mdp.gamma)


GRID_ACTIONS = ("up", "down", "left", "right")
"""Action names of `gridworld`, in index order."""


def gridworld(n_rows: int, n_cols: int, gamma: float, slip: float = 0.0) -> MDP:
    """A grid of n_rows x n_cols cells, state = row * n_cols + col, actions GRID_ACTIONS.

    A move into the border leaves the agent in place. With probability `slip` the move goes in a uniformly
    random direction instead of the chosen one.
    """
    if n_rows < 1 or n_cols < 1:
        raise ValueError(f"n_rows and n_cols must be >= 1, got {n_rows} and {n_cols}")
    if not 0 <= slip <= 1:
        raise ValueError(f"slip must be a probability in [0, 1], got {slip}")
    moves = ((-1, 0), (1, 0), (0, -1), (0, 1))
    S = n_rows * n_cols
    step = np.zeros((S, len(moves), S))  # deterministic effect of each move
    for row in range(n_rows):
        for col in range(n_cols):
            for a, (dr, dc) in enumerate(moves):
                nr, nc = min(max(row + dr, 0), n_rows - 1), min(max(col + dc, 0), n_cols - 1)
                step[row * n_cols + col, a, nr * n_cols + nc] = 1.0
    P = (1 - slip) * step + slip * step.mean(axis=1, keepdims=True)
    return MDP(P, gamma)


def fit_cpl(mdp: MDP, prefs: Preferences, alpha: float, bias: float = 1.0, tol: float = 1e-10) -> np.ndarray:
    """Minimise CPL's loss (:func:`ipl_core.losses.cpl_loss`) over a softmax policy table; returns pi (S, A).

    No reward, no Q: the segment score is sum_t alpha log pi(a_t|s_t). With regret labels from the soft
    optimal advantage (:func:`regret_preferences` with this alpha) and bias = 1 the minimiser is the
    soft-optimal policy pi* of the true reward wherever the data reach (CPL Sec. 3.1). Taught in "Contrastive
    Preference Learning" (book/family/cpl.ipynb).
    """
    _check_alpha(alpha)
    prefs.check(mdp)
    label = torch.as_tensor(prefs.label)[None]

    def loss(theta: torch.Tensor) -> torch.Tensor:
        log_pi = torch.log_softmax(theta, dim=1)
        log_prob_1 = log_pi[prefs.seg1[..., 0], prefs.seg1[..., 1]][None]
        log_prob_2 = log_pi[prefs.seg2[..., 0], prefs.seg2[..., 1]][None]
        return cpl_loss(log_prob_1, log_prob_2, label, alpha, bias).loss.sum()

    theta = _minimise(loss, np.zeros((mdp.n_states, mdp.n_actions)), tol)
    return np.exp(torch.log_softmax(_tensor(theta), dim=1).numpy())
