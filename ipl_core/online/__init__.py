"""Online preference-based RL: SAC, PEBBLE, SURF, Meta-Reward-Net and IPL online.

Taught in Part IV of the book (book/online/). The modules: ``envs`` (DeepMind Control, MetaWorld 3.x and
gymnasium behind one API), ``replay``, ``sac``, ``pebble``, ``surf``, ``mrn``, ``ipl_online``, ``config``
(the frozen configuration and the per-task TOML loader), ``train`` (the shared training loop) and
``locomotion_data`` (D4RL-style datasets made with SAC).
"""

from ipl_core.online.config import OnlineConfig, load_task_config
from ipl_core.online.envs import make_env
from ipl_core.online.train import OnlineRun, train_online

__all__ = ["OnlineConfig", "OnlineRun", "load_task_config", "make_env", "train_online"]
