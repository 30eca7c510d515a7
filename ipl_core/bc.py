"""Behaviour cloning: the policy that imitates the offline data, the baseline a preference learner must beat.

It is the policy step of IPL and IQL (advantage-weighted regression, IPL Algorithm 2) with every weight
equal to one, on the same Gaussian actor. Taught in "IPL in practice" (book/ipl/offline.ipynb).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ipl_core.data.datasets import OfflineDataset
from ipl_core.nets import GaussianActor
from ipl_core.seeding import torch_generator


def behaviour_cloning(offline: OfflineDataset, hidden_dims: Sequence[int] = (256, 256), steps: int = 1000,
                      batch_size: int = 256, lr: float = 3e-4, seed: int = 0) -> GaussianActor:
    """Fit a one-member `GaussianActor` to the dataset's actions by maximum likelihood, max E[log pi(a|s)].

    Actions must lie in [-1, 1] (the actor's mean is tanh-squashed). ``act`` of the result is the
    deterministic policy on (1, N, obs_dim), as for the agents of `ipl_core.make_agent`, so
    :class:`ipl_core.trainer.GymEvaluator` evaluates it like an agent.
    """
    if steps < 1 or batch_size < 1 or not lr > 0:
        raise ValueError(f"behaviour_cloning needs steps >= 1, batch_size >= 1 and lr > 0, "
                         f"got steps={steps}, batch_size={batch_size}, lr={lr}")
    obs = torch.as_tensor(offline.observations, dtype=torch.float32)
    act = torch.as_tensor(offline.actions, dtype=torch.float32)
    if act.abs().max() > 1.0:
        raise ValueError(f"{offline.source}: behaviour_cloning expects actions in [-1, 1], "
                         f"found {act.abs().max().item():.3g}")
    generator = torch_generator(seed, "init")
    actor = GaussianActor(obs.shape[1], act.shape[1], hidden_dims, generators=[generator])
    optimiser = torch.optim.Adam(actor.parameters(), lr=lr)
    for _ in range(steps):
        batch = torch.randint(len(obs), (batch_size,), generator=generator)
        loss = -actor.log_prob(obs[batch][None], act[batch][None]).mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return actor
