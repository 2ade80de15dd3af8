"""A frame table's pixel arrays, left on disk: rows of one or more `.npy` files, read on demand.

Why not one array in RAM: under torchrun every rank builds the frame table, and a concatenated
table would put a private copy of every frame of the study into every rank (8 GPUs x a 60 GB
table). A RowStore holds only file names and row offsets; `store[rows]` reads just those rows
with `os.pread`, so a rank reads exactly the frames its sampler hands it (disjoint across ranks,
see train.loop.EpochBatches) and the ranks of one machine share the operating system's page
cache instead of holding copies. No file stays open, so tens of thousands of cache entries never
run into the open-file limit, and a RowStore pickles in a few kilobytes (DataLoader workers).

Each part is a row range [start, stop) of a C-ordered `.npy` file: a per-recording cache entry
(whole file) or a recording's slice of a packed shard (neometer.data.cache.pack_cache)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from neometer.errors import NeometerError


@dataclass(frozen=True)
class NpyLayout:
    """Where an .npy file's rows are: byte offset of row 0, row shape and dtype."""

    data_offset: int
    rows: int
    row_shape: tuple[int, ...]
    dtype: np.dtype

    @property
    def row_bytes(self) -> int:
        return int(np.prod(self.row_shape, dtype=np.int64)) * self.dtype.itemsize


def npy_layout(path: str | Path) -> NpyLayout:
    """Parse an .npy header (the format numpy documents), without reading the data."""
    with open(path, "rb") as f:
        version = np.lib.format.read_magic(f)
        read_header = {(1, 0): np.lib.format.read_array_header_1_0,
                       (2, 0): np.lib.format.read_array_header_2_0}.get(version)
        if read_header is None:
            raise NeometerError(f"{path}: .npy format {version} is not one the frame cache writes — delete this entry")
        shape, fortran, dtype = read_header(f)
        offset = f.tell()
    if fortran and len(shape) > 1:
        raise NeometerError(f"{path}: Fortran-ordered array; the frame cache writes C order — delete this entry")
    if dtype.hasobject or not shape:
        raise NeometerError(f"{path}: not an array of rows — delete this cache entry")
    return NpyLayout(offset, int(shape[0]), tuple(int(s) for s in shape[1:]), dtype)


