"""``ipl-train``: train IPL (or MR, or any offline method) on your own files from the command line.

One command reads an offline dataset (D4RL HDF5, Robomimic HDF5 or a local Minari dataset), its preference
labels (Preference Transformer's human-label folder, the book's ``.npz``, or a scripted teacher that labels
segments by the dataset's rewards), trains every seed at once (:func:`ipl_core.trainer.train_seeds`) with a
progress bar and periodic checkpoints, and writes per seed ``<out>/seed=<k>/`` with ``config.json``,
``metrics.parquet``, ``checkpoint.pt`` and ``policy.pt`` (:func:`ipl_core.policy.save_policy`). Running the
same command again resumes from the checkpoints (a larger ``--steps`` trains on). Bad files fail with the
data layer's :class:`~ipl_core.data.errors.DataFormatError` message, which names the file and the key, and
a run refused before training leaves ``--out`` as it was. ``python -m ipl_core`` runs the same command.
Taught in "Use ipl_core on your own data" (book/appendix/own_data.ipynb)::

    ipl-train --data hopper-medium-replay-v2.hdf5 --labels human_label/hopper-medium-replay-v2 \\
        --query-length 100 --method ipl --steps 1000000 --seeds 0 1 2 --out runs/hopper-mr
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import importlib.metadata
import json
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ipl_core.agents import ORACLE_METHODS, known_methods
from ipl_core.config import PRESETS, OfflineConfig, preset
from ipl_core.data.d4rl import load_d4rl_hdf5, qlearning_dataset
from ipl_core.data.datasets import OfflineDataset, PreferenceDataset
from ipl_core.data.errors import DataFormatError
from ipl_core.data.native import load_preferences
from ipl_core.data.pt_labels import D4RL_QUERY_LENGTH, find_pt_label_files, load_pt_human_labels
from ipl_core.data.robomimic import load_robomimic_hdf5
from ipl_core.data.segments import make_preference_dataset
from ipl_core.io import write_json
from ipl_core.policy import POLICY, save_policy
from ipl_core.teachers import TEACHERS
from ipl_core.trainer import CHECKPOINT, checkpoint_step, train_seeds

FORMATS = ("d4rl", "robomimic", "minari")
DATA_RECORD = "data.json"
"""``<out>/data.json``: where the data of a run came from, its sizes and a fingerprint of its arrays; a
resume must read data with the same sizes and fingerprint (the files may have moved)."""


def package_version() -> str:
    """The installed version of ipl_core (its package metadata)."""
    try:
        return importlib.metadata.version("ipl_core")
    except importlib.metadata.PackageNotFoundError:
        return "unknown (ipl_core is not installed)"


def epilog() -> str:
    """The end of ``--help``: the methods, the presets, the fields of ``--set`` and what ``--out`` holds."""
    fields = ", ".join(f.name for f in dataclasses.fields(OfflineConfig))
    wrap = textwrap.TextWrapper(width=79, subsequent_indent="  ", break_on_hyphens=False)
    oracle = ", ".join(ORACLE_METHODS)
    return "\n".join([
        wrap.fill(f"methods: {', '.join(known_methods())} ({oracle}: oracle IQL, trained on the rewards of "
                  "--data; it does not use the labels)"),
        f"presets: {', '.join(sorted(PRESETS))}",
        wrap.fill(f"--set FIELD=VALUE takes any OfflineConfig field: {fields}"),
        wrap.fill(f"query length: Preference Transformer's D4RL labels hold segments of {D4RL_QUERY_LENGTH} "
                  f"steps and their file names carry no _q<L>: pass --query-length {D4RL_QUERY_LENGTH}"),
        "--out holds:",
        "  data.json                 source, sizes and fingerprints of the data",
        "  seed=<k>/config.json      the resolved OfflineConfig of seed k",
        "  seed=<k>/metrics.parquet  rows of method, seed, step, kind, metric, value",
        "  seed=<k>/checkpoint.pt    networks, optimisers, random states and step",
        "  seed=<k>/policy.pt        the trained actor (ipl_core.load_policy)",
        wrap.fill("Run the same command again to resume from the checkpoints in --out (a larger --steps "
                  "trains on; the data must match data.json)."),
    ])


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="ipl-train", description="Offline preference-based RL (IPL, MR, ...) on your own data files.",
        epilog=epilog(), formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    p.add_argument("--data", required=True, help="offline dataset: a D4RL or Robomimic HDF5 file, or a "
                   "Minari dataset folder <root>/<dataset_id>")
    p.add_argument("--format", choices=FORMATS, default="d4rl", help="layout of --data (default: d4rl)")
    labels = p.add_mutually_exclusive_group(required=True)
    labels.add_argument("--labels", help="Preference Transformer label folder human_label/<env>/")
    labels.add_argument("--preferences", help="the book's preference .npz (ipl_core.data.save_preferences)")
    labels.add_argument("--teacher", choices=sorted(TEACHERS),
                        help="label random segment pairs by the dataset's rewards with a scripted teacher")
    p.add_argument("--query-length", type=int, help="steps per labelled segment: PT's query length (default: "
                   "the _q<L> of the file names; 100 for D4RL) or the teacher's segment length (default 100)")
    p.add_argument("--num-queries", type=int, help="PT: keep the last N queries; teacher: pairs to draw "
                   "(default 500)")
    p.add_argument("--drop-crossing", action="store_true", help="PT: drop the queries whose segments cross "
                   "an episode's end (default: refuse the labels)")
    p.add_argument("--teacher-seed", type=int, default=0, help="seed of the teacher's draws (default: 0)")
    p.add_argument("--method", default="ipl", choices=known_methods(), help="default: ipl")
    p.add_argument("--preset", default="locomotion", choices=sorted(PRESETS),
                   help="paper settings to start from (IPL Table 5 or 6; default: locomotion)")
    p.add_argument("--steps", type=int, help="gradient steps (default: the preset's)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="seeds trained together (default: 0)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="FIELD=VALUE",
                   help="any other OfflineConfig field, e.g. --set checkpoint_every=5000 (repeatable)")
    p.add_argument("--out", required=True, help="output folder; one seed=<k>/ subfolder per seed")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """``["lam=0.5", "balance_losses=true"]`` -> typed OfflineConfig changes; bad names or values raise."""
    defaults = OfflineConfig()
    names = [f.name for f in dataclasses.fields(OfflineConfig)]
    changes: dict[str, Any] = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep or name not in names:
            raise ValueError(f"--set {item!r}: expected FIELD=VALUE with FIELD one of {names}")
        kind = type(getattr(defaults, name))
        try:
            if kind is bool:
                if text.lower() not in ("true", "false", "1", "0"):
                    raise ValueError(text)
                changes[name] = text.lower() in ("true", "1")
            else:
                changes[name] = kind(text)
        except ValueError as error:
            raise ValueError(f"--set {item!r}: {name} expects a {kind.__name__}, got {text!r}") from error
    return changes


def load_data(args: argparse.Namespace) -> tuple[OfflineDataset, PreferenceDataset]:
    """The offline dataset and the preferences the arguments name (PT indices point into the view that
    D4RL's ``qlearning_dataset`` makes, so a D4RL file is trained on that view)."""
    if args.format == "d4rl":
        offline = qlearning_dataset(load_d4rl_hdf5(args.data)).dataset
    elif args.format == "robomimic":
        offline = load_robomimic_hdf5(args.data)
    else:
        from ipl_core.data.minari_io import load_minari

        folder = Path(args.data)
        try:
            offline = load_minari(folder.name, root=folder.parent)
        except ImportError as error:
            if error.name != "minari":
                raise
            raise ValueError("--format minari reads datasets with the minari package, which is not "
                             "installed: pip install minari") from error
    extreme = float(np.abs(offline.actions).max())
    if extreme > 1.0 + 1e-6:
        raise DataFormatError(f"{args.data}: actions reach {extreme:.4g} in absolute value; expected them in "
                              "[-1, 1], the range of the policy's tanh: rescale them first")
    if args.labels is not None:
        first, _, _, named_length = find_pt_label_files(args.labels)
        if args.query_length is None and named_length is None:
            raise DataFormatError(f"{first}: the name carries no _q<L>; pass --query-length "
                                  f"({D4RL_QUERY_LENGTH} for D4RL)")
        prefs = load_pt_human_labels(args.labels, offline, query_length=args.query_length,
                                     num_queries=args.num_queries,
                                     on_crossing="drop" if args.drop_crossing else "error")
    elif args.preferences is not None:
        prefs = load_preferences(args.preferences)
        if args.query_length is not None and args.query_length != prefs.segment_length:
            raise DataFormatError(f"{args.preferences}: segments of {prefs.segment_length} steps; "
                                  f"--query-length says {args.query_length}")
    else:
        rng = np.random.default_rng(args.teacher_seed)
        prefs = make_preference_dataset(offline, args.num_queries or 500, args.query_length or 100,
                                        TEACHERS[args.teacher], rng)
    if (prefs.obs_dim, prefs.act_dim) != (offline.obs_dim, offline.act_dim):
        raise DataFormatError(
            f"{prefs.source}: segments have obs_dim={prefs.obs_dim}, act_dim={prefs.act_dim}, but "
            f"{args.data} has obs_dim={offline.obs_dim}, act_dim={offline.act_dim}; expected the labels of "
            "this dataset"
        )
    return offline, prefs


def data_record(args: argparse.Namespace, offline: OfflineDataset,
                prefs: PreferenceDataset) -> dict[str, Any]:
    """What ``<out>/data.json`` holds: the sources (for the reader) and sizes and fingerprints (compared)."""
    def fingerprint(*arrays: np.ndarray) -> str:
        digest = hashlib.sha256()
        for array in arrays:
            digest.update(np.ascontiguousarray(array).tobytes())
        return digest.hexdigest()

    labels = args.labels or args.preferences or f"teacher {args.teacher}, seed {args.teacher_seed}"
    return {"data": str(Path(args.data).resolve()), "format": args.format, "labels": str(labels),
            "transitions": len(offline), "obs_dim": offline.obs_dim, "act_dim": offline.act_dim,
            "pairs": len(prefs), "segment_length": prefs.segment_length,
            "data_sha256": fingerprint(offline.observations, offline.actions, offline.next_observations),
            "labels_sha256": fingerprint(prefs.obs_1, prefs.obs_2, prefs.action_1, prefs.action_2,
                                         prefs.label)}


def check_data_record(out: Path, record: dict[str, Any]) -> None:
    """Write ``<out>/data.json``, or, when resuming (a checkpoint exists), check that the data is the one
    the run started on."""
    path = out / DATA_RECORD
    if path.is_file() and any(out.glob(f"seed=*/{CHECKPOINT}")):
        saved = json.loads(path.read_text())
        differ = sorted(k for k in record if k not in ("data", "labels") and saved.get(k) != record[k])
        if differ:
            before, now = {k: saved.get(k) for k in differ}, {k: record[k] for k in differ}
            raise ValueError(f"{path}: this run was started on other data ({before}, now {now}); use a new "
                             "--out or the same data")
    else:
        write_json(path, record)


def steps_reached(out_dirs: Sequence[Path]) -> int | None:
    """The step of the checkpoints in ``out_dirs`` (the trainer keeps the seeds of a run at one step), or
    None when there are none."""
    steps = [checkpoint_step(path) for path in (folder / CHECKPOINT for folder in out_dirs) if path.is_file()]
    return max(steps, default=None)


def check_resume(out: Path, out_dirs: Sequence[Path], steps: int) -> None:
    """Say that the run resumes, and from which step; refuse ``--steps`` below the step reached."""
    done = steps_reached(out_dirs)
    if done is None:
        return
    if steps < done:
        raise ValueError(f"--steps {steps}: the checkpoints in {out} have reached step {done} already; "
                         f"pass --steps {done} or more to resume, or a new --out to start again")
    print(f"ipl-train: resuming from step {done} (the checkpoints in {out}) to step {steps}", file=sys.stderr)


def take_back_record(out: Path, out_existed: bool) -> None:
    """Undo what a run refused before training wrote: ``<out>/data.json``, and ``out`` if it made it."""
    (out / DATA_RECORD).unlink(missing_ok=True)
    if not out_existed:
        try:
            out.rmdir()
        except OSError:  # absent, or holding files that this run did not write
            pass


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``ipl-train``; returns the exit status (0, or 2 with a message for bad input)."""
    args = parser().parse_args(argv)
    out = Path(args.out)
    out_existed, record_existed = out.exists(), (out / DATA_RECORD).exists()
    try:
        changes = parse_overrides(args.overrides) | {"method": args.method, "device": args.device}
        if args.steps is not None:
            changes["steps"] = args.steps
        cfg = preset(args.preset, **changes)
        offline, prefs = load_data(args)
        out_dirs = [out / f"seed={seed}" for seed in args.seeds]
        check_resume(out, out_dirs, cfg.steps)
        check_data_record(out, data_record(args, offline, prefs))
        if cfg.method in ORACLE_METHODS:
            given = "--labels" if args.labels else "--preferences" if args.preferences else "--teacher"
            print(f"ipl-train: note: --method {cfg.method} trains on the rewards of --data; the labels of "
                  f"{given} are not used", file=sys.stderr)
        print(f"ipl-train: {cfg.method} on {len(offline)} transitions and {len(prefs)} preference pairs of "
              f"{prefs.segment_length} steps, seeds {args.seeds}, {cfg.steps} steps on {cfg.device}",
              file=sys.stderr)
        results = train_seeds(cfg, args.seeds, offline, prefs, out_dirs=out_dirs,
                              progress=not args.no_progress)
    except (ValueError, KeyError) as error:  # DataFormatError is a ValueError: the data layer's message
        if not record_existed and not any(out.glob(f"seed=*/{CHECKPOINT}")):  # refused before training
            take_back_record(out, out_existed)
        print(f"ipl-train: error: {error.args[0] if error.args else error}", file=sys.stderr)
        return 2
    for seed, result, folder in zip(args.seeds, results, out_dirs, strict=True):
        path = save_policy(result.agent, folder / POLICY)
        accuracy = result.metrics.query("kind == 'eval' and metric == 'pref_accuracy'").value
        shown = f", accuracy on the labelled pairs {accuracy.iloc[-1]:.3f}" if len(accuracy) else ""
        print(f"seed {seed}: {result.steps_done} steps{shown}; policy: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
