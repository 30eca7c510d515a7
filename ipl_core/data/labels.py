"""Labels given by a person: the pairs shown to them (a query set) and the file their answers are saved in.

A **query set** is a folder: ``pairs.json`` (what the labelling page and widget read), ``segments.npz``
(the pairs' observations, actions and ground-truth rewards in the keys of the native preference format,
without ``label``) and ``clips/`` (one video per pair, segment 1 on the left). ``pairs.json`` holds::

    {"format": "ipl-book-pairs", "version": 1, "dataset_id": "metaworld/drawer-open/e5_l100_n1.0_s0",
     "fingerprint": "<16 hex>", "question": "Which robot opens the drawer better?", "segment_length": 20,
     "fps": 10, "frame_stride": 1,
     "pairs": [{"pair": 0, "start_1": 812, "start_2": 37, "clip": "clips/pair-0000.mp4"}, ...]}

``fingerprint`` is a hash of the dataset id, the segment length and every start row, so answers can only be
joined with the pairs they were given for. An **answer file**, exported by the labelling page (book
``labelling/index.html``) or written by :func:`write_answers`, is JSON::

    {"format": "ipl-book-labels", "version": 1, "dataset_id": ..., "fingerprint": ..., "num_pairs": 30,
     "answers": [{"pair": 0, "answer": "left"}, {"pair": 1, "answer": "skip"}, ...],
     "checksum": "<8 hex>"}

with answers in the order given, each one of ``left`` (segment 1 is better, label 1), ``right`` (label 0),
``equal`` (label 0.5) or ``skip`` (not answered; dropped). ``checksum`` is the 32-bit FNV-1a hash of
:func:`answers_text`, so a file changed after export is refused. :func:`load_labels` joins an answer file
with its query set into a :class:`~ipl_core.data.datasets.PreferenceDataset`; a file that does not fit
raises :class:`~ipl_core.data.errors.DataFormatError` naming what does not match. Taught in the appendix
"Be the teacher" (book/appendix/be_the_teacher.ipynb).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ipl_core.data.datasets import PreferenceDataset
from ipl_core.data.errors import DataFormatError, read_npz, require_file
from ipl_core.io import write_json

PAIRS_FORMAT, LABELS_FORMAT, VERSION = "ipl-book-pairs", "ipl-book-labels", 1
ANSWERS: dict[str, float | None] = {"left": 1.0, "right": 0.0, "equal": 0.5, "skip": None}
"""Each answer and its label P[segment 1 preferred]; ``skip`` gives no label."""
SEGMENT_KEYS = ("obs_1", "obs_2", "action_1", "action_2", "reward_1", "reward_2", "terminal_1", "terminal_2")
"""The keys of ``segments.npz``: the native preference format's, without ``label``."""


@dataclass(frozen=True)
class QuerySet:
    """The pairs of segments a person is asked about (see the module docstring for the files)."""

    folder: Path
    dataset_id: str
    question: str
    segment_length: int
    starts: np.ndarray
    """(N, 2) start rows of segment 1 and segment 2 in the offline dataset."""
    fps: int = 10
    frame_stride: int = 1
    """Clips show every ``frame_stride``-th step of a segment."""

    def __len__(self) -> int:
        return len(self.starts)

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.dataset_id, self.segment_length, self.starts)

    def clip(self, pair: int) -> Path:
        return self.folder / "clips" / f"pair-{pair:04d}.mp4"

    def segments(self) -> dict[str, np.ndarray]:
        """The arrays of ``segments.npz``: (N, S, ...) for every key of :data:`SEGMENT_KEYS`, checked
        against ``pairs.json`` (N pairs of S = ``segment_length`` steps); :meth:`preferences` checks their
        values."""
        path = self.folder / "segments.npz"
        arrays = read_npz(path, SEGMENT_KEYS, f"the segments of query set {self.dataset_id}")
        for key, array in arrays.items():
            rank = 2 if key.startswith(("reward", "terminal")) else 3
            if array.ndim != rank or array.shape[:2] != (len(self), self.segment_length):
                raise DataFormatError(
                    f"{path}: key {key!r} has shape {array.shape}; expected ({len(self)}, "
                    f"{self.segment_length}{', dim' if rank == 3 else ''}): the pairs and segment_length "
                    "of pairs.json")
        return arrays

    def preferences(self, labels: dict[int, float], source: str) -> PreferenceDataset:
        """The labelled pairs (pair index -> P[segment 1 preferred]) as a preference dataset, by pair."""
        if not labels:
            raise DataFormatError(f"{source}: no pair is labelled (every answer is a skip); expected at "
                                  f"least one")
        pairs = np.array(sorted(labels))
        arrays = {key: value[pairs] for key, value in self.segments().items()}
        label = np.array([labels[p] for p in pairs], dtype=np.float32)
        try:
            return PreferenceDataset(**arrays, label=label, source=source)
        except ValueError as error:  # the message names ``source``; the values are those of segments.npz
            raise DataFormatError(f"{self.folder / 'segments.npz'}: {error}") from error

    def to_json(self) -> dict[str, Any]:
        return {"format": PAIRS_FORMAT, "version": VERSION, "dataset_id": self.dataset_id,
                "fingerprint": self.fingerprint, "question": self.question,
                "segment_length": self.segment_length, "fps": self.fps, "frame_stride": self.frame_stride,
                "pairs": [{"pair": i, "start_1": int(a), "start_2": int(b),
                           "clip": f"clips/pair-{i:04d}.mp4"} for i, (a, b) in enumerate(self.starts)]}


