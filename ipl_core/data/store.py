"""Where generated datasets live, and the manifest that lets a generator re-use its earlier output.

Each generated file ``<name>`` has a ``<name>.manifest.json`` beside it: generator, parameters, seed,
package versions, the sha256 of the data file, and how long the build took on which machine.
:func:`cached` re-uses the file when generator, parameters and seed match and the hash still holds;
otherwise it rebuilds it (atomically: temporary file, then rename; the manifest is written last, so an
interrupted run is simply redone). Building takes an exclusive lock on ``<name>.lock`` (:func:`file_lock`),
so cells that run in parallel and need the same file build it once and the others re-use it. The data
root is ``$IPL_DATA_DIR``, else ``data/`` at the repository root (git-ignored). Taught in the appendix
"Datasets and how they are made" (book/appendix/datasets.ipynb).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import platform
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from ipl_core.io import REPO_ROOT, atomic_write, write_json

DATA_DIR_ENV = "IPL_DATA_DIR"
"""Environment variable that overrides the data root."""

RECORDED_PACKAGES = ("numpy", "h5py", "gymnasium", "mujoco", "metaworld", "minari", "torch")


def data_root() -> Path:
    """``$IPL_DATA_DIR`` if set, else ``<repository>/data``."""
    return Path(os.environ.get(DATA_DIR_ENV, REPO_ROOT / "data"))


def package_versions(names: tuple[str, ...] = RECORDED_PACKAGES) -> dict[str, str]:
    """Installed versions of ``names`` (``"missing"`` for one that is not installed)."""
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "missing"
    return versions


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def manifest_path(path: str | Path) -> Path:
    """The manifest beside a data file."""
    path = Path(path)
    return path.with_name(path.name + ".manifest.json")


def read_manifest(path: str | Path) -> dict[str, Any] | None:
    """The manifest of a data file, or None when it is missing or unreadable."""
    try:
        return json.loads(manifest_path(path).read_text())
    except (OSError, json.JSONDecodeError):
        return None


def is_current(path: str | Path, generator: str, params: dict[str, Any], seed: int) -> bool:
    """True when ``path`` exists and its manifest matches generator, parameters, seed and the file's hash."""
    path = Path(path)
    manifest = read_manifest(path)
    if manifest is None or not path.is_file():
        return False
    wanted = json.loads(json.dumps({"generator": generator, "params": params, "seed": seed}))
    same = all(manifest.get(key) == value for key, value in wanted.items())
    return same and manifest.get("sha256") == sha256_file(path)


@contextmanager
def file_lock(path: str | Path) -> Iterator[Path]:
    """Hold an exclusive ``fcntl.flock`` on ``path`` (created if missing) for the ``with`` block; other
    processes wait. The kernel releases it when the holder dies, so a killed run leaves no stale lock."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield path
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def lock_path(path: str | Path) -> Path:
    """The lock file beside a data file."""
    path = Path(path)
    return path.with_name(path.name + ".lock")


def cached(
    path: str | Path, generator: str, params: dict[str, Any], seed: int, build: Callable[[Path], None]
) -> tuple[Path, bool]:
    """Re-use ``path`` if its manifest matches, else ``build(tmp)`` it atomically and write its manifest.

    Returns the path and whether it was re-used. ``params`` must be JSON-serialisable. The build holds
    the file's lock (:func:`lock_path`); a process that waited for it re-uses what the holder built.
    """
    path = Path(path)
    if is_current(path, generator, params, seed):
        return path, True
    with file_lock(lock_path(path)):
        if is_current(path, generator, params, seed):  # built by another process while this one waited
            return path, True
        manifest_path(path).unlink(missing_ok=True)
        start = time.perf_counter()
        atomic_write(path, build)
        write_manifest(path, generator, params, seed, time.perf_counter() - start)
    return path, False


def write_manifest(path: str | Path, generator: str, params: dict[str, Any], seed: int,
                   build_seconds: float | None) -> None:
    """Write the manifest of the finished data file ``path`` (last, so a manifest means a whole file)."""
    path = Path(path)
    write_json(manifest_path(path), {
        "generator": generator, "params": params, "seed": seed, "file": path.name,
        "sha256": sha256_file(path), "packages": package_versions(),
        "build_seconds": None if build_seconds is None else round(build_seconds, 3),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
    })


def find_manifests(folder: str | Path) -> list[dict[str, Any]]:
    """Every manifest under ``folder`` (recursively), each with its ``path``; [] when the folder is absent."""
    records = []
    for path in sorted(Path(folder).rglob("*.manifest.json")):
        try:
            record = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        records.append(record | {"path": str(path)})
    return records
