"""The two containers every trainer reads: transitions without reward, and labelled segment pairs.

Both hold numpy arrays, validate themselves on construction, and name the field that is wrong.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

VALID_LABELS = (0.0, 0.5, 1.0)
"""The labels a PreferenceDataset holds: P[segment 1 preferred] (the loaders map a PT tie label, -1, to
0.5)."""


def _check_finite(name: str, array: np.ndarray, source: str) -> None:
    if np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
        bad = int((~np.isfinite(array)).sum())
        raise ValueError(f"{source}: field {name!r} holds {bad} NaN or infinite values; expected finite")


@dataclass(frozen=True)
class OfflineDataset:
    """Transitions (s, a, r, s', terminal, timeout) in D4RL's flat layout, one row per step.

    ``rewards`` hold the ground truth where it is known (for the oracle and for labelling); preference
    learners never read them. ``timeouts`` mark the last step of an episode cut by a time limit (not a
    terminal: bootstrapping continues through it).
    """

    observations: np.ndarray
    actions: np.ndarray
    next_observations: np.ndarray
    rewards: np.ndarray
    terminals: np.ndarray
    timeouts: np.ndarray
    source: str = "<memory>"

    def __post_init__(self) -> None:
        n = len(self.observations)
        if n == 0:
            raise ValueError(f"{self.source}: the dataset is empty; expected at least one transition")
        for name, ndim in (("observations", 2), ("actions", 2), ("next_observations", 2), ("rewards", 1),
                           ("terminals", 1), ("timeouts", 1)):
            array = getattr(self, name)
            if array.ndim != ndim or len(array) != n:
                raise ValueError(
                    f"{self.source}: field {name!r} has shape {array.shape}; "
                    f"expected {ndim} dims with {n} rows (the length of 'observations')"
                )
            _check_finite(name, array, self.source)
        if self.next_observations.shape != self.observations.shape:
            raise ValueError(
                f"{self.source}: 'next_observations' has shape {self.next_observations.shape}; expected "
                f"{self.observations.shape} like 'observations'"
            )

    def __len__(self) -> int:
        return len(self.observations)

    @property
    def obs_dim(self) -> int:
        return int(self.observations.shape[1])

    @property
    def act_dim(self) -> int:
        return int(self.actions.shape[1])

    def episode_ends(self) -> np.ndarray:
        """Boolean mask of the steps that end an episode (terminal or timeout)."""
        return self.terminals.astype(bool) | self.timeouts.astype(bool)


@dataclass(frozen=True)
class PreferenceDataset:
    """Labelled pairs of segments: ``obs_i`` (N, S, obs_dim), ``action_i`` (N, S, act_dim), ``label`` (N,).

    ``label`` is the probability that segment 1 is preferred (1, 0, or 0.5 for equal). A segment of S
    observations gives S - 1 transitions (s_t, a_t, s_{t+1}). ``reward_i`` (N, S) and ``terminal_i`` (N, S)
    hold the ground truth where it is known, else None.
    """

    obs_1: np.ndarray
    obs_2: np.ndarray
    action_1: np.ndarray
    action_2: np.ndarray
    label: np.ndarray
    reward_1: np.ndarray | None = None
    reward_2: np.ndarray | None = None
    terminal_1: np.ndarray | None = None
    terminal_2: np.ndarray | None = None
    source: str = "<memory>"

    def __post_init__(self) -> None:
        n = len(self.label)
        if n == 0:
            raise ValueError(f"{self.source}: no preference pairs; expected at least one")
        if self.label.ndim != 1:
            raise ValueError(f"{self.source}: field 'label' has shape {self.label.shape}; expected (N,)")
        if self.obs_1.ndim != 3:
            raise ValueError(
                f"{self.source}: field 'obs_1' has shape {self.obs_1.shape}; expected (N, S, obs_dim)"
            )
        s = self.obs_1.shape[1]
        expected = {"obs_1": self.obs_1.shape, "obs_2": self.obs_1.shape,
                    "action_1": (n, s, self.action_1.shape[-1]), "action_2": (n, s, self.action_1.shape[-1]),
                    "reward_1": (n, s), "reward_2": (n, s), "terminal_1": (n, s), "terminal_2": (n, s)}
        for field in fields(self):
            array = getattr(self, field.name)
            if field.name in ("label", "source") or array is None:
                continue
            if array.shape != expected[field.name]:
                raise ValueError(
                    f"{self.source}: field {field.name!r} has shape {array.shape}; "
                    f"expected {expected[field.name]}"
                )
            _check_finite(field.name, array, self.source)
            if field.name.startswith("terminal") and not np.isin(array, (0, 1)).all():
                raise ValueError(f"{self.source}: field {field.name!r} holds values other than 0 and 1; "
                                 "expected terminal flags")
        _check_finite("label", self.label, self.source)
        bad = ~np.isin(self.label, VALID_LABELS)
        if bad.any():
            raise ValueError(
                f"{self.source}: field 'label' holds {sorted(set(self.label[bad].tolist()))[:5]}; "
                f"expected values in {{0, 0.5, 1}} (P[segment 1 preferred]; a PT tie label -1 maps to 0.5)"
            )

    def __len__(self) -> int:
        return len(self.label)

    @property
    def segment_length(self) -> int:
        """Observations per segment, S."""
        return int(self.obs_1.shape[1])

    @property
    def obs_dim(self) -> int:
        return int(self.obs_1.shape[2])

    @property
    def act_dim(self) -> int:
        return int(self.action_1.shape[2])

    def transitions(self) -> OfflineDataset:
        """The transitions (s_t, a_t, s_{t+1}) inside both segments of every pair, as an offline dataset.

        IPL Section 4.3 trains its MetaWorld data-scaling runs on the preference data alone,
        D_o = {(s, a, s') in D_p}: S observations give S - 1 transitions per segment. The last transition
        of each segment is marked as a time-out (the segment ends there; nothing follows it in D_o).
        Rewards are the ground truth where known and NaN-free zeros otherwise.
        """
        obs = np.concatenate([self.obs_1, self.obs_2])
        act = np.concatenate([self.action_1, self.action_2])
        n, s = obs.shape[0], obs.shape[1] - 1
        if self.reward_1 is not None and self.reward_2 is not None:
            reward = np.concatenate([self.reward_1, self.reward_2])[:, :-1]
        else:
            reward = np.zeros((n, s), dtype=np.float32)
        if self.terminal_1 is not None and self.terminal_2 is not None:
            terminal = np.concatenate([self.terminal_1, self.terminal_2])[:, :-1]
        else:
            terminal = np.zeros((n, s), dtype=np.float32)
        timeout = np.zeros((n, s), dtype=np.float32)
        timeout[:, -1] = 1.0
        return OfflineDataset(
            observations=obs[:, :-1].reshape(n * s, -1),
            actions=act[:, :-1].reshape(n * s, -1),
            next_observations=obs[:, 1:].reshape(n * s, -1),
            rewards=reward.reshape(-1),
            terminals=terminal.reshape(-1),
            timeouts=timeout.reshape(-1),
            source=f"transitions of {self.source}",
        )

