"""Be the teacher: make a query set from an offline dataset, label it yourself, and keep every answer.

:func:`make_query_set` draws pairs of segments (as :func:`~ipl_core.data.segments.make_preference_dataset`
does, IPL App. B.3), renders one clip per pair (:mod:`ipl_core.render`) and writes the folder that
:mod:`ipl_core.data.labels` describes, cached with a manifest. :class:`LabellingState` is the state of a
person labelling it (the notebook widget, :mod:`ipl_core.labelling_widget`, is a thin view of it): answer,
skip, undo, and resume, every answer saved at once and atomically in the native preference format
(:mod:`ipl_core.data.native`) plus the keys that let a labelling resume. The static page of the book keeps the
same state in the browser and exports an answer file (:func:`ipl_core.data.labels.load_labels`). Taught in
the appendix "Be the teacher" (book/appendix/be_the_teacher.ipynb).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from ipl_core.data.datasets import OfflineDataset, PreferenceDataset
from ipl_core.data.errors import NPZ_READ_ERRORS, DataFormatError, damaged
from ipl_core.data.labels import ANSWERS, QuerySet, load_query_set, write_answers
from ipl_core.data.native import REQUIRED_KEYS
from ipl_core.data.segments import episode_returns, gather_segments, valid_segment_starts
from ipl_core.data.store import cached
from ipl_core.io import atomic_write, write_json
from ipl_core.render import FRAME_SIZE, FrameRenderer, PhysicsStates, pair_frames, write_pair_clip
from ipl_core.teachers import ScriptedTeacher, segment_return_scale

QUESTIONS = {
    "button-press": "Which robot presses the button better?",
    "drawer-open": "Which robot opens the drawer better?",
    "sweep-into": "Which robot sweeps the puck into the hole better?",
    "plate-slide": "Which robot slides the plate into the goal better?",
    "assembly": "Which robot puts the ring on the peg better?",
    "hopper": "Which robot hops forward better?",
    "walker2d": "Which robot walks forward better?",
}
"""The teacher's question for each task: what the reward of the dataset measures, in a person's words."""


def draw_pairs(offline: OfflineDataset, num_pairs: int, segment_length: int,
               rng: np.random.Generator) -> np.ndarray:
    """(num_pairs, 2) start rows drawn uniformly among the valid starts, the two of a pair different."""
    starts = valid_segment_starts(offline, segment_length)
    if len(starts) < 2:
        raise ValueError(f"{offline.source}: fewer than two segments of {segment_length} steps fit; expected "
                         f"longer episodes")
    first = rng.integers(0, len(starts), size=num_pairs)
    shift = rng.integers(1, len(starts), size=num_pairs)  # never the same segment twice in a pair
    return np.stack([starts[first], starts[(first + shift) % len(starts)]], axis=1)


def make_query_set(folder: str | Path, offline: OfflineDataset, states: PhysicsStates,
                   renderer: Callable[[], FrameRenderer], dataset_id: str, question: str, num_pairs: int,
                   segment_length: int, seed: int, fps: int = 10, frame_stride: int = 1,
                   look: dict[str, Any] | None = None) -> QuerySet:
    """Draw ``num_pairs`` pairs from ``offline``, render them and write the query set into ``folder``.

    ``states`` hold MuJoCo's state at every row of ``offline`` (:func:`ipl_core.render.metaworld_physics`,
    :func:`ipl_core.render.locomotion_physics`); ``renderer()`` makes the renderer; clips show every
    ``frame_stride``-th step at ``fps`` frames per second; ``look`` (e.g. the camera) goes into the
    manifest, so that a changed view renders again. The folder is re-used
    when its manifest matches these arguments and every clip is present; otherwise it is rebuilt, clips
    first and ``pairs.json`` (with its manifest) last.
    """
    folder = Path(folder)
    starts = draw_pairs(offline, num_pairs, segment_length, np.random.default_rng(seed))
    queries = QuerySet(folder, dataset_id, question, segment_length, starts, fps, frame_stride)
    params = {"dataset_id": dataset_id, "question": question, "num_pairs": num_pairs,
              "segment_length": segment_length, "fps": fps, "frame_stride": frame_stride,
              "frame_size": FRAME_SIZE, "multisampling": 0, "look": look or {},
              "fingerprint": queries.fingerprint}
    missing = not (folder / "segments.npz").is_file() or not all(
        queries.clip(i).is_file() for i in range(num_pairs))
    if missing:
        (folder / "pairs.json.manifest.json").unlink(missing_ok=True)

    def build(tmp: Path) -> None:
        segments = {"1": gather_segments(offline, starts[:, 0], segment_length),
                    "2": gather_segments(offline, starts[:, 1], segment_length)}
        arrays = {f"{key}_{side}": segments[side][key] for side in "12"
                  for key in ("obs", "action", "reward", "terminal")}

        def write_segments(path: Path) -> None:
            with open(path, "wb") as handle:
                np.savez(handle, **arrays)

        atomic_write(folder / "segments.npz", write_segments)
        shutil.rmtree(folder / "clips", ignore_errors=True)
        draw = renderer()
        steps = np.arange(0, segment_length, frame_stride)
        try:
            for i, (a, b) in enumerate(starts):
                frames = pair_frames(draw.frames(states, a + steps), draw.frames(states, b + steps))
                write_pair_clip(queries.clip(i), frames, fps)
        finally:
            draw.close()
        write_json(tmp, queries.to_json())

    cached(folder / "pairs.json", "ipl_core.labelling/query_set", params, seed, build)
    return load_query_set(folder)


def metaworld_query_set(folder: str | Path, recipe: Any, num_pairs: int, segment_length: int, seed: int = 0,
                        root: str | Path | None = None, fps: int = 10,
                        frame_stride: int = 1) -> tuple[QuerySet, OfflineDataset]:
    """The query set of a MetaWorld recipe's offline data (generated or re-used), and that offline data.

    The dataset id is ``metaworld/<task>/<recipe tag>``; the question comes from :data:`QUESTIONS`.
    """
    from ipl_core.data.d4rl import load_d4rl_hdf5
    from ipl_core.data.metaworld_gen import generate_metaworld
    from ipl_core.render import METAWORLD_CAMERA, load_physics, metaworld_model, metaworld_physics

    offline = load_d4rl_hdf5(generate_metaworld(recipe, root=root, progress=False).offline)
    states = load_physics(metaworld_physics(recipe, root=root))
    question = QUESTIONS.get(recipe.task, f"Which robot does the task {recipe.task!r} better?")
    def renderer() -> FrameRenderer:
        return FrameRenderer(metaworld_model(recipe.task), METAWORLD_CAMERA)

    dataset_id = f"metaworld/{recipe.task}/{recipe.tag()}"
    queries = make_query_set(folder, offline, states, renderer, dataset_id, question, num_pairs,
                             segment_length, seed, fps, frame_stride, {"camera": asdict(METAWORLD_CAMERA)})
    return queries, offline


def locomotion_query_set(folder: str | Path, data_file: str | Path, task: str, num_pairs: int,
                         segment_length: int, seed: int = 0, fps: int = 10,
                         frame_stride: int = 1) -> tuple[QuerySet, OfflineDataset]:
    """The query set of a Hopper or Walker2d dataset in D4RL's layout, and that offline data.

    The dataset id is ``locomotion/<task>/<file name>/<first 12 hex of the file's sha256>``.
    """
    from ipl_core.data.d4rl import load_d4rl_hdf5
    from ipl_core.data.store import sha256_file
    from ipl_core.render import LOCOMOTION_CAMERA, locomotion_model, locomotion_physics

    offline = load_d4rl_hdf5(data_file)
    states = locomotion_physics(offline, task)
    dataset_id = f"locomotion/{task}/{Path(data_file).stem}/{sha256_file(data_file)[:12]}"
    def renderer() -> FrameRenderer:
        return FrameRenderer(locomotion_model(task), LOCOMOTION_CAMERA)

    queries = make_query_set(folder, offline, states, renderer, dataset_id, QUESTIONS[task], num_pairs,
                             segment_length, seed, fps, frame_stride, {"camera": asdict(LOCOMOTION_CAMERA)})
    return queries, offline


def scripted_answers(queries: QuerySet, teacher: ScriptedTeacher, rng: np.random.Generator,
                     scale: float | None = None) -> list[tuple[int, str]]:
    """A scripted teacher's answers to every pair of ``queries``, in pair order (skips included).

    ``scale`` (for the skip and equal thresholds) defaults to the mean segment return of the pairs.
    """
    segments = queries.segments()
    if scale is None:
        both = np.concatenate([segments["reward_1"], segments["reward_2"]])
        scale = abs(segment_return_scale(both.sum(1), 1, 1)) or 1.0
    answer = teacher.label(segments["reward_1"], segments["reward_2"], rng, scale=scale)
    names = {1.0: "left", 0.0: "right", 0.5: "equal"}
    pairs = zip(answer.label, answer.keep, strict=True)
    return [(i, names[float(y)] if keep else "skip") for i, (y, keep) in enumerate(pairs)]


def oracle_labels(queries: QuerySet) -> np.ndarray:
    """(N,) the ground-truth label of each pair: 1 if segment 1's return is larger, 0 if smaller, else 0.5."""
    segments = queries.segments()
    return 0.5 * (1.0 + np.sign(segments["reward_1"].sum(1) - segments["reward_2"].sum(1)))


