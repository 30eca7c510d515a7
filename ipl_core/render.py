"""Segments of the offline datasets as short looping videos, rendered headlessly for a person to judge.

A segment is drawn by putting MuJoCo's state (``qpos``, ``qvel`` and, for MetaWorld's hand, the mocap
pose) at each of its rows and rendering one small frame per step with MuJoCo's offscreen renderer
(``MUJOCO_GL=egl`` on a machine without a display). Where that state comes from depends on the dataset:

* **MetaWorld** (:mod:`ipl_core.data.metaworld_gen`): the 39-d observation does not hold the arm's joints,
  so :func:`metaworld_physics` runs the generator again (it is deterministic) and keeps MuJoCo's state before
  every step. The episodes are checked against the stored observations and refused when they differ.
  The states go to ``physics.npz`` beside ``offline.hdf5``, with a manifest; keys ``qpos`` (N, nq),
  ``qvel`` (N, nv), ``mocap_pos`` (N, nmocap, 3), ``mocap_quat`` (N, nmocap, 4) and ``episode`` (N,),
  row for row with the offline file, and per episode the model's ``body_pos`` (E, nbody, 3),
  ``body_quat`` (E, nbody, 4) and ``site_pos`` (E, nsite, 3), which MetaWorld's resets change (where
  the drawer stands, the goal marker).
* **Locomotion** (Hopper-v5, Walker2d-v5 data of :mod:`ipl_core.online.locomotion_data`): the observation
  is ``qpos[1:]`` and ``qvel`` (clipped to [-10, 10]); :func:`locomotion_physics` reads them back and
  integrates the forward position ``qpos[0]``, which the observation leaves out, from the forward velocity.

A pair is one video, segment 1 on the left and segment 2 on the right, so both loop in step
(:func:`write_pair_clip`; H.264 in MP4 through ``imageio`` and the ffmpeg of ``imageio-ffmpeg``). Taught in
the appendix "Be the teacher" (book/appendix/be_the_teacher.ipynb).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ipl_core.data.d4rl import load_d4rl_hdf5
from ipl_core.data.datasets import OfflineDataset
from ipl_core.data.store import cached, sha256_file
from ipl_core.io import atomic_write

FRAME_SIZE = 128
"""Height and width of one segment's frames in pixels: small, so that a pair renders in about a second."""

REPLAY_TOLERANCE = 1e-4
"""Largest difference between a replayed and a stored MetaWorld observation before replay is refused."""

LOCOMOTION_ENVS = {"hopper": "Hopper-v5", "walker2d": "Walker2d-v5"}
"""The gymnasium tasks the locomotion datasets come from."""


@dataclass(frozen=True)
class PhysicsStates:
    """MuJoCo's state at every row of an offline dataset: enough to draw any of its segments."""

    qpos: np.ndarray
    """(N, nq) joint positions."""
    qvel: np.ndarray
    """(N, nv) joint velocities."""
    mocap_pos: np.ndarray | None = None
    """(N, nmocap, 3) positions of mocap bodies (MetaWorld's hand target), else None."""
    mocap_quat: np.ndarray | None = None
    """(N, nmocap, 4) orientations of mocap bodies, else None."""
    episode: np.ndarray | None = None
    """(N,) the episode of each row, indexing the three arrays below; None when the model never changes."""
    body_pos: np.ndarray | None = None
    """(E, nbody, 3) body positions of the model in each episode (MetaWorld moves objects at reset)."""
    body_quat: np.ndarray | None = None
    """(E, nbody, 4) body orientations of the model in each episode."""
    site_pos: np.ndarray | None = None
    """(E, nsite, 3) site positions in each episode (MetaWorld's goal markers)."""

    def __len__(self) -> int:
        return len(self.qpos)


@dataclass(frozen=True)
class Camera:
    """A free camera: where it looks, from how far, from which direction; ``track`` follows a body."""

    lookat: tuple[float, float, float]
    distance: float
    azimuth: float
    elevation: float
    track: str | None = None
    """Name of a body whose position replaces ``lookat`` at every frame (locomotion's torso)."""


METAWORLD_CAMERA = Camera(lookat=(0.0, 0.65, 0.12), distance=1.6, azimuth=145.0, elevation=-30.0)
LOCOMOTION_CAMERA = Camera(lookat=(0.0, 0.0, 0.9), distance=2.6, azimuth=90.0, elevation=-10.0, track="torso")


