"""Damaged query sets and answer files (what a person's labels are read from), and ``.npz`` headers that
claim more than their files hold: a few hundred mutants of valid files (a fixed seed), loaded in a child
process whose memory is capped a little above what it uses after its imports, with a time limit per load.
Every mutant must either load (a flipped byte in a value can leave a valid file) or raise a DataFormatError
that names the damaged file; any other exception, a crash, a memory blow-up or a hang fails the test and is
listed. tests/test_data_fuzz.py damages the dataset layouts (D4RL, Robomimic, PT, native, Minari) in the same
spirit, in-process."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np

from ipl_core.data.datasets import PreferenceDataset
from ipl_core.data.labels import SEGMENT_KEYS, QuerySet, write_answers
from ipl_core.data.native import save_preferences

SEED, PAIRS, LENGTH, OBS, ACT = 0, 6, 5, 3, 2

CHILD = r"""
import json, resource, signal, sys, traceback
from ipl_core.data.errors import DataFormatError
from ipl_core.data.labels import load_labels
from ipl_core.data.native import load_preferences

def limit_memory(extra):
    status = open("/proc/self/status").read().splitlines()
    size = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmSize"))
    resource.setrlimit(resource.RLIMIT_AS, (size + extra, size + extra))

def alarm(signum, frame):
    raise TimeoutError("took longer than 20 s")

signal.signal(signal.SIGALRM, alarm)
limit_memory(512 * 2**20)
out = []
for case in json.load(sys.stdin):
    signal.alarm(20)
    try:
        if case["loader"] == "labels":
            load_labels(case["answers"], case["folder"])
        else:
            load_preferences(case["file"])
        out.append(["ok", ""])
    except DataFormatError as error:
        out.append(["refused", str(error)])
    except BaseException as error:
        out.append(["other", f"{type(error).__name__}: {error}"[:300]])
    finally:
        signal.alarm(0)
print(json.dumps(out))
"""


def _segments(rng: np.random.Generator) -> dict[str, np.ndarray]:
    arrays = {key: rng.normal(size=(PAIRS, LENGTH, OBS if key.startswith("obs") else ACT)).astype(np.float32)
              for key in SEGMENT_KEYS if key.startswith(("obs", "action"))}
    arrays |= {f"reward_{i}": rng.normal(size=(PAIRS, LENGTH)).astype(np.float32) for i in (1, 2)}
    arrays |= {f"terminal_{i}": np.zeros((PAIRS, LENGTH), np.float32) for i in (1, 2)}
    return arrays


def _npz(arrays: dict[str, np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _huge_header_npz(arrays: dict[str, np.ndarray], key: str) -> bytes:
    """An archive whose member ``key`` declares 10^12 rows but stores the few bytes of the real array."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, array in arrays.items():
            member = io.BytesIO()
            if name == key:
                header = {"descr": np.lib.format.dtype_to_descr(array.dtype), "fortran_order": False,
                          "shape": (10**12, *array.shape[1:])}
                np.lib.format.write_array_header_1_0(member, header)
                member.write(array.tobytes())
            else:
                np.lib.format.write_array(member, array)
            archive.writestr(f"{name}.npy", member.getvalue())
    return buffer.getvalue()


def _json_mutants(data: dict, rng: np.random.Generator, count: int) -> list[bytes]:
    """Keys removed and values replaced (anywhere in the tree) by the wrong kinds of thing."""
    replacements = [None, "x", 1e30, float("inf"), float("nan"), [], {}, -1, True, 10**30, ["left"],
                    [[[[[0]]]]]]
    paths: list[tuple] = []

    def walk(node, path):
        paths.append(path)
        children = (node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list)
                    else [])
        for key, child in children:
            walk(child, (*path, key))

    walk(data, ())
    out = []
    for _ in range(count):
        copy = json.loads(json.dumps(data))
        path = paths[rng.integers(1, len(paths))]
        parent = copy
        for key in path[:-1]:
            parent = parent[key]
        if rng.random() < 0.3 and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = replacements[rng.integers(len(replacements))]
        out.append(json.dumps(copy).encode())
    out.append(b"[" * 100_000 + b"]" * 100_000)  # nested too deeply for the parser
    out.append(b"\xef\xbb\xbf" + json.dumps(data).encode())  # a byte-order mark: a valid file
    return out


def _byte_mutants(raw: bytes, rng: np.random.Generator, count: int) -> list[bytes]:
    """Truncations and flipped bytes."""
    out = []
    for _ in range(count):
        if rng.random() < 0.5:
            out.append(raw[: rng.integers(0, len(raw))])
        else:
            data = bytearray(raw)
            for position in rng.integers(0, len(raw), size=rng.integers(1, 9)):
                data[position] ^= int(rng.integers(1, 256))
            out.append(bytes(data))
    return out


