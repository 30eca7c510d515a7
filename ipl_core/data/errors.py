"""One error type for bad data files, and the checks every loader shares.

Every message names the file, the key or field, and what was expected. Loaders only read: a file that fails
a check raises :class:`DataFormatError` and nothing is written. Taught in the appendix "Datasets and how they
are made" (book/appendix/datasets.ipynb).
"""

from __future__ import annotations

import struct
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np


class DataFormatError(ValueError):
    """A data file that is missing, unreadable, or not in the layout its loader expects."""


READ_ERRORS: tuple[type[Exception], ...] = (
    OSError, KeyError, ValueError, TypeError, RuntimeError, MemoryError, OverflowError, SystemError,
    IndexError, EOFError, NotImplementedError,
)
"""What h5py and numpy raise on a damaged file (a bad header, a broken chunk, an absurd claimed size)."""
NPZ_READ_ERRORS: tuple[type[Exception], ...] = (
    *READ_ERRORS, zipfile.BadZipFile, zlib.error, struct.error, SyntaxError)
"""What reading a damaged ``.npz`` raises besides: a bad zip or CRC, a broken compressed stream, a mangled
``.npy`` header."""

MAX_EXPANSION = 1100
"""How much larger than its stored bytes a dataset may claim to be: gzip's best ratio is about 1030:1."""

NUMERIC_KINDS = "biuf"
"""numpy dtype kinds a loader accepts: bool, signed and unsigned integers, floats."""


def require_file(path: str | Path, what: str) -> Path:
    """``path`` as a Path if it is a non-empty file, else a DataFormatError saying what was expected."""
    path = Path(path)
    if path.is_dir():
        raise DataFormatError(f"{path}: is a folder; expected a file, {what}")
    if not path.is_file():
        raise DataFormatError(f"{path}: no such file; expected {what}")
    if path.stat().st_size == 0:
        raise DataFormatError(f"{path}: the file is empty; expected {what}")
    return path


def damaged(source: str | Path, error: BaseException, what: str) -> DataFormatError:
    """The DataFormatError for a file a library could not read: it names the file and the library's error."""
    return DataFormatError(
        f"{source}: cannot be read ({type(error).__name__}: {error}); expected {what}; the file may be "
        f"truncated or damaged"
    )


@contextmanager
def open_hdf5(path: str | Path, what: str) -> Iterator[Any]:
    """Open an HDF5 file for reading; whatever h5py raises on a damaged file becomes a DataFormatError."""
    import h5py

    path = require_file(path, what)
    try:
        handle = h5py.File(path, "r")
    except READ_ERRORS as error:
        raise damaged(path, error, what) from error
    try:
        yield handle
    except DataFormatError:
        raise
    except READ_ERRORS as error:
        raise damaged(path, error, what) from error
    finally:
        handle.close()


def require_group(handle: Any, key: str, source: str) -> Any:
    """``handle[key]`` if it is an HDF5 group, else a DataFormatError naming the key."""
    import h5py

    if key not in handle:
        raise DataFormatError(f"{source}: missing group {key!r}; expected it among {sorted(handle.keys())}")
    item = handle[key]
    if not isinstance(item, h5py.Group):
        raise DataFormatError(f"{source}: {key!r} is a {type(item).__name__}; expected an HDF5 group")
    return item


def require_numeric(array: np.ndarray, name: str, source: str) -> np.ndarray:
    """``array`` if its dtype is bool, integer or float, else a DataFormatError naming ``name``."""
    if array.dtype.kind not in NUMERIC_KINDS:
        raise DataFormatError(
            f"{source}: key {name!r} holds dtype {array.dtype}; expected numbers (bool, integer or float)"
        )
    return array