# ---------------------------------------------------------------------------------------------- states


def metaworld_physics(recipe: Any, root: str | Path | None = None) -> Path:
    """Make (or re-use) ``physics.npz`` beside the offline file of ``recipe`` by replaying its episodes.

    ``recipe`` is a :class:`~ipl_core.data.metaworld_gen.MetaWorldRecipe`; its datasets are generated (or
    re-used) first. Raises RuntimeError naming the source file when the episodes run again differ from the
    stored observations by more than :data:`REPLAY_TOLERANCE`.
    """
    from ipl_core.data.metaworld_gen import generate_metaworld

    files = generate_metaworld(recipe, root=root, progress=False)
    path = files.offline.with_name("physics.npz")
    params = {"task": recipe.task, "offline_sha256": sha256_file(files.offline)}

    def build(tmp: Path) -> None:
        states = _replay_metaworld(recipe, files.sources)
        arrays = {key: value for key, value in vars(states).items() if value is not None}
        with open(tmp, "wb") as handle:
            np.savez(handle, **arrays)

    cached(path, "ipl_core.render/metaworld_physics", params, recipe.seed, build)
    return path


def _replay_metaworld(recipe: Any, sources: dict[str, Path]) -> PhysicsStates:
    from ipl_core.data.metaworld_gen import SOURCES, collect_source

    rows: list[tuple[np.ndarray, ...]] = []
    layout: list[tuple[np.ndarray, ...]] = []
    episodes: list[int] = []

    def record(env: Any) -> None:
        model, data = env.unwrapped.model, env.unwrapped.data
        if env.unwrapped.curr_path_length == 0:  # a new episode: its reset may have moved objects
            layout.append((model.body_pos.copy(), model.body_quat.copy(), model.site_pos.copy()))
        rows.append((data.qpos.copy(), data.qvel.copy(), data.mocap_pos.copy(), data.mocap_quat.copy()))
        episodes.append(len(layout) - 1)

    for source in SOURCES:
        stored = load_d4rl_hdf5(sources[source])
        first = len(rows)
        again, _ = collect_source(recipe, source, progress=False, record=record)
        drift = float(np.abs(again.observations - stored.observations).max())
        if len(again) != len(stored) or drift > REPLAY_TOLERANCE or len(rows) - first != len(stored):
            raise RuntimeError(
                f"{sources[source]}: the replayed episodes differ from the stored ones (max difference "
                f"{drift:.2e}, {len(again)} rows against {len(stored)}); expected at most {REPLAY_TOLERANCE} "
                f"(was the file made with other versions of mujoco or metaworld?)")
    qpos, qvel, mocap_pos, mocap_quat = (np.asarray(part) for part in zip(*rows, strict=True))
    body_pos, body_quat, site_pos = (np.asarray(part) for part in zip(*layout, strict=True))
    return PhysicsStates(qpos, qvel, mocap_pos, mocap_quat, np.asarray(episodes), body_pos, body_quat,
                         site_pos)


def load_physics(path: str | Path) -> PhysicsStates:
    """Read a ``physics.npz`` written by :func:`metaworld_physics`."""
    with np.load(path, allow_pickle=False) as archive:
        return PhysicsStates(**{key: archive[key] for key in archive.files})


def locomotion_physics(offline: OfflineDataset, task: str) -> PhysicsStates:
    """The state at every row of a Hopper or Walker2d dataset, read back from its observations.

    ``qpos[1:]`` and ``qvel`` are the observation; ``qpos[0]``, the forward position, is integrated within
    each episode from the forward velocity ``qvel[0]`` (the observation clips velocities to [-10, 10]).
    """
    import gymnasium as gym

    if task not in LOCOMOTION_ENVS:
        raise KeyError(f"unknown locomotion task {task!r}; expected one of {sorted(LOCOMOTION_ENVS)}")
    model = gym.make(LOCOMOTION_ENVS[task]).unwrapped.model
    nq, nv = model.nq, model.nv
    if offline.obs_dim != nq - 1 + nv:
        raise ValueError(f"{offline.source}: observations have {offline.obs_dim} dims; {task} expects "
                         f"{nq - 1 + nv} (qpos without x, then qvel)")
    dt = float(model.opt.timestep) * _frame_skip(task)
    qvel = offline.observations[:, nq - 1:].astype(np.float64)
    step_x = qvel[:, 0] * dt
    ends = offline.episode_ends()
    x = np.zeros(len(offline))
    for t in range(1, len(offline)):
        x[t] = 0.0 if ends[t - 1] else x[t - 1] + step_x[t - 1]
    qpos = np.concatenate([x[:, None], offline.observations[:, : nq - 1]], axis=1)
    return PhysicsStates(qpos=qpos, qvel=qvel)