def fingerprint(dataset_id: str, segment_length: int, starts: np.ndarray) -> str:
    """16 hex digits of sha256 over the dataset id, the segment length and the start rows."""
    text = f"{dataset_id}|{segment_length}|" + ",".join(str(int(x)) for x in np.asarray(starts).ravel())
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def load_query_set(folder: str | Path) -> QuerySet:
    """Read ``<folder>/pairs.json``; a missing or malformed file raises DataFormatError naming the field."""
    folder = Path(folder)
    path = require_file(folder / "pairs.json", "the pairs.json of a query set")
    data = _read_json(path, "a query set's pairs.json")
    _expect(data, "format", PAIRS_FORMAT, path)
    _expect(data, "version", VERSION, path)
    pairs = data.get("pairs")
    if not isinstance(pairs, list) or not pairs:
        raise DataFormatError(f"{path}: field 'pairs' is {type(pairs).__name__}; expected a non-empty list")
    for k, entry in enumerate(pairs):
        for field in ("start_1", "start_2"):
            value = entry.get(field) if isinstance(entry, dict) else None
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**62:
                raise DataFormatError(f"{path}: pairs[{k}].{field} is {value!r}; expected a non-negative "
                                      "integer row of the dataset")
    try:
        starts = np.array([[p["start_1"], p["start_2"]] for p in pairs], dtype=np.int64)
        queries = QuerySet(folder, str(data["dataset_id"]), str(data["question"]),
                           int(data["segment_length"]), starts.reshape(-1, 2), int(data["fps"]),
                           int(data.get("frame_stride", 1)))
    except (KeyError, TypeError, ValueError) as error:
        raise DataFormatError(f"{path}: field {error} is missing or malformed; expected the layout of "
                              f"ipl_core.data.labels") from error
    if data.get("fingerprint") != queries.fingerprint:
        raise DataFormatError(f"{path}: fingerprint {data.get('fingerprint')!r} does not match its pairs "
                              f"({queries.fingerprint}); the file was changed")
    return queries


def answers_text(answers: list[tuple[int, str]]) -> str:
    """The text the checksum is taken over: ``"0:left,1:skip,..."`` in the order given."""
    return ",".join(f"{pair}:{answer}" for pair, answer in answers)


def fnv1a_32(text: str) -> str:
    """The 32-bit FNV-1a hash of ``text`` (UTF-8) as 8 hex digits; the labelling page computes the same."""
    value = 0x811C9DC5
    for byte in text.encode():
        value = ((value ^ byte) * 0x01000193) & 0xFFFFFFFF
    return f"{value:08x}"


def write_answers(path: str | Path, queries: QuerySet, answers: list[tuple[int, str]]) -> Path:
    """Write ``answers`` [(pair, answer), ...] as an answer file for ``queries`` (atomically)."""
    for pair, answer in answers:
        if answer not in ANSWERS or not 0 <= pair < len(queries):
            raise ValueError(f"answer {(pair, answer)!r}: expected a pair in [0, {len(queries)}) and one of "
                             f"{list(ANSWERS)}")
    return write_json(path, {
        "format": LABELS_FORMAT, "version": VERSION, "dataset_id": queries.dataset_id,
        "fingerprint": queries.fingerprint, "num_pairs": len(queries),
        "answers": [{"pair": int(p), "answer": a} for p, a in answers],
        "checksum": fnv1a_32(answers_text(answers))})


