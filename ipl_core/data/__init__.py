"""The data layer: offline datasets, preference datasets, loaders, teachers and generators.

Taught in the appendix "Datasets and how they are made" (book/appendix/datasets.ipynb).
"""

from ipl_core.data.d4rl import QLearningView, load_d4rl_hdf5, qlearning_dataset, write_d4rl_hdf5
from ipl_core.data.datasets import OfflineDataset, PreferenceDataset
from ipl_core.data.errors import DataFormatError
from ipl_core.data.labels import load_labels
from ipl_core.data.native import load_preferences, save_preferences
from ipl_core.data.pt_labels import load_pt_human_labels
from ipl_core.data.robomimic import load_robomimic_hdf5
from ipl_core.data.segments import (
    episode_returns,
    gather_segments,
    make_preference_dataset,
    valid_segment_starts,
)
from ipl_core.data.store import data_root

__all__ = [
    "DataFormatError",
    "OfflineDataset",
    "PreferenceDataset",
    "QLearningView",
    "data_root",
    "episode_returns",
    "gather_segments",
    "load_d4rl_hdf5",
    "load_labels",
    "load_preferences",
    "load_pt_human_labels",
    "load_robomimic_hdf5",
    "make_preference_dataset",
    "qlearning_dataset",
    "save_preferences",
    "valid_segment_starts",
    "write_d4rl_hdf5",
]