def _array_mutants(arrays: dict[str, np.ndarray], rng: np.random.Generator,
                   optional: tuple[str, ...] = ()) -> list[bytes]:
    """Every key dropped (but ``optional`` ones), given a string dtype, another rank, NaN and inf, fewer
    rows, a huge header."""
    out = []
    for key in arrays:
        changed = [] if key in optional else [{k: v for k, v in arrays.items() if k != key}]
        changed += [
            arrays | {key: arrays[key].astype("U8")},
            arrays | {key: arrays[key].reshape(-1) if arrays[key].ndim > 1 else arrays[key][:, None]},
            arrays | {key: np.where(rng.random(arrays[key].shape) < 0.2, np.nan, arrays[key])},
            arrays | {key: np.full_like(arrays[key], np.inf)},
            arrays | {key: arrays[key][: max(1, len(arrays[key]) - 2)]},
        ]
        if key.startswith(("terminal", "label")):  # flags are 0 or 1, labels 0, 0.5 or 1
            changed.append(arrays | {key: np.full_like(arrays[key], 2)})
        out += [_npz(a) for a in changed]
        out.append(_huge_header_npz(arrays, key))
    return out


def test_damaged_files_are_refused_by_name(tmp_path: Path) -> None:
    rng = np.random.default_rng(SEED)
    segments = _segments(rng)
    starts = rng.integers(0, 1000, size=(PAIRS, 2))
    queries = QuerySet(tmp_path / "valid", "toy/v0", "Which is better?", LENGTH, starts)
    queries.folder.mkdir()
    pairs_json = json.dumps(queries.to_json()).encode()
    (queries.folder / "pairs.json").write_bytes(pairs_json)
    (queries.folder / "segments.npz").write_bytes(_npz(segments))
    answers_path = write_answers(tmp_path / "answers.json", queries,
                                 [(i, ("left", "right", "equal", "skip")[i % 4]) for i in range(PAIRS)])
    answers_json = answers_path.read_bytes()
    native = {k: v for k, v in segments.items()} | {"label": np.array([1, 0, 0.5, 1, 0, 1], np.float32)}
    save_preferences(tmp_path / "prefs.npz", PreferenceDataset(**native, source="fuzz"))  # a valid one

    # (which file is mutated, its mutants)
    variants = [("pairs.json", m) for m in _json_mutants(json.loads(pairs_json), rng, 60)]
    variants += [("pairs.json", m) for m in _byte_mutants(pairs_json, rng, 20)]
    variants += [("answers.json", m) for m in _json_mutants(json.loads(answers_json), rng, 60)]
    variants += [("answers.json", m) for m in _byte_mutants(answers_json, rng, 20)]
    invalid = len(variants)
    variants += [("segments.npz", m) for m in _array_mutants(segments, rng)]
    invalid_segments = range(invalid, len(variants))
    variants += [("segments.npz", m) for m in _byte_mutants(_npz(segments), rng, 40)]
    # the native format's other damage is tests/test_data_fuzz.py's; here, sizes its headers cannot hold
    invalid = len(variants)
    variants += [("prefs.npz", _huge_header_npz(native, key)) for key in native]
    invalid_native = range(invalid, len(variants))
    variants += [("pairs.json", None), ("prefs.npz", None)]  # a folder where the file belongs
    cases, names = [], []
    for k, (name, content) in enumerate(variants):
        folder = tmp_path / f"m{k}"
        (folder / "set").mkdir(parents=True)
        for file, raw in (("pairs.json", pairs_json), ("segments.npz", _npz(segments))):
            (folder / "set" / file).write_bytes(raw)
        (folder / "answers.json").write_bytes(answers_json)
        target = folder / "prefs.npz" if name == "prefs.npz" else (
            folder / "answers.json" if name == "answers.json" else folder / "set" / name)
        if content is None:
            target.unlink(missing_ok=True)
            target.mkdir()
        else:
            target.write_bytes(content)
        names.append(str(target))
        if name == "prefs.npz":
            cases.append({"loader": "native", "file": str(target)})
        else:
            cases.append({"loader": "labels", "answers": str(folder / "answers.json"),
                          "folder": str(folder / "set")})
    assert len(cases) >= 250
    child = subprocess.run([sys.executable, "-c", CHILD], input=json.dumps(cases), capture_output=True,
                           text=True, timeout=600, cwd=Path(__file__).resolve().parents[1])
    assert child.returncode == 0, child.stderr[-2000:]
    outcomes = json.loads(child.stdout.strip().splitlines()[-1])
    wrong = [f"{name}: {kind}: {text}" for name, (kind, text) in zip(names, outcomes, strict=True)
             if kind == "other" or (kind == "refused" and name not in text)]
    assert not wrong, f"{len(wrong)} of {len(cases)} mutants:\n" + "\n".join(wrong[:30])
    # every array mutant is invalid (a key missing, strings, another rank, NaN or inf, fewer rows, a flag or
    # label of 2, a header claiming 10^12 rows): each is refused, none loads
    loaded = [names[k] for k in (*invalid_segments, *invalid_native) if outcomes[k][0] != "refused"]
    assert not loaded, loaded
