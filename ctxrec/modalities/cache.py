"""A content-addressed cache of encoder outputs on disk.

Encoding a catalogue is the slow step of ingestion; most re-runs change a few items.
:class:`FeatureCache` keys every vector by what determines it -- the encoder's weights,
its preprocessing settings and the input's content -- so only new or changed inputs
are encoded again.

Layout (no pickle anywhere)::

    root/
      <sha256(weights_id)[:20]>/      one folder per encoder weights
        meta.json                     what the folder holds (for people; not read back)
        shard-<uuid>.npz              keys [n] (hex str), vectors [n, dim] float32, mask [n] bool
        .shard-<uuid>.npz.tmp         a write in progress (or killed): ignored

A shard is written to a temporary file and renamed into place with :func:`os.replace`,
so a process killed mid-write leaves at most an ignored temporary file, never a
half-written shard. Several processes may share one cache folder.
"""
from __future__ import annotations

import hashlib
import json
import os
import uuid
import warnings
import zipfile
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import Tensor

from ctxrec.modalities.base import Encoder, is_missing

_SHARD_PREFIX = "shard-"
_SHARD_SUFFIX = ".npz"


class FeatureCacheWarning(UserWarning):
    """A cache file could not be read and was skipped (its entries are encoded again)."""


class FeatureCache:
    """Encode through a cache keyed by ``sha256(weights_id + config + content)``.

    The content of a string input is its UTF-8; of a file input (a path, when the
    encoder :attr:`~Encoder.reads_files` or the value is a :class:`os.PathLike`) the
    sha256 of the file's bytes, so renaming or copying a file costs nothing and
    editing it in place is noticed. Missing inputs (and missing files) give zero rows
    with a ``False`` mask without calling the encoder.

    Args:
        root (str | Path): The cache folder; created when first written.
        shard_size (int, optional): Most rows per shard file. (default: ``65536``)

    Attributes:
        hits (int): Present inputs served from the cache, over all calls.
        misses (int): Present inputs not in the cache, over all calls.
        encoded (int): Distinct inputs sent to an encoder, over all calls.

    Example:
        >>> cache = FeatureCache("~/.cache/ctxrec/features")    # doctest: +SKIP
        >>> x, mask = cache.encode(get_encoder("text"), items["description"])  # doctest: +SKIP
        >>> x, mask = cache.encode(get_encoder("text"), items["description"])  # doctest: +SKIP
        >>> cache.misses                                        # doctest: +SKIP
        0   # (only for the second call: counters add up over calls)
    """

    def __init__(self, root: str | Path, shard_size: int = 65536) -> None:
        if shard_size < 1:
            raise ValueError(f"`shard_size` must be a positive integer, got {shard_size!r}")
        self.root = Path(root).expanduser()
        self.shard_size = shard_size
        self.hits = 0
        self.misses = 0
        self.encoded = 0
        # folder -> key -> (shard file name, row); folder -> shard names already read
        self._index: dict[Path, dict[str, tuple[str, int]]] = {}
        self._read: dict[Path, set[str]] = {}
        self._file_digests: dict[tuple[str, int, int], str] = {}

    def encode(
        self,
        encoder: Encoder,
        inputs: Sequence[Any],
        batch_size: int | None = None,
        progress: bool = False,
    ) -> tuple[Tensor, Tensor]:
        """Like ``encoder.encode_all(inputs)``, but encode only what the cache lacks.

        Args:
            encoder (Encoder): The encoder.
            inputs (Sequence[Any]): Values of the encoder's input column.
            batch_size (int, optional): Passed to :meth:`Encoder.encode_all` for the misses.
                (default: the encoder's own batch size, else 64)
            progress (bool, optional): Progress bar while encoding the misses.
                (default: :obj:`False`)

        Returns:
            tuple[Tensor, Tensor]: ``([N, output_dim] float32, [N] bool presence mask)``,
            identical to what the encoder would return.
        """
        inputs = list(inputs)
        folder = self.folder(encoder)
        prefix = _key_prefix(encoder)
        files = encoder.reads_files
        keys = [self._key(prefix, value, files) for value in inputs]
        index = self._refresh(folder)

        present = [i for i, k in enumerate(keys) if k is not None]
        hit_rows = [i for i in present if keys[i] in index]
        miss_rows = [i for i in present if keys[i] not in index]
        self.hits += len(hit_rows)
        self.misses += len(miss_rows)

        fresh: dict[str, tuple[np.ndarray, bool]] = {}
        if miss_rows:
            todo: dict[str, int] = {}
            for i in miss_rows:
                todo.setdefault(keys[i], i)
            todo_keys = list(todo)
            x, mask = encoder.encode_all([inputs[i] for i in todo.values()], batch_size=batch_size, progress=progress)
            self.encoded += len(todo_keys)
            vectors = x.detach().to("cpu", torch.float32).numpy()
            flags = mask.detach().cpu().numpy().astype(bool)
            self._write(folder, encoder, todo_keys, vectors, flags)
            fresh = {k: (vectors[j], bool(flags[j])) for j, k in enumerate(todo_keys)}

        cached = self._gather(folder, {keys[i] for i in hit_rows}, index)
        found = {**cached, **fresh}
        if found:
            dim = len(next(iter(found.values()))[0])
        else:
            dim = encoder.output_dim
        out = np.zeros((len(inputs), dim), dtype=np.float32)
        out_mask = np.zeros(len(inputs), dtype=bool)
        for i in present:
            vector, flag = found[keys[i]]
            if len(vector) != dim:
                raise ValueError(
                    f"Cached vectors in {folder} have different widths ({len(vector)} and {dim}); "
                    "the encoder changed output size without changing weights_id() or config(). "
                    "Delete the folder or fix the encoder"
                )
            out[i] = vector
            out_mask[i] = flag
        return torch.from_numpy(out), torch.from_numpy(out_mask)

    def folder(self, encoder: Encoder) -> Path:
        """The folder holding ``encoder``'s vectors."""
        digest = hashlib.sha256(encoder.weights_id().encode("utf-8")).hexdigest()[:20]
        return self.root / digest

    # -- keys ---------------------------------------------------------------------
    def _key(self, prefix: bytes, value: Any, files: bool) -> str | None:
        content = self._content(value, files)
        if content is None:
            return None
        return hashlib.sha256(prefix + content).hexdigest()

    def _content(self, value: Any, files: bool) -> bytes | None:
        """A digest of the input's content, tagged with its kind; None when missing."""
        if is_missing(value):
            return None
        if isinstance(value, os.PathLike) or (files and isinstance(value, str)):
            return self._file_content(Path(value).expanduser())
        if isinstance(value, str):
            return b"text:" + hashlib.sha256(value.encode("utf-8")).digest()
        if isinstance(value, bytes):
            return b"bytes:" + hashlib.sha256(value).digest()
        if isinstance(value, Tensor):
            value = value.detach().cpu().numpy()
        if isinstance(value, np.ndarray):
            head = f"array:{value.dtype.str}:{value.shape}:".encode()
            return head + hashlib.sha256(np.ascontiguousarray(value).tobytes()).digest()
        raise TypeError(
            f"FeatureCache cannot hash an input of type {type(value).__name__} ({value!r:.80}); "
            "expected a string, a path, bytes, a numpy array or a tensor"
        )

    def _file_content(self, path: Path) -> bytes | None:
        try:
            stat = path.stat()
        except OSError:
            return None  # a missing file is a missing input
        if not path.is_file():
            return None
        memo = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
        digest = self._file_digests.get(memo)
        if digest is None:
            h = hashlib.sha256()
            with open(path, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
            digest = self._file_digests[memo] = h.hexdigest()
        return b"file:" + digest.encode()

    # -- storage ------------------------------------------------------------------
    def _refresh(self, folder: Path) -> dict[str, tuple[str, int]]:
        """Index shards written since the last look (by this or another process)."""
        index = self._index.setdefault(folder, {})
        read = self._read.setdefault(folder, set())
        if not folder.is_dir():
            return index
        for entry in sorted(os.scandir(folder), key=lambda e: e.name):
            name = entry.name
            if name in read or not (name.startswith(_SHARD_PREFIX) and name.endswith(_SHARD_SUFFIX)):
                continue
            read.add(name)
            try:
                with np.load(entry.path, allow_pickle=False) as data:
                    shard_keys = data["keys"]
            except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as e:
                warnings.warn(f"Skipping unreadable cache shard {entry.path}: {e}", FeatureCacheWarning, stacklevel=3)
                continue
            for row, key in enumerate(shard_keys.tolist()):
                index.setdefault(key, (name, row))
        return index

    def _gather(self, folder: Path, wanted: set[str], index: dict) -> dict[str, tuple[np.ndarray, bool]]:
        by_shard: dict[str, list[tuple[str, int]]] = {}
        for key in wanted:
            name, row = index[key]
            by_shard.setdefault(name, []).append((key, row))
        found = {}
        for name, entries in by_shard.items():
            with np.load(folder / name, allow_pickle=False) as data:
                vectors, mask = data["vectors"], data["mask"]
            for key, row in entries:
                found[key] = (vectors[row], bool(mask[row]))
        return found

    def _write(self, folder: Path, encoder: Encoder, keys: list[str], vectors: np.ndarray, mask: np.ndarray) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        meta = folder / "meta.json"
        if not meta.exists():
            info = {
                "weights_id": encoder.weights_id(),
                "encoder": f"{type(encoder).__module__}:{type(encoder).__qualname__}",
                "name": encoder.name,
                "modality": encoder.modality,
                "space": encoder.space,
            }
            _atomic_write(meta, lambda f: f.write(json.dumps(info, indent=2).encode("utf-8")))
        index = self._index.setdefault(folder, {})
        read = self._read.setdefault(folder, set())
        for start in range(0, len(keys), self.shard_size):
            stop = start + self.shard_size
            arrays = {
                "keys": np.array(keys[start:stop], dtype="U64"),
                "vectors": np.ascontiguousarray(vectors[start:stop], dtype=np.float32),
                "mask": np.asarray(mask[start:stop], dtype=bool),
            }
            name = f"{_SHARD_PREFIX}{uuid.uuid4().hex}{_SHARD_SUFFIX}"
            _atomic_write(folder / name, lambda f: np.savez(f, **arrays))
            read.add(name)
            for row, key in enumerate(keys[start:stop]):
                index.setdefault(key, (name, row))


def _key_prefix(encoder: Encoder) -> bytes:
    spec = {"weights_id": encoder.weights_id(), "config": encoder.cache_config()}
    return hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode("utf-8")).digest()


def _atomic_write(path: Path, write) -> None:
    """Write through a temporary file in the same folder, then rename into place."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