def agreement(labels: np.ndarray, reference: np.ndarray) -> float:
    """Mean of ``1 - abs(y - y_ref)`` over pairs: 1 when two labels agree, 0 when opposite, 1/2 for one
    'equal' (the agreement of book/appendix/be_the_teacher.ipynb)."""
    labels, reference = np.asarray(labels, dtype=np.float64), np.asarray(reference, dtype=np.float64)
    return float(np.mean(1.0 - np.abs(labels - reference)))


def dataset_returns_scale(offline: OfflineDataset, segment_length: int) -> float:
    """The mean return of a segment-long stretch of ``offline`` (B-Pref's threshold scale)."""
    returns, lengths = episode_returns(offline)
    return segment_return_scale(returns, segment_length, max(1, round(float(lengths.mean()))))


class LabellingState:
    """A person's answers to a query set, saved to ``path`` after every change.

    Pairs are asked in order; :meth:`answer` records ``left``, ``right``, ``equal`` or ``skip`` for the
    current pair, :meth:`undo` takes the last answer back. The file is the native preference format
    (``obs_1``, ..., ``label`` of the labelled pairs, so :func:`ipl_core.data.native.load_preferences`
    reads it once one pair is labelled) plus ``pair`` (the pair index of each label), ``history_pair`` and
    ``history_answer`` (every answer in order, skips included), ``dataset_id`` and ``fingerprint``.
    Opening it on an existing file resumes the labelling; a file of another query set raises
    DataFormatError and is left as it is.
    """

    def __init__(self, query_set: str | Path | QuerySet, path: str | Path) -> None:
        self.queries = query_set if isinstance(query_set, QuerySet) else load_query_set(query_set)
        self.path = Path(path)
        self.segments = self.queries.segments()
        self.history: list[tuple[int, str]] = []
        if self.path.is_file():
            self.history = self._read()

    @property
    def question(self) -> str:
        return self.queries.question

    @property
    def total(self) -> int:
        return len(self.queries)

    @property
    def done(self) -> int:
        """How many pairs have an answer (skips included)."""
        return len(self.history)

    @property
    def current(self) -> int | None:
        """The next pair to answer (the first one without an answer), or None when all are answered."""
        answered = {pair for pair, _ in self.history}
        return next((i for i in range(self.total) if i not in answered), None)

    def answer(self, choice: str) -> None:
        """Record ``choice`` for :attr:`current` and save."""
        if choice not in ANSWERS:
            raise ValueError(f"answer {choice!r}: expected one of {list(ANSWERS)}")
        pair = self.current
        if pair is None:
            raise ValueError(f"all {self.total} pairs are answered; nothing to answer")
        self.history.append((pair, choice))
        self._save()

    def undo(self) -> int | None:
        """Take the last answer back (its pair is asked again next) and save; None when there is none."""
        if not self.history:
            return None
        pair, _ = self.history.pop()
        self._save()
        return pair

    def labels(self) -> dict[int, float]:
        """Pair index -> P[segment 1 preferred] of every labelled (not skipped) pair."""
        return {pair: ANSWERS[a] for pair, a in self.history if ANSWERS[a] is not None}  # type: ignore[misc]

    def preferences(self) -> PreferenceDataset:
        return self.queries.preferences(self.labels(), source=str(self.path))

    def export(self, path: str | Path) -> Path:
        """Write the answers as an answer file, the format the book's labelling page exports."""
        return write_answers(path, self.queries, self.history)

    def _save(self) -> None:
        labels = self.labels()
        pairs = np.array(sorted(labels), dtype=np.int64)
        arrays: dict[str, Any] = {key: value[pairs] for key, value in self.segments.items()}
        arrays |= {"label": np.array([labels[p] for p in pairs], dtype=np.float32), "pair": pairs,
                   "history_pair": np.array([p for p, _ in self.history], dtype=np.int64),
                   "history_answer": np.array([a for _, a in self.history], dtype="<U5"),
                   "dataset_id": np.array(self.queries.dataset_id),
                   "fingerprint": np.array(self.queries.fingerprint)}

        def write(tmp: Path) -> None:
            with open(tmp, "wb") as handle:
                np.savez(handle, **arrays)

        atomic_write(self.path, write)

    def _read(self) -> list[tuple[int, str]]:
        source = str(self.path)
        try:
            with np.load(self.path, allow_pickle=False) as archive:
                stored = {key: archive[key] for key in archive.files}
        except NPZ_READ_ERRORS as error:  # a truncated or damaged archive
            raise damaged(source, error, "a labelling file (.npz)") from error
        for key in (*REQUIRED_KEYS, "history_pair", "history_answer", "dataset_id", "fingerprint"):
            if key not in stored:
                raise DataFormatError(f"{source}: missing key {key!r}; expected a labelling file")
        if str(stored["dataset_id"]) != self.queries.dataset_id:
            raise DataFormatError(f"{source}: made for dataset {str(stored['dataset_id'])!r}, not "
                                  f"{self.queries.dataset_id!r}; choose another file")
        if str(stored["fingerprint"]) != self.queries.fingerprint:
            raise DataFormatError(f"{source}: fingerprint {str(stored['fingerprint'])!r} differs from the "
                                  f"query set's {self.queries.fingerprint!r}; the file answers other pairs")
        history = [(int(p), str(a)) for p, a in zip(stored["history_pair"], stored["history_answer"],
                                                     strict=True)]
        bad = [(p, a) for p, a in history if a not in ANSWERS or not 0 <= p < self.total]
        if bad or len({p for p, _ in history}) != len(history):
            raise DataFormatError(f"{source}: history holds invalid or repeated answers (e.g. {bad[:3]}); "
                                  f"expected each pair in [0, {self.total}) once, answers in {list(ANSWERS)}")
        return history