def _frame_skip(task: str) -> int:
    import gymnasium as gym

    return int(gym.make(LOCOMOTION_ENVS[task]).unwrapped.frame_skip)


# ---------------------------------------------------------------------------------------------- frames


class FrameRenderer:
    """Draws rows of :class:`PhysicsStates` of one MuJoCo model from one :class:`Camera`, ``size`` pixels.

    Shadows, reflections, the skybox and multisampling are off: at this size they add little and cost most
    of the time (with Mesa's software EGL, multisampling alone triples it). The renderer changes ``model``
    (its per-episode layout, its multisampling): give it a model of its own.
    """

    def __init__(self, model: Any, camera: Camera, size: int = FRAME_SIZE) -> None:
        import mujoco

        model.vis.quality.offsamples = 0
        self.mujoco, self.model, self.camera = mujoco, model, camera
        self.data = mujoco.MjData(model)
        self.renderer = mujoco.Renderer(model, size, size)
        self.view = mujoco.MjvCamera()
        self.view.type = mujoco.mjtCamera.mjCAMERA_FREE
        self.view.lookat[:], self.view.distance = camera.lookat, camera.distance
        self.view.azimuth, self.view.elevation = camera.azimuth, camera.elevation

    def frames(self, states: PhysicsStates, rows: np.ndarray) -> np.ndarray:
        """(len(rows), size, size, 3) uint8 frames, one per row."""
        mj, data, out = self.mujoco, self.data, []
        for row in np.asarray(rows):
            data.qpos[:], data.qvel[:] = states.qpos[row], states.qvel[row]
            if states.mocap_pos is not None and states.mocap_quat is not None:
                data.mocap_pos[:], data.mocap_quat[:] = states.mocap_pos[row], states.mocap_quat[row]
            if states.episode is not None:
                episode = states.episode[row]
                for target, source in ((self.model.body_pos, states.body_pos),
                                       (self.model.body_quat, states.body_quat),
                                       (self.model.site_pos, states.site_pos)):
                    if source is not None:
                        target[:] = source[episode]
            mj.mj_forward(self.model, data)
            if self.camera.track is not None:
                self.view.lookat[:] = data.body(self.camera.track).xpos
                self.view.lookat[2] = self.camera.lookat[2]
            self.renderer.update_scene(data, camera=self.view)
            flags = mj.mjtRndFlag
            for flag in (flags.mjRND_SHADOW, flags.mjRND_REFLECTION, flags.mjRND_SKYBOX):
                self.renderer.scene.flags[flag] = False
            out.append(self.renderer.render().copy())
        return np.asarray(out)

    def close(self) -> None:
        self.renderer.close()


def pair_frames(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Two segments' frames side by side, with a 2-pixel white line between them: (T, H, 2 W, 3)."""
    if left.shape != right.shape:
        raise ValueError(f"both segments need the same frames; got {left.shape} and {right.shape}")
    both = np.concatenate([left, right], axis=2)
    width = left.shape[2]
    both[:, :, width - 1 : width + 1] = 255
    return both


def write_pair_clip(path: str | Path, frames: np.ndarray, fps: int) -> Path:
    """Encode ``frames`` (T, H, W, 3) uint8 as an H.264 MP4 (yuv420p, plays in every browser), atomically."""
    import imageio.v3 as iio

    def write(tmp: Path) -> None:
        iio.imwrite(tmp, frames, extension=".mp4", plugin="FFMPEG", fps=fps, codec="libx264",
                    pixelformat="yuv420p", macro_block_size=16,
                    output_params=["-movflags", "+faststart", "-f", "mp4"])

    return atomic_write(path, write)


def metaworld_model(task: str) -> Any:
    """The MuJoCo model of a MetaWorld task (the same for every goal)."""
    from ipl_core.data.metaworld_gen import make_metaworld_env

    return make_metaworld_env(task, 0).unwrapped.model


def locomotion_model(task: str) -> Any:
    """The MuJoCo model of a locomotion task."""
    import gymnasium as gym

    return gym.make(LOCOMOTION_ENVS[task]).unwrapped.model
