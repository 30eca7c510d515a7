"""The Bradley-Terry preference model and its loss (IPL Eq. 1-2).

Taught in the chapter "The Bradley-Terry preference model" (book/foundations/bradley_terry.ipynb).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F


class PreferenceLoss(NamedTuple):
    """A preference loss and the metrics computed with it."""

    loss: torch.Tensor
    """Mean binary cross-entropy over the batch (IPL Eq. 2), a differentiable scalar."""
    accuracy: torch.Tensor
    """Share of pairs with a strict label whose preferred segment has the larger predicted return."""


def segment_return(rewards: torch.Tensor) -> torch.Tensor:
    """Undiscounted return of each segment: its rewards summed over the last axis (the exponent of Eq. 1)."""
    return rewards.sum(dim=-1)


def preference_probability(return_1: torch.Tensor, return_2: torch.Tensor) -> torch.Tensor:
    """P[segment 1 > segment 2] under the Bradley-Terry model, IPL Eq. 1.

    exp(R1) / (exp(R1) + exp(R2)) is the logistic function of R1 - R2, computed here in that stable form.
    """
    return torch.sigmoid(return_1 - return_2)


def preference_loss(return_1: torch.Tensor, return_2: torch.Tensor, label: torch.Tensor,
                    members: bool = False) -> PreferenceLoss:
    """Binary cross-entropy between labels and the Bradley-Terry model, IPL Eq. 2.

    `label` is the probability that segment 1 is preferred: 1, 0, or 0.5 for "equally good" (soft labels).
    With ``members=True`` the first axis holds independent members (seeds): loss and accuracy are then
    averaged over the other axes only, one value per member.
    """
    if return_1.shape != return_2.shape or return_1.shape != label.shape:
        raise ValueError(
            f"preference_loss expects equal shapes, got return_1 {tuple(return_1.shape)}, "
            f"return_2 {tuple(return_2.shape)}, label {tuple(label.shape)}"
        )
    logits = return_1 - return_2
    loss = F.binary_cross_entropy_with_logits(logits, label.to(logits.dtype), reduction="none")
    with torch.no_grad():
        strict = (label != 0.5).float()
        correct = ((logits > 0) == (label > 0.5)).float() * strict
    if members:
        # sum / count rather than a boolean mask, so that a member without strict labels gives nan.
        return PreferenceLoss(loss.flatten(1).mean(1), correct.flatten(1).sum(1) / strict.flatten(1).sum(1))
    return PreferenceLoss(loss.mean(), correct.sum() / strict.sum())


def sample_bradley_terry_labels(
    return_1: torch.Tensor, return_2: torch.Tensor, generator: torch.Generator
) -> torch.Tensor:
    """Draw hard labels y ~ Bernoulli(P[segment 1 > segment 2]) from the model of Eq. 1."""
    probability = preference_probability(return_1, return_2)
    return torch.bernoulli(probability, generator=generator)


def fit_linear_reward(
    features_1: torch.Tensor,
    features_2: torch.Tensor,
    label: torch.Tensor,
    l2: float = 1e-3,
    max_iter: int = 200,
) -> torch.Tensor:
    """Fit a linear reward r(s, a) = w . phi(s, a) to preferences by L2-regularised logistic regression.

    `features_i` hold each segment's summed features sum_t phi(s_t, a_t), shape (N, d): with a linear
    reward the segment return is w . features_i, so Eq. 2 becomes logistic regression on the feature
    difference. The objective is strictly convex for l2 > 0 (IPL Proposition 1's argument), so L-BFGS
    reaches its unique minimiser. Returns w, shape (d,).
    """
    if features_1.shape != features_2.shape or features_1.ndim != 2:
        raise ValueError(
            f"fit_linear_reward expects two (N, d) feature arrays of equal shape, got "
            f"{tuple(features_1.shape)} and {tuple(features_2.shape)}"
        )
    if l2 <= 0:
        raise ValueError(f"l2 must be positive for a unique minimiser, got {l2}")
    features_1, features_2 = features_1.double(), features_2.double()
    label = label.double()
    weights = torch.zeros(features_1.shape[1], dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS(
        [weights],
        max_iter=max_iter,
        tolerance_grad=1e-10,
        tolerance_change=1e-12,
        line_search_fn="strong_wolfe",
    )

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        fit = preference_loss(features_1 @ weights, features_2 @ weights, label).loss
        objective = fit + l2 * weights.pow(2).sum()
        objective.backward()
        return objective

    optimizer.step(closure)
    return weights.detach()


def plackett_luce_loss(returns: torch.Tensor, ranking: torch.Tensor) -> torch.Tensor:
    """Mean negative log-likelihood of rankings of K segments under the Plackett-Luce model, IPL Appendix A.3.

    `returns` (N, K) holds each segment's return; `ranking` (N, K) lists segment indices from most to least
    preferred. P(ranking) = prod_k exp(R_{ranking_k}) / sum_{j >= k} exp(R_{ranking_j}); for K = 2 this is
    the Bradley-Terry loss of Eq. 2 with a hard label. Taught in "IPL: theory" (book/ipl/theory.ipynb).
    """
    if returns.ndim != 2 or ranking.shape != returns.shape:
        raise ValueError(
            f"plackett_luce_loss expects returns and ranking of equal shape (N, K), got "
            f"{tuple(returns.shape)} and {tuple(ranking.shape)}"
        )
    expected = torch.arange(returns.shape[1], device=ranking.device).expand_as(ranking)
    if ranking.is_floating_point() or not torch.equal(ranking.sort(dim=1).values, expected):
        raise ValueError("ranking must hold, in every row, a permutation of the integers 0 .. K-1")
    ordered = returns.gather(1, ranking)
    log_tail_sums = torch.logcumsumexp(ordered.flip(1), dim=1).flip(1)  # log d_k = log sum_{j >= k} exp R
    return (log_tail_sums - ordered).sum(dim=1).mean()
