"""ipl_core: preference-based reinforcement learning without a reward function.

The library of the ipl-book. Every algorithm of the book is implemented here once; the chapters import it.
"""

from ipl_core.agents import Agent, make_agent
from ipl_core.bandit import dpo_loss
from ipl_core.config import OfflineConfig, preset
from ipl_core.losses import (
    BCLoss,
    CPLLoss,
    IPLLoss,
    awr_weights,
    bc_loss,
    cpl_loss,
    expectile_loss,
    implicit_reward,
    ipl_preference_loss,
    linex_loss,
)
from ipl_core.policy import Policy, load_policy, save_policy
from ipl_core.preferences import (
    PreferenceLoss,
    fit_linear_reward,
    plackett_luce_loss,
    preference_loss,
    preference_probability,
    sample_bradley_terry_labels,
    segment_return,
)
from ipl_core.reward_models import REWARD_MODELS, relabelled, train_reward_model
from ipl_core.teachers import TEACHERS, RegretTeacher, ScriptedTeacher, TeacherLabels
from ipl_core.trainer import GymEvaluator, TrainResult, train, train_seeds

__all__ = [
    "REWARD_MODELS",
    "TEACHERS",
    "Agent",
    "BCLoss",
    "CPLLoss",
    "GymEvaluator",
    "IPLLoss",
    "OfflineConfig",
    "Policy",
    "PreferenceLoss",
    "RegretTeacher",
    "ScriptedTeacher",
    "TeacherLabels",
    "TrainResult",
    "awr_weights",
    "bc_loss",
    "cpl_loss",
    "dpo_loss",
    "expectile_loss",
    "fit_linear_reward",
    "implicit_reward",
    "ipl_preference_loss",
    "linex_loss",
    "load_policy",
    "make_agent",
    "plackett_luce_loss",
    "preference_loss",
    "preference_probability",
    "preset",
    "relabelled",
    "sample_bradley_terry_labels",
    "save_policy",
    "segment_return",
    "train",
    "train_reward_model",
    "train_seeds",
]

__version__ = "0.1.0"
