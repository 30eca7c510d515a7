"""DPO as inverse soft Q-learning on a deterministic token tree (Rafailov et al. 2024, "From r to Q*").

A response of ``length`` tokens from a vocabulary of ``vocab`` tokens is built one token at a time: the
state is the prefix written so far, the action the next token, the transition deterministic (append it),
and an episode ends after ``length`` tokens (gamma = 1, finite horizon). Every state is a node of a tree;
the ``vocab ** length`` leaves are the complete responses. A policy is a table of logits, one row per
internal node. In this MDP the KL-regularised optimum (IPL Sec. 3.3 with temperature alpha and reference
policy mu) satisfies alpha log(pi*(a|s) / mu(a|s)) = Q*(s, a) - V*(s), and summing over a response
telescopes: alpha sum_t log(pi / mu) = sum_t (T* Q)(s_t, a_t) - V(s_0), where T* Q(s, a) = Q(s, a) - V(s')
is IPL's inverse soft-Bellman operator at gamma = 1. Taught in "DPO as inverse Q-learning"
(book/family/dpo.ipynb).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch

from ipl_core.bandit import dpo_loss


@dataclass(frozen=True)
class TokenTree:
    """All responses of ``length`` tokens over ``vocab`` tokens, as a tree of prefixes."""

    vocab: int
    """Number of tokens, at least 2."""
    length: int
    """Tokens per response, at least 1."""

    def __post_init__(self) -> None:
        if self.vocab < 2 or self.length < 1:
            raise ValueError(f"TokenTree needs vocab >= 2 and length >= 1, got vocab={self.vocab}, "
                             f"length={self.length}")
        if self.vocab ** self.length > 100_000:
            raise ValueError(f"TokenTree({self.vocab}, {self.length}) has {self.vocab ** self.length} "
                             "responses; keep it below 100000 (every table is exact)")

    @property
    def n_nodes(self) -> int:
        """Internal nodes (prefixes shorter than ``length``): the states where a token is chosen."""
        return (self.vocab ** self.length - 1) // (self.vocab - 1)

    def offset(self, depth: int) -> int:
        """Index of the first node at ``depth`` (prefixes of ``depth`` tokens)."""
        return (self.vocab ** depth - 1) // (self.vocab - 1)

    def responses(self) -> np.ndarray:
        """Every response, (vocab ** length, length), in lexicographic order."""
        grid = np.indices((self.vocab,) * self.length).reshape(self.length, -1).T
        return grid.astype(np.int64)

    def nodes(self, responses: np.ndarray) -> np.ndarray:
        """The node (state) at each step of each response, (N, length): the prefix before token t."""
        responses = np.asarray(responses, dtype=np.int64)
        if responses.ndim != 2 or responses.shape[1] != self.length:
            raise ValueError(f"responses must be (N, {self.length}) token arrays, got {responses.shape}")
        if responses.min() < 0 or responses.max() >= self.vocab:
            raise ValueError(f"responses hold tokens outside [0, {self.vocab})")
        nodes = np.empty_like(responses)
        value = np.zeros(len(responses), dtype=np.int64)
        for t in range(self.length):
            nodes[:, t] = self.offset(t) + value
            value = value * self.vocab + responses[:, t]
        return nodes

    def children(self) -> np.ndarray:
        """Node index of the child reached by each (node, token), (n_nodes, vocab); -1 for a leaf."""
        children = np.full((self.n_nodes, self.vocab), -1, dtype=np.int64)
        for depth in range(self.length - 1):
            first, count = self.offset(depth), self.vocab ** depth
            values = np.arange(count)[:, None] * self.vocab + np.arange(self.vocab)[None]
            children[first:first + count] = self.offset(depth + 1) + values
        return children

    def terminal_reward(self, reward: np.ndarray) -> np.ndarray:
        """A reward of whole responses, (vocab ** length,), placed on their last token: an (n_nodes, vocab)
        table that is zero before the last token (the usual RLHF reward)."""
        reward = np.asarray(reward, dtype=np.float64)
        if reward.shape != (self.vocab ** self.length,):
            raise ValueError(f"reward must hold one value per response, ({self.vocab ** self.length},), got "
                             f"{reward.shape}")
        table = np.zeros((self.n_nodes, self.vocab))
        table[self.offset(self.length - 1):] = reward.reshape(-1, self.vocab)
        return table


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    return torch.log_softmax(torch.as_tensor(logits, dtype=torch.float64), dim=-1).numpy()


def soft_value(tree: TokenTree, Q: np.ndarray, log_mu: np.ndarray, alpha: float) -> np.ndarray:
    """V(s) = alpha log sum_a mu(a|s) exp(Q(s, a) / alpha) at every node, (n_nodes,)."""
    return alpha * torch.logsumexp(torch.as_tensor(log_mu + Q / alpha), dim=-1).numpy()


def next_values(tree: TokenTree, Q: np.ndarray, log_mu: np.ndarray, alpha: float) -> np.ndarray:
    """V(s') of the node each (node, token) leads to, (n_nodes, vocab); 0 after the last token."""
    V, children = soft_value(tree, Q, log_mu, alpha), tree.children()
    return np.where(children >= 0, V[np.maximum(children, 0)], 0.0)


def inverse_bellman(tree: TokenTree, Q: np.ndarray, log_mu: np.ndarray, alpha: float) -> np.ndarray:
    """IPL's implicit reward at gamma = 1: (T* Q)(s, a) = Q(s, a) - V(s'), V the soft value (IPL Eq. 4)."""
    return Q - next_values(tree, Q, log_mu, alpha)


def soft_optimal_q(tree: TokenTree, reward: np.ndarray, log_mu: np.ndarray, alpha: float) -> np.ndarray:
    """Q*(s, a) = r(s, a) + V*(s') by backward induction from the leaves (exact; the tree is finite)."""
    Q = np.array(reward, dtype=np.float64)
    children = tree.children()
    for depth in range(tree.length - 2, -1, -1):
        rows = slice(tree.offset(depth), tree.offset(depth + 1))
        V = soft_value(tree, Q, log_mu, alpha)
        Q[rows] = reward[rows] + V[children[rows]]
    return Q


def policy_of(tree: TokenTree, Q: np.ndarray, log_mu: np.ndarray, alpha: float) -> np.ndarray:
    """log pi_Q(a|s) = log mu(a|s) + (Q(s, a) - V(s)) / alpha, the soft-optimal policy of Q."""
    return log_mu + (Q - soft_value(tree, Q, log_mu, alpha)[:, None]) / alpha


def q_of_policy(tree: TokenTree, log_pi: np.ndarray, log_mu: np.ndarray, alpha: float,
                potential: np.ndarray | None = None) -> np.ndarray:
    """A Q-function whose soft-optimal policy is pi: Q(s, a) = alpha log(pi / mu)(a|s) + Phi(s).

    Any potential Phi (n_nodes,) works (0 if None): every policy is soft-optimal for a family of
    Q-functions, whose implicit rewards differ by the shaping Phi(s) - Phi(s') (the reward classes of
    "From r to Q*")."""
    phi = np.zeros(tree.n_nodes) if potential is None else np.asarray(potential, dtype=np.float64)
    return alpha * (log_pi - log_mu) + phi[:, None]


def response_log_prob(tree: TokenTree, log_pi: torch.Tensor | np.ndarray,
                      responses: np.ndarray) -> torch.Tensor:
    """log pi(y) = sum_t log pi(y_t | y_<t) of each response, (N,)."""
    log_pi = torch.as_tensor(log_pi)
    nodes = torch.as_tensor(tree.nodes(responses))
    return log_pi[nodes, torch.as_tensor(responses)].sum(-1)


def implicit_return(tree: TokenTree, table: np.ndarray, responses: np.ndarray) -> np.ndarray:
    """sum_t table(s_t, y_t) over each response, (N,): a return when ``table`` is a reward."""
    nodes = tree.nodes(responses)
    return np.asarray(table)[nodes, responses].sum(-1)


class DPOTrace(NamedTuple):
    """Per-step records of :func:`train_dpo`, each (steps + 1,) (before the first step, then after each)."""

    loss: np.ndarray
    """The DPO loss on the training pairs."""
    chosen: np.ndarray
    """Mean implicit reward alpha log(pi / mu)(y) of the chosen responses."""
    rejected: np.ndarray
    """Mean implicit reward of the rejected responses."""
    log_pi: np.ndarray
    """The final policy's log-probabilities, (n_nodes, vocab)."""


def train_dpo(tree: TokenTree, chosen: np.ndarray, rejected: np.ndarray, log_mu: np.ndarray, alpha: float,
              steps: int, lr: float = 0.05) -> DPOTrace:
    """Minimise the DPO loss over a table of logits initialised at mu, by full-batch Adam, recording the
    implicit rewards of the chosen and rejected responses after every step, the quantities whose decline
    during DPO training "From r to Q*" explains."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    logits = torch.tensor(log_mu, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.Adam([logits], lr=lr)
    index = [(torch.as_tensor(tree.nodes(y)), torch.as_tensor(y)) for y in (chosen, rejected)]
    ref_chosen, ref_rejected = (torch.as_tensor(log_mu)[n, y].sum(-1) for n, y in index)
    losses, rewards_chosen, rewards_rejected = [], [], []
    for step in range(steps + 1):
        log_pi = torch.log_softmax(logits, dim=-1)
        lp_chosen, lp_rejected = (log_pi[n, y].sum(-1) for n, y in index)
        loss = dpo_loss(lp_chosen, lp_rejected, ref_chosen, ref_rejected, alpha).loss
        losses.append(loss.item())
        with torch.no_grad():
            rewards_chosen.append(alpha * (lp_chosen - ref_chosen).mean().item())
            rewards_rejected.append(alpha * (lp_rejected - ref_rejected).mean().item())
        if step == steps:
            break
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    final = torch.log_softmax(logits.detach(), dim=-1).numpy()
    return DPOTrace(np.array(losses), np.array(rewards_chosen), np.array(rewards_rejected), final)
