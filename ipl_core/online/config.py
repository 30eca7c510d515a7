"""The configuration of an online run: one frozen dataclass of flat scalars, and per-task TOML files.

``configs/online/<task>.toml`` holds the settings of one task, each with its source (a ``[sources]``
entry per key: the paper section or the B-Pref script it comes from, or "assumed" where the papers are
silent). :func:`load_task_config` reads it into :class:`OnlineConfig` with clear errors; :func:`study_config`
applies a study cell's settings. The field names are the papermill parameters of the online experiment
notebooks (``book/experiments/online*.ipynb``). Taught in the chapter "PEBBLE and scripted teachers".
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ipl_core.config import check_device

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs" / "online"
ALGORITHMS = ("sac", "pebble", "surf", "mrn", "ipl", "ppo")
QUERY_SELECTIONS = ("uniform", "disagreement", "entropy")
MRN_OUTER_OPTIMIZERS = ("reward", "separate")


@dataclass(frozen=True)
class OnlineConfig:
    """Every setting of an online preference-based RL run (SAC, PEBBLE, SURF, MRN, IPL)."""

    # --- run ---
    algorithm: str = "pebble"
    """``sac`` (ground-truth reward), ``pebble``, ``surf``, ``mrn``, ``ipl`` or ``ppo`` (Preference PPO)."""
    task: str = "walker-walk"
    """Environment name understood by :func:`ipl_core.online.envs.make_env`."""
    seed: int = 0
    """Seed of the environment, the networks and every random draw."""
    total_steps: int = 1_000_000
    """Environment steps of the run."""
    episode_length: int = 0
    """Steps per episode; 0 keeps the suite's own (1000 DMC, 500 MetaWorld)."""
    device: str = "cpu"
    """Torch device of the networks, batches and reward computations: "cpu", "cuda" or "cuda:N" (the replay
    buffer, the random generators and the checkpoints stay on the CPU)."""
    # --- SAC (MRN Eq. 3-5) ---
    hidden_dim: int = 1024
    """Width of the actor and critic MLPs."""
    hidden_depth: int = 2
    """Hidden layers of the actor and critic MLPs."""
    batch_size: int = 1024
    """Transitions per SAC update."""
    gamma: float = 0.99
    """Discount factor."""
    actor_lr: float = 5e-4
    """Adam learning rate of the actor."""
    critic_lr: float = 5e-4
    """Adam learning rate of the critic (alpha in MRN Eq. 13)."""
    alpha_lr: float = 1e-4
    """Adam learning rate of the log-temperature."""
    init_temperature: float = 0.1
    """Initial entropy temperature alpha."""
    tau: float = 0.005
    """Polyak rate of the target critic."""
    target_update_interval: int = 2
    """Update the target critic every this many SAC updates."""
    log_std_min: float = -5.0
    """Lower bound of the actor's log standard deviation."""
    log_std_max: float = 2.0
    """Upper bound of the actor's log standard deviation."""
    replay_capacity: int = 1_000_000
    """Transitions the replay buffer holds before it overwrites the oldest."""
    # --- PEBBLE: exploration and unsupervised pre-training ---
    num_seed_steps: int = 1000
    """Steps with uniformly random actions at the start."""
    num_unsup_steps: int = 9000
    """Steps of unsupervised pre-training on the state-entropy reward after the random steps."""
    topk: int = 5
    """k of the k-nearest-neighbour state-entropy estimate."""
    reset_update: int = 100
    """SAC updates right after the critic is reset at the end of pre-training (B-Pref ``reset_update``)."""
    # --- PEBBLE: reward learning and queries ---
    segment_length: int = 50
    """Steps per queried segment."""
    ensemble_size: int = 3
    """Reward models in the ensemble (their mean is the reward)."""
    reward_hidden_dim: int = 256
    """Width of each reward MLP."""
    reward_hidden_depth: int = 3
    """Hidden layers of each reward MLP."""
    reward_lr: float = 3e-4
    """Adam learning rate of the reward ensemble."""
    reward_batch_size: int = 128
    """Labelled pairs per reward-model minibatch (B-Pref's hard-coded ``train_batch_size``)."""
    reward_max_epochs: int = 50
    """Most passes over the labelled pairs per feedback round of PEBBLE and MRN (B-Pref ``reward_update``)."""
    reward_acc_stop: float = 0.97
    """Stop reward training once the ensemble's mean training accuracy exceeds this."""
    query_selection: str = "disagreement"
    """How queries are chosen from the candidate pool: uniform, disagreement or entropy."""
    candidate_multiplier: int = 10
    """Candidate pool size as a multiple of the queries of a round."""
    query_episodes: int = 100
    """Query candidates come from the last this many finished episodes (B-Pref's ``max_size``); 0: the whole
    buffer."""
    feedback_budget: int = 100
    """Total preference labels of the run."""
    feedback_per_round: int = 10
    """Labels asked per feedback round."""
    feedback_interval: int = 20000
    """Environment steps between feedback rounds (the first comes right after pre-training)."""
    teacher: str = "oracle"
    """Scripted teacher, a key of ``ipl_core.teachers.TEACHERS``."""
    return_window: int = 10
    """Recent episodes whose mean return sets the teacher's threshold scale."""
    # --- MRN (MRN Eq. 6-12) ---
    mrn_interval: int = 1000
    """Environment steps between bi-level updates (N of MRN Sec. 5.1)."""
    mrn_inner_lr: float = 5e-4
    """Learning rate of the pseudo-update of the critic (alpha of MRN Eq. 10)."""
    mrn_outer_optimizer: str = "reward"
    """``reward``: the outer step uses the reward model's own Adam (lr ``reward_lr``, moments shared with
    supervised training), as the released code; ``separate``: its own Adam at ``mrn_outer_lr`` (MRN Eq. 12's
    separate rate beta)."""
    mrn_outer_lr: float = 3e-4
    """Adam learning rate beta of the outer update when ``mrn_outer_optimizer = "separate"`` (MRN Eq. 12)."""
    mrn_outer_weight: float = 0.1
    """Weight of the outer loss (the released code's ``outer_weight``; the MRN text has none, i.e. 1)."""
    mrn_outer_batch: int = 0
    """The most recent labelled pairs that score the pseudo-updated critic (MRN Eq. 7); 0: one round's
    worth, ``feedback_per_round``, as the released code."""
    mrn_outer_iters: int = 1
    """Outer updates per bi-level step."""
    # --- SURF ---
    surf_reward_epochs: int = 1000
    """SURF's ``reward_update``: each round trains a fixed ``ceil(surf_reward_epochs * labels /
    reward_batch_size)`` minibatch iterations (no accuracy stop)."""
    surf_tau: float = 0.95
    """Confidence above which an unlabelled pair receives a pseudo-label."""
    surf_lambda: float = 1.0
    """Weight of the semi-supervised loss."""
    surf_unlabelled_ratio: int = 10
    """Unlabelled pairs stored per labelled pair of a round."""
    surf_batch_ratio: int = 1
    """Unlabelled pairs per labelled pair in a reward minibatch (SURF's mu)."""
    surf_window: int = 5
    """SURF stores segments of segment_length + 2 surf_window steps; the teacher judges the central
    segment_length (the released code's ``dataaug_window``)."""
    surf_crop: int = 5
    """Temporal cropping: each pair's crop length is drawn in segment_length -+ surf_crop (``crop_range``)."""
    # --- IPL online (IPL Eq. 4-6) ---
    ipl_lambda: float = 0.5
    """Weight of the L2 regulariser on implicit rewards (lambda of IPL Eq. 6)."""
    ipl_pref_batch: int = 16
    """Labelled pairs per IPL critic update."""
    # --- Preference PPO ---
    ppo_rollout_steps: int = 16000
    """Environment steps per PPO rollout (B-Pref: 32 parallel envs x n_steps; one env here)."""
    ppo_epochs: int = 10
    """Passes over each rollout."""
    ppo_minibatch: int = 64
    """Transitions per PPO minibatch."""
    ppo_lr: float = 5e-5
    """Adam learning rate of the PPO policy and value networks."""
    ppo_clip: float = 0.4
    """Clipping range of the probability ratio."""
    ppo_gae_lambda: float = 0.92
    """lambda of generalised advantage estimation."""
    ppo_ent_coef: float = 0.0
    """Weight of the entropy bonus."""
    ppo_vf_coef: float = 0.5
    """Weight of the value loss."""
    ppo_max_grad_norm: float = 0.5
    """Gradient-norm clip of each PPO step."""
    ppo_hidden_dim: int = 256
    """Width of the PPO policy and value MLPs."""
    ppo_hidden_depth: int = 3
    """Hidden layers of the PPO policy and value MLPs."""
    # --- logging ---
    eval_interval: int = 10000
    """Environment steps between evaluations (deterministic actions)."""
    eval_episodes: int = 10
    """Episodes per evaluation."""
    log_interval: int = 1000
    """Environment steps between rows of the update-metrics table."""
    checkpoint_interval: int = 50000
    """Environment steps between checkpoints (0: never)."""

    def __post_init__(self) -> None:
        if self.algorithm not in ALGORITHMS:
            raise ValueError(f"OnlineConfig.algorithm must be one of {ALGORITHMS}, got {self.algorithm!r}")
        if self.query_selection not in QUERY_SELECTIONS:
            raise ValueError(
                f"OnlineConfig.query_selection must be one of {QUERY_SELECTIONS}, "
                f"got {self.query_selection!r}")
        if self.query_selection == "disagreement" and self.ensemble_size < 2:
            raise ValueError(
                f"OnlineConfig.query_selection='disagreement' ranks candidates by the spread of the reward "
                f"ensemble's predictions and needs ensemble_size >= 2, got {self.ensemble_size}; use "
                "query_selection='uniform' or 'entropy' with one model")
        from ipl_core.teachers import TEACHERS

        if self.teacher not in TEACHERS:
            raise ValueError(f"OnlineConfig.teacher must be one of {sorted(TEACHERS)}, got {self.teacher!r}")
        positive = ("total_steps", "hidden_dim", "hidden_depth", "batch_size", "target_update_interval",
                    "replay_capacity", "topk", "segment_length", "ensemble_size", "reward_hidden_dim",
                    "reward_hidden_depth", "reward_batch_size", "reward_max_epochs", "surf_reward_epochs",
                    "candidate_multiplier",
                    "feedback_per_round", "feedback_interval", "return_window", "mrn_interval",
                    "mrn_outer_iters", "surf_unlabelled_ratio", "surf_batch_ratio",
                    "ipl_pref_batch", "ppo_rollout_steps", "ppo_epochs", "ppo_minibatch", "ppo_hidden_dim",
                    "ppo_hidden_depth",
                    "eval_interval", "eval_episodes", "log_interval")
        for name in positive:
            if getattr(self, name) <= 0:
                raise ValueError(f"OnlineConfig.{name} must be positive, got {getattr(self, name)}")
        non_negative = ("episode_length", "num_seed_steps", "num_unsup_steps", "feedback_budget",
                        "checkpoint_interval", "surf_lambda", "ipl_lambda", "ppo_ent_coef", "ppo_vf_coef",
                        "reset_update", "query_episodes", "surf_window", "mrn_outer_weight",
                        "mrn_outer_batch")
        for name in non_negative:
            if getattr(self, name) < 0:
                raise ValueError(f"OnlineConfig.{name} must be >= 0, got {getattr(self, name)}")
        for name in ("gamma", "tau", "reward_acc_stop", "surf_tau", "ppo_gae_lambda"):
            if not 0 < getattr(self, name) <= 1:
                raise ValueError(f"OnlineConfig.{name} must lie in (0, 1], got {getattr(self, name)}")
        for name in ("actor_lr", "critic_lr", "alpha_lr", "init_temperature", "reward_lr", "mrn_inner_lr",
                     "mrn_outer_lr", "ppo_lr", "ppo_clip", "ppo_max_grad_norm"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"OnlineConfig.{name} must be finite and positive, got {value}")
        if self.log_std_min >= self.log_std_max:
            raise ValueError(
                f"OnlineConfig.log_std_min ({self.log_std_min}) must be below "
                f"log_std_max ({self.log_std_max})")
        if self.mrn_outer_optimizer not in MRN_OUTER_OPTIMIZERS:
            raise ValueError(f"OnlineConfig.mrn_outer_optimizer must be one of {MRN_OUTER_OPTIMIZERS}, "
                             f"got {self.mrn_outer_optimizer!r}")
        if not 0 <= self.surf_crop < self.segment_length or self.surf_crop > 2 * self.surf_window:
            raise ValueError(
                "OnlineConfig.surf_crop must lie in [0, segment_length) and be at most 2 * surf_window "
                f"(crops must fit in the stored segment), got surf_crop={self.surf_crop}, "
                f"segment_length={self.segment_length}, surf_window={self.surf_window}")
        check_device(self.device, "OnlineConfig.device")
        if self.algorithm != "sac" and self.feedback_budget < self.feedback_per_round:
            raise ValueError(f"OnlineConfig.feedback_budget ({self.feedback_budget}) is smaller than one "
                             f"feedback round (feedback_per_round = {self.feedback_per_round}); "
                             f"{self.algorithm} needs at least one round of labels")
        if self.algorithm != "sac" and self.feedback_rounds * self.feedback_per_round < self.feedback_budget:
            raise ValueError(
                f"OnlineConfig: feedback_budget = {self.feedback_budget} labels do not fit in the rounds "
                f"that reach the policy: {self.feedback_rounds} rounds (from step learning_starts = "
                f"{self.learning_starts} every feedback_interval = {self.feedback_interval}, before "
                f"total_steps = {self.total_steps}) of feedback_per_round = {self.feedback_per_round}; "
                "ask more per round, more often, or fewer labels")
        if self.replay_capacity < self.segment_length:
            raise ValueError("OnlineConfig.replay_capacity must hold at least one segment "
                             f"({self.segment_length} steps), got {self.replay_capacity}")

    @property
    def learning_starts(self) -> int:
        """First step whose reward comes from the learned model (after random and unsupervised steps)."""
        return self.num_seed_steps + self.num_unsup_steps

    @property
    def feedback_rounds(self) -> int:
        """Feedback rounds whose labels reach the policy: those at ``learning_starts + k feedback_interval``
        strictly before ``total_steps`` (a round on the last step would train a reward no update reads)."""
        if self.total_steps <= self.learning_starts:
            return 0
        return 1 + (self.total_steps - 1 - self.learning_starts) // self.feedback_interval