class RowStore:
    """Read-only rows gathered from parts (path, start, stop) of .npy files with one row shape.
    Indexing (int, slice, integer or boolean array) returns an ndarray with only those rows
    read; `take(rows)` is a lazy view; `np.asarray(store)` reads everything."""

    def __init__(self, parts: list[tuple[str, int, int]], row_shape: tuple[int, ...], dtype,
                 rows: np.ndarray | None = None, layouts: dict | None = None):
        self.parts = [(str(p), int(a), int(b)) for p, a, b in parts]
        self.row_shape, self.dtype = tuple(row_shape), np.dtype(dtype)
        self._layouts = layouts if layouts is not None else {}
        self._offsets = np.concatenate([[0], np.cumsum([b - a for _, a, b in self.parts])]).astype(np.int64)
        self._rows = None if rows is None else np.asarray(rows, np.int64)

    @classmethod
    def from_parts(cls, parts: list[tuple[str | Path, int, int]]) -> "RowStore":
        """Checks every part's header (same row shape and dtype, range inside the file)."""
        layouts, problems = {}, []
        for path, start, stop in parts:
            path = str(path)
            if path not in layouts:
                layouts[path] = npy_layout(path)
            lay = layouts[path]
            if not 0 <= start <= stop <= lay.rows:
                problems.append(f"{path}: rows {start}:{stop} outside its {lay.rows} rows")
        if not parts:
            raise NeometerError("a frame table needs at least one recording")
        first = layouts[str(parts[0][0])]
        problems += [f"{p}: rows of {lay.row_shape} {lay.dtype}, the table has {first.row_shape} {first.dtype}"
                     for p, lay in layouts.items() if (lay.row_shape, lay.dtype) != (first.row_shape, first.dtype)]
        if problems:
            raise NeometerError("the frame cache is inconsistent; delete the folders named (they are rebuilt)",
                                problems=problems)
        return cls(parts, first.row_shape, first.dtype, layouts=layouts)

    # --- shape ------------------------------------------------------------------------------

    def __len__(self) -> int:
        return int(self._offsets[-1]) if self._rows is None else len(self._rows)

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self), *self.row_shape)

    @property
    def ndim(self) -> int:
        return 1 + len(self.row_shape)

    @property
    def nbytes(self) -> int:
        return len(self) * int(np.prod(self.row_shape, dtype=np.int64)) * self.dtype.itemsize

    # --- reading ----------------------------------------------------------------------------

    def _positions(self, key) -> tuple[np.ndarray, bool]:
        """(rows of the underlying parts, whether key was a single int)."""
        n = len(self)
        if isinstance(key, (int, np.integer)):
            if not -n <= key < n:
                raise IndexError(f"row {key} out of range for {n} rows")
            pos, scalar = np.asarray([key % n], np.int64), True
        elif isinstance(key, slice):
            pos, scalar = np.arange(n, dtype=np.int64)[key], False
        else:
            key = np.asarray(key)
            if key.dtype == bool:
                if key.shape != (n,):
                    raise IndexError(f"boolean index of shape {key.shape} for {n} rows")
                key = np.flatnonzero(key)
            pos = key.astype(np.int64)
            if pos.size and (pos.min() < -n or pos.max() >= n):
                raise IndexError(f"row index out of range for {n} rows")
            pos, scalar = pos % max(n, 1), False
        return (pos if self._rows is None else self._rows[pos]), scalar

    def __getitem__(self, key):
        if isinstance(key, tuple):  # store[rows, ...]: rows first, the rest on the result
            return self[key[0]][(slice(None), *key[1:])] if not isinstance(key[0], (int, np.integer)) \
                else self[key[0]][key[1:]]
        rows, scalar = self._positions(key)
        out = self._read(rows)
        return out[0] if scalar else out

    def _read(self, rows: np.ndarray) -> np.ndarray:
        out = np.empty((len(rows), *self.row_shape), self.dtype)
        part = np.searchsorted(self._offsets, rows, side="right") - 1
        for p in np.unique(part):
            path, start, _ = self.parts[p]
            lay = self._layout(path)
            where = np.flatnonzero(part == p)
            file_rows = rows[where] - self._offsets[p] + start
            try:
                fd = os.open(path, os.O_RDONLY)
            except FileNotFoundError:
                raise NeometerError(f"{path}: this frame cache file is gone (was the cache cleared or packed while "
                                    "the job ran?) — start the job again; it rebuilds the table from what is there") \
                    from None
            try:
                for i, r in zip(where, file_rows):
                    buf = os.pread(fd, lay.row_bytes, lay.data_offset + int(r) * lay.row_bytes)
                    if len(buf) != lay.row_bytes:
                        raise NeometerError(f"{path}: truncated (row {r}); delete this cache entry, it is rebuilt")
                    out[i] = np.frombuffer(buf, self.dtype).reshape(self.row_shape)
            finally:
                os.close(fd)
        return out

    def _layout(self, path: str) -> NpyLayout:
        if path not in self._layouts:
            self._layouts[path] = npy_layout(path)
        return self._layouts[path]

    def __array__(self, dtype=None, copy=None):
        out = self._read(self._positions(slice(None))[0])
        return out if dtype is None else out.astype(dtype)

    def take(self, rows) -> "RowStore":
        """A lazy view of `rows` (nothing is read)."""
        pos, _ = self._positions(np.asarray(rows, np.int64))
        return RowStore(self.parts, self.row_shape, self.dtype, pos, self._layouts)

    def files(self, rows=None) -> set[str]:
        """The files `rows` (default: every row) would be read from."""
        pos = self._positions(slice(None) if rows is None else np.asarray(rows, np.int64))[0]
        return {self.parts[p][0] for p in np.unique(np.searchsorted(self._offsets, pos, side="right") - 1)}

    def __repr__(self) -> str:
        return f"RowStore({len(self)} rows of {self.row_shape} {self.dtype} in {len(self.parts)} parts)"


__all__ = ["NpyLayout", "RowStore", "npy_layout"]