def read_npz(path: str | Path, keys: tuple[str, ...], what: str,
             optional: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
    """The numeric arrays ``keys`` (each required) and ``optional`` (read where present) of an ``.npz``.

    Each member's header is read first: a missing key, a non-numeric or object dtype, or a shape whose
    bytes the stored member cannot hold (up to :data:`MAX_EXPANSION` for a compressed one) raises
    DataFormatError naming the file and the key before any array is allocated; a truncated or damaged
    archive (a bad zip, a bad CRC, a broken compressed stream) raises one naming the file.
    """
    path = require_file(path, what)
    source = str(path)
    arrays = {}
    try:
        with zipfile.ZipFile(path) as archive:
            members = {name.removesuffix(".npy"): archive.getinfo(name) for name in archive.namelist()
                       if name.endswith(".npy")}
            missing = [key for key in keys if key not in members]
            if missing:
                raise DataFormatError(f"{source}: missing key(s) {missing}; expected {list(keys)} "
                                      f"(found {sorted(members)})")
            for key in (*keys, *(k for k in optional if k in members)):
                info = members[key]
                with archive.open(info) as handle:
                    arrays[key] = _read_member(handle, info, key, source)
    except DataFormatError:
        raise
    except NPZ_READ_ERRORS as error:
        raise damaged(source, error, what) from error
    return arrays


def _read_member(handle: Any, info: Any, key: str, source: str) -> np.ndarray:
    """One ``.npy`` member of an open zip: its header checked against what the member stores, then its
    bytes, exactly as many as the header claims."""
    version = np.lib.format.read_magic(handle)
    read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                   else np.lib.format.read_array_header_2_0)
    shape, fortran_order, dtype = read_header(handle)
    if dtype.kind not in NUMERIC_KINDS or dtype.hasobject:
        raise DataFormatError(f"{source}: key {key!r} holds dtype {dtype}; expected numbers (bool, integer "
                              f"or float)")
    claimed = int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
    stored = info.compress_size if info.compress_type else info.file_size
    if claimed > MAX_EXPANSION * stored + (1 << 20):
        raise DataFormatError(f"{source}: key {key!r} claims shape {shape} ({claimed} bytes) but stores "
                              f"{stored} bytes; the file is damaged")
    data = handle.read(claimed)
    if len(data) != claimed:
        raise EOFError(f"key {key!r}: {len(data)} of {claimed} bytes")
    return np.frombuffer(data, dtype=dtype).reshape(shape, order="F" if fortran_order else "C").copy()


def read_hdf5_array(handle: Any, key: str, source: str, ndim: tuple[int, ...]) -> np.ndarray:
    """Read the dataset ``handle[key]`` whole, checking that it is a numeric dataset of rank in ``ndim``.

    A missing key, a group where a dataset belongs, a non-numeric dtype, a size the stored bytes cannot
    hold, a truncated file, or a wrong rank raises DataFormatError naming ``source`` and ``key``.
    A trailing axis of length 1 is dropped when rank 1 is allowed (some files store (N, 1) rewards).
    """
    import h5py

    if key not in handle:
        present = sorted(handle.keys()) if hasattr(handle, "keys") else []
        raise DataFormatError(f"{source}: missing key {key!r}; expected it among the keys (found {present})")
    item = handle[key]
    if not isinstance(item, h5py.Dataset):
        raise DataFormatError(f"{source}: key {key!r} is a {type(item).__name__}; expected an HDF5 dataset")
    if item.dtype.kind not in NUMERIC_KINDS:
        raise DataFormatError(
            f"{source}: key {key!r} holds dtype {item.dtype}; expected numbers (bool, integer or float)"
        )
    stored = item.id.get_storage_size()
    if item.nbytes > MAX_EXPANSION * stored + (1 << 20):
        raise DataFormatError(
            f"{source}: key {key!r} claims shape {item.shape} ({item.nbytes} bytes) but stores {stored} "
            f"bytes; the file is damaged"
        )
    try:
        array = np.asarray(item[()])
    except READ_ERRORS as error:
        raise DataFormatError(
            f"{source}: key {key!r} cannot be read ({type(error).__name__}: {error}); the file may be "
            f"truncated"
        ) from error
    if array.ndim == 2 and array.shape[1] == 1 and 1 in ndim:
        array = array[:, 0]
    if array.ndim not in ndim:
        raise DataFormatError(
            f"{source}: key {key!r} has shape {array.shape}; expected {' or '.join(map(str, ndim))} dims"
        )
    return array


def read_flags(array: np.ndarray, key: str, source: str) -> np.ndarray:
    """0/1 flags (``terminals``, ``timeouts``, ``dones``) as bool; NaN or other values raise, naming the key.

    Checked before the cast, so a NaN never becomes True.
    """
    require_numeric(array, key, source)
    if array.dtype != bool:
        bad = ~np.isin(array, (0, 1))
        if bad.any():
            shown = sorted({str(v) for v in array[bad][:20].tolist()})[:5]
            raise DataFormatError(
                f"{source}: key {key!r} holds {int(bad.sum())} values other than 0 and 1 (e.g. {shown}); "
                f"expected booleans or 0/1"
            )
    return array.astype(bool)


def as_float32(array: np.ndarray, key: str, source: str) -> np.ndarray:
    """``array`` as float32; NaN, infinite values or values beyond float32's range raise, naming the key."""
    require_numeric(array, key, source)
    if array.dtype.kind == "f":
        bad = ~np.isfinite(array) | (np.abs(array) > np.finfo(np.float32).max)
        if bad.any():
            raise DataFormatError(
                f"{source}: key {key!r} holds {int(bad.sum())} NaN, infinite or out-of-float32-range values; "
                f"expected finite numbers"
            )
    return array.astype(np.float32)
