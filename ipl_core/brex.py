"""Bayesian REX: a Metropolis-Hastings posterior over the weights of a linear reward (Brown et al. 2020).

With a linear reward r(s, a) = w . phi(s, a), a segment's return is w . Phi where Phi = sum_t phi(s_t, a_t)
are its summed features, so the Bradley-Terry likelihood of every label (IPL Eq. 1-2) costs one matrix-vector
product. B-REX keeps w on the unit sphere (the scale of a reward is not identified by preferences; a
confidence ``beta`` sets it instead), puts a uniform prior there, and samples the posterior with random-walk
Metropolis-Hastings: propose w' = normalise(w + step_size * noise), accept with probability
min(1, exp(log L(w') - log L(w))). The proposal density depends only on the angle between w and w', so it
is symmetric and the Hastings correction cancels. Taught in the chapter "Reward models: Markovian,
non-Markovian, Bayesian" (book/baselines/reward_models.ipynb).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F


class PosteriorSamples(NamedTuple):
    """A Metropolis-Hastings chain over unit-norm reward weights, and what B-REX reads from it."""

    samples: torch.Tensor
    """(num_steps, d): the chain after burn-in, one unit-norm weight vector per step (repeats on rejects)."""
    log_likelihood: torch.Tensor
    """(num_steps,): the Bradley-Terry log-likelihood of all labels at each sample."""
    acceptance_rate: float
    """Share of the proposals after burn-in that were accepted."""
    map_weights: torch.Tensor
    """(d,): the sample of highest likelihood seen (the MAP under B-REX's uniform prior on the sphere)."""
    mean_weights: torch.Tensor
    """(d,): the posterior mean of the kept samples, renormalised to unit length."""
    step_size: float
    """The proposal step used after burn-in (the given one, or the one adapted during burn-in)."""


def linear_log_likelihood(weights: torch.Tensor, feature_diff: torch.Tensor, label: torch.Tensor,
                          beta: float = 1.0) -> torch.Tensor:
    """Bradley-Terry log-likelihood of all labels under linear rewards (IPL Eq. 1; Brown et al. 2020, Eq. 6).

    ``weights`` (..., d), ``feature_diff`` (N, d) = Phi_1 - Phi_2, ``label`` (N,) = P[segment 1 preferred].
    Returns the sum over pairs of y log sigma(beta w.dPhi) + (1 - y) log sigma(-beta w.dPhi), shape (...).
    """
    logits = beta * (weights @ feature_diff.T)
    target = label.to(logits.dtype).expand_as(logits)
    return -F.binary_cross_entropy_with_logits(logits, target, reduction="none").sum(dim=-1)


def metropolis_hastings(
    features_1: torch.Tensor,
    features_2: torch.Tensor,
    label: torch.Tensor,
    num_steps: int,
    generator: torch.Generator,
    step_size: float = 0.05,
    beta: float = 1.0,
    burn_in: int = 0,
    target_acceptance: float | None = None,
) -> PosteriorSamples:
    """Sample p(w | labels) on the unit sphere by random-walk Metropolis-Hastings (B-REX, Brown et al. 2020).

    ``features_i`` (N, d): summed features Phi of segment i of each pair. ``label`` (N,) in [0, 1]. The chain
    starts at a random unit vector drawn with ``generator`` and runs ``burn_in + num_steps`` proposals;
    the first ``burn_in`` are discarded. With ``target_acceptance``, the step size is adapted during burn-in
    (log step += (accepted - target) / sqrt(i + 1)) and then frozen, so the kept chain is a plain
    Metropolis-Hastings chain; B-REX itself tunes the step by hand. Computation is in float64.
    """
    if features_1.ndim != 2 or features_1.shape != features_2.shape:
        raise ValueError(
            f"metropolis_hastings expects features_1 and features_2 of equal shape (N, d), got "
            f"{tuple(features_1.shape)} and {tuple(features_2.shape)}"
        )
    if label.shape != features_1.shape[:1]:
        raise ValueError(f"label must have shape ({features_1.shape[0]},), got {tuple(label.shape)}")
    if ((label < 0) | (label > 1)).any() or not torch.isfinite(features_1 - features_2).all():
        raise ValueError("label must lie in [0, 1] and features must be finite")
    if num_steps < 1 or burn_in < 0:
        raise ValueError(f"num_steps must be >= 1 and burn_in >= 0, got {num_steps} and {burn_in}")
    if step_size <= 0 or beta <= 0:
        raise ValueError(f"step_size and beta must be positive, got {step_size} and {beta}")
    if target_acceptance is not None and not 0 < target_acceptance < 1:
        raise ValueError(f"target_acceptance must lie in (0, 1), got {target_acceptance}")
    # The chain is a long sequence of tiny steps: it runs on the CPU whatever the features' device.
    diff = (features_1 - features_2).double().cpu()
    label = label.double().cpu()
    dim = diff.shape[1]

    current = torch.randn(dim, generator=generator, dtype=torch.float64)
    current = current / current.norm()
    current_ll = linear_log_likelihood(current, diff, label, beta)
    best, best_ll = current, current_ll
    samples, lls = [], []
    accepted = 0
    uniforms = torch.rand(burn_in + num_steps, generator=generator, dtype=torch.float64)
    for step in range(burn_in + num_steps):
        proposal = current + step_size * torch.randn(dim, generator=generator, dtype=torch.float64)
        proposal = proposal / proposal.norm()
        proposal_ll = linear_log_likelihood(proposal, diff, label, beta)
        accept = bool(torch.log(uniforms[step]) < proposal_ll - current_ll)
        if accept:
            current, current_ll = proposal, proposal_ll
            accepted += step >= burn_in
            if current_ll > best_ll:
                best, best_ll = current, current_ll
        if target_acceptance is not None and step < burn_in:
            step_size *= math.exp((accept - target_acceptance) / math.sqrt(step + 1))
        if step >= burn_in:
            samples.append(current)
            lls.append(current_ll)
    chain = torch.stack(samples)
    mean = chain.mean(dim=0)
    return PosteriorSamples(
        samples=chain,
        log_likelihood=torch.stack(lls),
        acceptance_rate=accepted / num_steps,
        map_weights=best,
        mean_weights=mean / mean.norm(),
        step_size=step_size,
    )