FIELD_TYPES: dict[str, type] = {f.name: type(f.default) for f in dataclasses.fields(OnlineConfig)}


def _check_value(name: str, value: Any, where: str) -> Any:
    if name not in FIELD_TYPES:
        raise KeyError(f"{where}: unknown setting {name!r}; known settings: {sorted(FIELD_TYPES)}")
    expected = FIELD_TYPES[name]
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if type(value) is not expected:
        raise TypeError(f"{where}: setting {name!r} must be {expected.__name__}, got {value!r} "
                        f"({type(value).__name__})")
    return value


def task_config_path(task: str, config_dir: Path = CONFIG_DIR) -> Path:
    """``configs/online/<task>.toml``; FileNotFoundError lists the tasks that have a file."""
    path = Path(config_dir) / f"{task}.toml"
    if not path.is_file():
        known = sorted(p.stem for p in Path(config_dir).glob("*.toml"))
        raise FileNotFoundError(f"no online config for task {task!r} at {path}; known tasks: {known}")
    return path


def load_task_config(task_or_path: str | Path, config_dir: Path = CONFIG_DIR,
                     **overrides: Any) -> OnlineConfig:
    """Read a task's TOML (``[settings]`` with a ``[sources]`` entry for each key) and apply ``overrides``.

    Errors name the file and the offending key: unknown keys, wrong types, settings without a source.
    """
    path = Path(task_or_path)
    if path.suffix != ".toml":
        path = task_config_path(str(task_or_path), config_dir)
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"{path}: not valid TOML ({error})") from error
    unknown_tables = set(raw) - {"settings", "sources"}
    if unknown_tables or "settings" not in raw or "sources" not in raw:
        raise ValueError(f"{path}: expected exactly the tables [settings] and [sources], got {sorted(raw)}")
    settings, sources = raw["settings"], raw["sources"]
    missing = sorted(set(settings) - set(sources))
    if missing:
        raise ValueError(f"{path}: settings without a [sources] entry: {missing}")
    orphan = sorted(set(sources) - set(settings))
    if orphan:
        raise ValueError(f"{path}: [sources] entries without a setting: {orphan}")
    values = {name: _check_value(name, value, str(path)) for name, value in settings.items()}
    values.update({name: _check_value(name, value, "overrides") for name, value in overrides.items()})
    return OnlineConfig(**values)


