"""Build and step every simulator the book's device checks use, from wherever they are installed, and
render one frame through MuJoCo's EGL backend.

    MUJOCO_GL=egl python3 benchmarks/device/envs_check.py [--steps 200] [--out envs.json]

Each task of ``TASKS`` is built with ``ipl_core.online.envs.make_env`` (the path the book takes) and
stepped with random actions; the report holds each package's version and location, each task's
observation and action sizes and steps per second, and whether rendering worked. Exits non-zero if
anything failed, after trying everything.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
import traceback
from importlib import metadata
from pathlib import Path
from typing import Any

os.environ.setdefault("MUJOCO_GL", "egl")

TASKS = ("walker-walk", "cheetah-run", "quadruped-walk", "drawer-open-v3", "button-press-v3", "gym:Hopper-v5",
         "gym:Walker2d-v5")
"""The dm_control, MetaWorld and gymnasium MuJoCo tasks of the book's chapters and device checks."""
PACKAGES = {"gymnasium": "gymnasium", "mujoco": "mujoco", "metaworld": "metaworld",
            "dm_control": "dm-control", "dm_env": "dm-env", "tree": "dm-tree", "OpenGL": "PyOpenGL",
            "glfw": "glfw"}
"""Module: distribution, of every package the bundle carries."""


def package(module_name: str, distribution: str) -> dict[str, Any]:
    """Version and location of the installed module ``module_name`` of ``distribution``."""
    module = importlib.import_module(module_name)
    return {"version": metadata.version(distribution), "path": str(Path(module.__file__ or "?").parent)}


def step_task(task: str, steps: int) -> dict[str, Any]:
    """Observation and action sizes of ``task`` and its random-action steps per second (resets counted)."""
    import numpy as np

    from ipl_core.online.envs import make_env

    env = make_env(task, seed=0)
    rng = np.random.default_rng(0)
    obs, _ = env.reset(seed=0)
    start = time.perf_counter()
    for _ in range(steps):
        obs, reward, terminated, truncated, _ = env.step(rng.uniform(-1, 1, env.action_space.shape))
        if terminated or truncated:
            obs, _ = env.reset()
    seconds = time.perf_counter() - start
    if not np.isfinite(obs).all() or not np.isfinite(reward):
        raise ValueError(f"{task}: non-finite observation or reward")
    return {"obs_dim": int(np.prod(obs.shape)), "act_dim": int(np.prod(env.action_space.shape)),
            "steps_per_s": steps / seconds}


def render() -> dict[str, Any]:
    """One 64x64 frame of dm_control's walker through ``MUJOCO_GL`` (egl): its mean pixel value."""
    from dm_control import suite

    env = suite.load("walker", "walk", task_kwargs={"random": 0})
    env.reset()
    frame = env.physics.render(height=64, width=64, camera_id=0)
    return {"backend": os.environ["MUJOCO_GL"], "shape": list(frame.shape), "mean_pixel": float(frame.mean())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200, help="random-action steps per task")
    parser.add_argument("--out", type=Path, default=None, help="JSON report (default: print only)")
    args = parser.parse_args()
    report: dict[str, Any] = {"python": sys.version.split()[0], "packages": {}, "tasks": {}, "errors": {}}
    checks = [(f"import {m}", "packages", m, lambda m=m, d=d: package(m, d)) for m, d in PACKAGES.items()]
    checks += [(task, "tasks", task, lambda t=task: step_task(t, args.steps)) for task in TASKS]
    checks.append(("render", "render", None, render))
    for label, section, key, check in checks:
        try:
            result = check()
        except Exception:
            report["errors"][label] = traceback.format_exc(limit=3)
            print(f"FAILED {label}:\n{report['errors'][label]}", flush=True)
            continue
        if key is None:
            report[section] = result
        else:
            report[section][key] = result
        print(f"ok {label}: {result}", flush=True)
    if args.out is not None:
        args.out.write_text(json.dumps(report, indent=1))
    if report["errors"]:
        raise SystemExit(f"{len(report['errors'])} check(s) failed: {', '.join(report['errors'])}")


if __name__ == "__main__":
    main()
