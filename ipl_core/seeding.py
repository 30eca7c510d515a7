"""Every random stream of a run, drawn from (seed, role, index) through numpy's ``SeedSequence``.

A run with seed k asks for each stream by what it is for, its *role*, and where a role has many streams, an
index (the episode, the evaluation step). The three become the entropy of one ``numpy.random.SeedSequence``
(``[k, crc32(role), *index]``), which numpy hashes into the generator's state: two streams that differ in
any of the three share nothing, so no seed's stream is another seed's (as ``seed + offset`` schemes give:
seed 0's reward model and seed 1's reset critic started from one state). Chapter: "Running the
experiments at scale" (book/appendix/scale.ipynb), "Seeds and random streams"; the roles are in ``ROLES``.

Shared on purpose: no role names the method, so two methods run with the same seed k draw the same
evaluation episodes (and, where their networks have the same shapes, the same initial weights): a paired
comparison. Nothing is shared between two seeds, or between two roles of one seed. A dataset recipe's seed
is a seed like any other: the locomotion recipes (``ipl_core.online.locomotion_data``) train SAC as a run
with that seed and draw their collection and the random reference from their own roles.
"""

from __future__ import annotations

import zlib

import numpy as np
import torch

ROLES: dict[str, str] = {
    "init": "initial weights of the agent's networks (actor, then critics; PPO's policy and value)",
    "critic_reset": "the critic PEBBLE and its successors re-create after unsupervised pre-training",
    "reward_init": "initial weights of the learned reward models (the online ensemble, B-REX's fit)",
    "reward_batches": "the batches a separately trained reward model is fitted on (offline locomotion)",
    "batches": "minibatches, random actions, queries and teacher noise of a run (numpy)",
    "policy_noise": "the actor's sampled actions and other torch draws of a run",
    "train_env": "the training environment itself (MetaWorld's goal sequence)",
    "train_episode": "the reset of training episode i",
    "evaluation_env": "an evaluation environment itself (MetaWorld's goal sequence)",
    "evaluation": "the reset of evaluation episode i (online: at evaluation step t, episode i)",
    "collection": "a locomotion dataset's collection by policy p: its environment, sampled actions and the "
                  "reset of its episode i",
    "random_reference": "the random policy whose return normalises a locomotion recipe's returns",
}
"""Every role a stream can have, with what draws from it."""


def seed_sequence(seed: int, role: str, *index: int) -> np.random.SeedSequence:
    """The ``SeedSequence`` of stream (``seed``, ``role``, ``index``); ValueError for an unknown role or a
    negative number."""
    if role not in ROLES:
        raise ValueError(f"unknown random-stream role {role!r}; known: {sorted(ROLES)}")
    entropy = [int(seed), zlib.crc32(role.encode()), *(int(i) for i in index)]
    if min(entropy) < 0:
        raise ValueError(f"seeds and indices of random streams must be non-negative, got {seed}, {index}")
    return np.random.SeedSequence(entropy)


def numpy_generator(seed: int, role: str, *index: int) -> np.random.Generator:
    """A numpy ``Generator`` on stream (``seed``, ``role``, ``index``)."""
    return np.random.default_rng(seed_sequence(seed, role, *index))


def torch_generator(seed: int, role: str, *index: int) -> torch.Generator:
    """A CPU ``torch.Generator`` on stream (``seed``, ``role``, ``index``) (CPU on every device, so a run
    draws the same numbers on a CPU and a GPU)."""
    state = seed_sequence(seed, role, *index).generate_state(1, np.uint64)[0]
    return torch.Generator().manual_seed(int(state))


def env_seed(seed: int, role: str, *index: int) -> int:
    """An integer seed in [0, 2^32) for ``env.reset(seed=...)`` or ``make_env``, from stream (``seed``,
    ``role``, ``index``): 32 bits, the most dm_control's ``RandomState`` takes."""
    return int(seed_sequence(seed, role, *index).generate_state(1, np.uint32)[0])