def config_sources(task_or_path: str | Path, config_dir: Path = CONFIG_DIR) -> dict[str, str]:
    """The ``[sources]`` table of a task's TOML: where each number comes from."""
    path = Path(task_or_path)
    if path.suffix != ".toml":
        path = task_config_path(str(task_or_path), config_dir)
    return dict(tomllib.loads(path.read_text())["sources"])


def study_config(task: str, **settings: Any) -> OnlineConfig:
    """The configuration of one cell of an online study (``ipl_core.experiments.studies``, notebooks
    ``book/experiments/online*.ipynb``): the task's TOML with ``settings`` applied, where ``None`` keeps
    the TOML's value. ``feedback_per_round=None`` also enlarges the rounds where the task's schedule could not
    spend ``feedback_budget`` before ``total_steps`` (as for MRN Fig. 4's larger budgets)."""
    given = {name: value for name, value in settings.items() if value is not None}
    if "feedback_per_round" not in settings or settings["feedback_per_round"] is not None:
        return load_task_config(task, **given)
    path = Path(task) if Path(task).suffix == ".toml" else task_config_path(task)
    in_file = tomllib.loads(path.read_text())["settings"]
    budget = given.get("feedback_budget", in_file.get("feedback_budget", OnlineConfig.feedback_budget))
    per_round = in_file.get("feedback_per_round", OnlineConfig.feedback_per_round)
    # the rounds that reach the policy depend on the schedule only, not on their size
    rounds = max(1, load_task_config(path, **{**given, "feedback_budget": 1, "feedback_per_round": 1})
                 .feedback_rounds)
    return load_task_config(path, **given, feedback_per_round=max(per_round, math.ceil(budget / rounds)))