def read_answers(path: str | Path, queries: QuerySet) -> list[tuple[int, str]]:
    """The answers of an answer file, checked against ``queries``; any mismatch raises DataFormatError.

    Checked in this order, each naming the file and the field: readable JSON (a truncated file fails
    here), format and version, dataset id, fingerprint (the same pairs), pair count, every answer (a pair
    index in range, given once, and one of :data:`ANSWERS`), then the checksum (changed after export).
    """
    path = require_file(path, f"an answer file ({LABELS_FORMAT}) for {queries.dataset_id}")
    data = _read_json(path, f"an answer file ({LABELS_FORMAT})")
    _expect(data, "format", LABELS_FORMAT, path)
    _expect(data, "version", VERSION, path)
    if data.get("dataset_id") != queries.dataset_id:
        raise DataFormatError(f"{path}: dataset_id is {data.get('dataset_id')!r}, but the query set is "
                              f"{queries.dataset_id!r}; the file was made for another dataset")
    if data.get("fingerprint") != queries.fingerprint:
        raise DataFormatError(f"{path}: fingerprint {data.get('fingerprint')!r} differs from the query set's "
                              f"{queries.fingerprint!r}; the file answers another draw of pairs")
    if data.get("num_pairs") != len(queries):
        raise DataFormatError(f"{path}: num_pairs is {data.get('num_pairs')!r}; the query set has "
                              f"{len(queries)} pairs")
    raw = data.get("answers")
    if not isinstance(raw, list):
        raise DataFormatError(f"{path}: field 'answers' is {type(raw).__name__}; expected a list")
    answers, seen = [], set()
    for k, entry in enumerate(raw):
        pair = entry.get("pair") if isinstance(entry, dict) else None
        answer = entry.get("answer") if isinstance(entry, dict) else None
        if not isinstance(pair, int) or isinstance(pair, bool) or not 0 <= pair < len(queries):
            raise DataFormatError(f"{path}: answers[{k}].pair is {pair!r}; expected an integer in "
                                  f"[0, {len(queries)})")
        if not isinstance(answer, str) or answer not in ANSWERS:
            raise DataFormatError(f"{path}: answers[{k}].answer is {answer!r}; expected one of "
                                  f"{list(ANSWERS)}")
        if pair in seen:
            raise DataFormatError(f"{path}: answers[{k}] answers pair {pair} a second time; expected each "
                                  f"pair at most once")
        seen.add(pair)
        answers.append((pair, answer))
    checksum = fnv1a_32(answers_text(answers))
    if data.get("checksum") != checksum:
        raise DataFormatError(f"{path}: checksum is {data.get('checksum')!r} but the answers hash to "
                              f"{checksum!r}; the file was changed after it was exported")
    return answers


def load_labels(path: str | Path, query_set: str | Path | QuerySet) -> PreferenceDataset:
    """An answer file joined with its query set (a folder or a :class:`QuerySet`): the labelled pairs.

    Skipped pairs are dropped. Raises DataFormatError as :func:`read_answers` does; nothing is written.
    """
    queries = query_set if isinstance(query_set, QuerySet) else load_query_set(query_set)
    answers = read_answers(path, queries)
    labels = {pair: ANSWERS[answer] for pair, answer in answers if ANSWERS[answer] is not None}
    return queries.preferences(labels, source=str(path))  # type: ignore[arg-type]


def _read_json(path: Path, what: str) -> dict[str, Any]:
    """The JSON object in ``path`` (UTF-8, a leading byte-order mark allowed), or a DataFormatError."""
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except UnicodeDecodeError as error:
        raise DataFormatError(f"{path}: not UTF-8 text ({error}); expected {what}") from error
    except RecursionError as error:
        raise DataFormatError(f"{path}: JSON nested too deeply to read; expected {what}") from error
    except json.JSONDecodeError as error:
        raise DataFormatError(f"{path}: not valid JSON ({error.msg} at line {error.lineno}, column "
                              f"{error.colno}); expected {what}; the file may be truncated") from error
    if not isinstance(data, dict):
        raise DataFormatError(f"{path}: holds a JSON {type(data).__name__}; expected an object ({what})")
    return data


def _expect(data: dict[str, Any], key: str, value: Any, path: Path) -> None:
    if data.get(key) != value:
        raise DataFormatError(f"{path}: field {key!r} is {data.get(key)!r}; expected {value!r}")
