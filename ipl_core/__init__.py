"""ipl_core: preference-based reinforcement learning without a reward function.

The library of the ipl-book. Every algorithm of the book is implemented here once; the chapters import it.
"""

import re
import sys

SUPPORTED_PYTHON = ">=3.11"
"""The Pythons ipl_core runs on: pyproject.toml's ``requires-python`` (tests/test_install.py)."""
SUPPORTED_TORCH = ">=2.11,<3"
"""The torches ipl_core runs with: pyproject.toml's range (tests/test_install.py)."""


def _major_minor(version: str) -> tuple[int, int]:
    match = re.match(r"(\d+)(?:\.(\d+))?", version)
    return (int(match.group(1)), int(match.group(2) or 0)) if match else (0, 0)


def check_version(name: str, found: str, supported: str) -> None:
    """Raise ImportError in one line, naming the version found and the range supported, when ``found``
    (e.g. ``"2.11.0+cu130"``) is outside ``supported`` (``">=A.B"`` or ``">=A.B,<C"``, major.minor only)."""
    bounds = dict(re.findall(r"(>=|<)\s*([\d.]+)", supported))
    version = _major_minor(found)
    if version < _major_minor(bounds[">="]) or ("<" in bounds and version >= _major_minor(bounds["<"])):
        raise ImportError(f"ipl_core needs {name} {supported}; found {name} {found}")


check_version("Python", ".".join(map(str, sys.version_info[:3])), SUPPORTED_PYTHON)  # before torch: an old
import torch  # Python may have none

check_version("torch", str(torch.__version__), SUPPORTED_TORCH)

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
