"""Offline preference-based RL on the locomotion datasets: the columns of IPL Tables 1, 2 and 7 as data,
and D4RL's normalised score.

The study ``ipl-locomotion`` runs the columns of those tables (:data:`ipl_core.experiments.variants.VARIANTS`)
on the ``locomotion`` preset (IPL Table 5): the oracle (IQL on the true reward), MR, IPL, its ablations (no
sub-sampling, lambda = 0, XQL instead of IQL) and the two-phase baselines (NMR, PT), which fit their
non-Markovian reward first, relabel the offline data with it and then run IQL
(:func:`relabel_with_reward_model`). :func:`d4rl_normalized_score` maps a return onto D4RL's 0-100 scale.
Taught in the reproduction chapter "IPL Table 1, 2 and 7 on locomotion"
(book/reproduction/ipl_locomotion.ipynb).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ipl_core.config import OfflineConfig
from ipl_core.data.datasets import OfflineDataset, PreferenceDataset
from ipl_core.experiments.variants import get_variant
from ipl_core.reward_models import REWARD_MODELS, relabelled, train_reward_model
from ipl_core.seeding import numpy_generator, torch_generator

D4RL_REFERENCE_RETURNS: dict[str, tuple[float, float]] = {
    "hopper": (-20.272305, 3234.3),
    "walker2d": (1.629008, 4592.3),
}
"""(random, expert) returns of D4RL's normalised score, from D4RL's ``d4rl/gym_mujoco/__init__.py``
(``HOPPER_RANDOM_SCORE``, ``HOPPER_EXPERT_SCORE``, ``WALKER_RANDOM_SCORE``, ``WALKER_EXPERT_SCORE``; the
same values as ``REF_MIN_SCORE`` / ``REF_MAX_SCORE`` of its v2 datasets in ``d4rl/infos.py``). They were
measured on the MuJoCo-py v2 environments; this book evaluates on gymnasium's Hopper-v5 and Walker2d-v5."""


def d4rl_normalized_score(task: str, episode_return: float | np.ndarray) -> float | np.ndarray:
    """100 (R - random) / (expert - random), D4RL's score (Fu et al. 2020), for ``hopper`` or ``walker2d``."""
    if task not in D4RL_REFERENCE_RETURNS:
        raise KeyError(f"no D4RL reference returns for {task!r}; known: {sorted(D4RL_REFERENCE_RETURNS)}")
    random, expert = D4RL_REFERENCE_RETURNS[task]
    score = 100.0 * (np.asarray(episode_return, dtype=np.float64) - random) / (expert - random)
    return float(score) if score.ndim == 0 else score


def split_dataset(name: str) -> tuple[str, str]:
    """``"hopper-medium-replay"`` -> ``("hopper", "medium-replay")``: the task and the dataset kind."""
    task, sep, kind = name.partition("-")
    if not sep or task not in D4RL_REFERENCE_RETURNS or not kind:
        raise ValueError(f"expected '<task>-<kind>' with task in {sorted(D4RL_REFERENCE_RETURNS)}, "
                         f"got {name!r}")
    return task, kind


def relabel_with_reward_model(
    variant: str, offline: OfflineDataset, preferences: PreferenceDataset, cfg: OfflineConfig,
    seeds: Sequence[int],
) -> tuple[list[OfflineDataset], list[float]]:
    """The first phase of a two-phase variant (NMR, PT), for each seed: fit the seed's own reward model
    (initialised from the seed) for ``cfg.reward_steps`` Adam steps on batches of ``cfg.pref_batch_size``
    whole segments on ``cfg.device``, then relabel ``offline`` with it in chunks of one segment length.
    Returns one relabelled dataset and one final training accuracy per seed, ready for
    :func:`ipl_core.trainer.train_seeds`. Variants without a reward model get ``offline`` back for every seed
    (accuracy NaN). The reward models of the family (LSTM, transformer) share no batched layer, so the seeds
    are fitted one after another."""
    name = get_variant(variant).reward_model
    if name is None:
        return [offline] * len(seeds), [float("nan")] * len(seeds)
    datasets, accuracies = [], []
    for seed in seeds:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(torch_generator(seed, "reward_init").initial_seed())
            model = REWARD_MODELS[name](offline.obs_dim, offline.act_dim, cfg.hidden_dims).to(cfg.device)
        batches = numpy_generator(seed, "reward_batches")
        fit = train_reward_model(model, preferences, cfg.reward_steps, batches,
                                 batch_size=cfg.pref_batch_size, lr=cfg.reward_lr, subsample_length=0)
        model.eval()
        tail = max(1, len(fit.accuracy) // 10)
        datasets.append(relabelled(offline, model, context=preferences.segment_length))
        accuracies.append(float(fit.accuracy[-tail:].mean()))
    return datasets, accuracies
