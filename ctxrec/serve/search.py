"""Search items with a query of any modality: text, an image file or an audio clip.

For each kind of item vector (``text``, ``image``, ``audio``, ...) the query reaches it by
one of two routes:

- **shared**: the encoder that made the item vectors has a tower for the query's modality
  (:meth:`~ctxrec.modalities.base.Encoder.towers`: CLIP's text tower for images, CLAP's for
  sounds, the text model for text), so query and items compare directly;
- **aligned**: an :class:`~ctxrec.fusion.align.Alignment` has heads for the item vectors
  and for some other vectors whose encoder takes the query's modality (for example MiniLM
  ``text``), so both are projected into the learned shared space.

``via="auto"`` (the default) compares a query with vectors of its own modality directly
(text with text), and otherwise takes the aligned route where an alignment covers the item
vectors (someone fitted it on this catalogue for a reason: towers of random or unrelated
weights share a space only in shape), else the shared one.

Scores are cosine similarities; with several reachable vectors an item's score is the mean
over those it has. Each result says which route found it.

Example:
    >>> search = ItemSearch.from_features("features", alignment=Alignment.load("features/alignment"))  # doctest: +SKIP
    >>> search.search("a red star", target="image", k=5)                                              # doctest: +SKIP
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff")
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif")


def guess_modality(query: Any) -> str:
    """``"image"`` / ``"audio"`` for a path with such a suffix, else ``"text"``."""
    if isinstance(query, Path) or (isinstance(query, str) and "\n" not in query and len(query) < 4096):
        suffix = Path(str(query)).suffix.lower()
        if suffix in IMAGE_SUFFIXES:
            return "image"
        if suffix in AUDIO_SUFFIXES:
            return "audio"
    return "text"


@dataclass
class _Route:
    target: str  # item vector name
    via: str  # "shared" | "aligned"
    encoder: Any  # embeds the query
    source: Optional[str] = None  # aligned: the vector name whose head projects the query

    def describe(self) -> str:
        if self.via == "shared":
            return f"{self.encoder.name}->{self.target}"
        return f"{self.source}~{self.target} (aligned)"


class ItemSearch:
    """Cross-modal nearest items over a catalogue's vectors.

    Args:
        ids: item ids, one per row of every matrix.
        vectors: vector name -> ``[N, d]`` matrix (rows of zeros count as absent).
        encoders: vector name -> the :class:`~ctxrec.modalities.base.Encoder` that made it.
        alignment: optional :class:`~ctxrec.fusion.align.Alignment` whose heads are named
            like the vectors.
    """

    def __init__(self, ids: Sequence[str], vectors: Mapping[str, Any], encoders: Mapping[str, Any],
                 alignment=None) -> None:
        self.ids = np.asarray([str(i) for i in ids])
        missing = sorted(set(vectors) - set(encoders))
        if missing:
            raise ValueError(f"ItemSearch: no encoder given for vectors {missing}; pass encoders={{name: Encoder}}")
        self.vectors: Dict[str, torch.Tensor] = {}
        for name, mat in vectors.items():
            mat = torch.as_tensor(np.asarray(mat), dtype=torch.float32)
            if mat.dim() != 2 or mat.size(0) != len(self.ids):
                raise ValueError(f"ItemSearch: vectors {name!r} must be [{len(self.ids)}, d], got {tuple(mat.shape)}")
            self.vectors[name] = mat
        self.present = {name: mat.abs().sum(1) > 0 for name, mat in self.vectors.items()}
        self.encoders = dict(encoders)
        self.alignment = alignment

    @property
    def alignment(self):
        """The :class:`~ctxrec.fusion.align.Alignment` in use (``None``: shared spaces only);
        assign a fitted one to start using it."""
        return self._alignment

    @alignment.setter
    def alignment(self, value) -> None:
        self._alignment = value
        self._projected: Dict[Tuple[str, str], torch.Tensor] = {}  # item vectors through its heads

    # -- construction ---------------------------------------------------------------
    @classmethod
    def from_features(cls, folder: str | Path, names: Optional[Sequence[str]] = None, alignment=None) -> "ItemSearch":
        """From a folder written by ``ctxrec encode --out`` (Parquet + manifest); the encoders
        are rebuilt from the manifest."""
        from ctxrec.modalities.vector_files import load_encoder, read_manifest, read_vectors

        names = list(names or read_manifest(folder)["vectors"])
        frames = {n: read_vectors(folder, n, label="Item") for n in names}
        ids = sorted(set().union(*(f["id"] for f in frames.values())))
        mats = {n: _align_rows(ids, f["id"], np.stack(f["vector"]) if len(f) else None) for n, f in frames.items()}
        return cls(ids, mats, {n: load_encoder(folder, n) for n in names}, alignment)

    @classmethod
    def from_store(cls, store, encoders: Mapping[str, Any], alignment=None) -> "ItemSearch":
        """From the Item vectors a store holds; ``encoders`` maps each vector name to the
        encoder (or registered name) that made it."""
        from ctxrec.modalities.registry import get_encoder

        encoders = {n: get_encoder(e) if isinstance(e, str) else e for n, e in encoders.items()}
        read = {n: store.read_vectors("Item", n) for n in encoders}
        ids = store.read_nodes("Item")["id"].astype(str).tolist()
        mats = {n: _align_rows(ids, vid, mat if len(vid) else None) for n, (vid, mat) in read.items()}
        return cls(ids, mats, encoders, alignment)

    # -- routing --------------------------------------------------------------------
    def routes(self, modality: str, target: Optional[str] = None, via: str = "auto") -> List[_Route]:
        """How a query of ``modality`` reaches each item vector (or just ``target``).

        ``via``: ``"auto"`` (aligned where an alignment covers the vectors, else shared),
        ``"shared"`` or ``"aligned"``.
        """
        if via not in ("auto", "shared", "aligned"):
            raise ValueError(f"`via` must be 'auto', 'shared' or 'aligned', got {via!r}")
        targets = [target] if target is not None else list(self.vectors)
        out = []
        for t in targets:
            if t not in self.vectors:
                raise ValueError(f"No item vectors named {t!r}; this catalogue has {sorted(self.vectors)}")
            tower = self.encoders[t].towers().get(modality) if via != "aligned" else None
            # a text query against text vectors: the same encoder on both sides beats any head
            own = via == "auto" and tower is not None and self.encoders[t].modality == modality
            source = self._aligned_source(modality, t) if via != "shared" and not own else None
            if source is not None:
                out.append(_Route(t, "aligned", self.encoders[source].towers()[modality], source))
            elif tower is not None:
                out.append(_Route(t, "shared", tower))
        return out

    def _aligned_source(self, modality: str, target: str) -> Optional[str]:
        heads = set(self.alignment.dims) if self.alignment is not None else set()
        if target not in heads:
            return None
        candidates = [s for s in self.vectors if s != target and s in heads and modality in self.encoders[s].towers()]
        # prefer vectors made by an encoder of the query's own modality (MiniLM text for a text query)
        candidates.sort(key=lambda s: (self.encoders[s].modality != modality, s))
        return candidates[0] if candidates else None

    # -- search ---------------------------------------------------------------------
    @torch.no_grad()
    def search(self, query: Any, modality: Optional[str] = None, target: Optional[str] = None, k: int = 10,
               exclude: Sequence[str] = (), via: str = "auto") -> pd.DataFrame:
        """The ``k`` items nearest to ``query``.

        Args:
            query: a text, or the path of an image or audio file.
            modality: the query's modality (default: guessed from a path's suffix, else text).
            target: search only these item vectors (default: every reachable one).
            k: results to return.
            exclude: item ids to leave out.
            via: ``"auto"``, ``"shared"`` or ``"aligned"`` (see the module doc).

        Returns:
            pd.DataFrame: ``id, score, via`` best first, ``score`` the cosine (mean over routes).
        """
        if not isinstance(k, int) or k < 1:
            raise ValueError(f"`k` must be a positive integer, got {k!r}")
        modality = modality or guess_modality(query)
        routes = self.routes(modality, target, via)
        if not routes:
            have = {n: sorted(e.towers()) for n, e in self.encoders.items()}
            aligned = sorted(self.alignment.dims) if self.alignment is not None else "none"
            raise ValueError(
                f"A {modality} query cannot reach item vectors {[target] if target else sorted(self.vectors)}: "
                f"no encoder of theirs has a {modality} tower (towers: {have}) and no alignment links them "
                f"(alignment heads: {aligned}). Encode the items with an encoder sharing a space with "
                f"{modality} queries (`ctxrec encoders list`), or fit an Alignment over the vectors "
                f"(`ctxrec align --features FOLDER`, or Alignment.fit)"
            )
        total = torch.zeros(len(self.ids))
        count = torch.zeros(len(self.ids))
        vias = np.full(len(self.ids), "", dtype=object)
        for route in routes:
            scores = self._scores(route, query)
            ok = self.present[route.target]
            total += torch.where(ok, scores, torch.zeros_like(scores))
            count += ok.float()
            vias[ok.numpy()] = [(v + "," if v else "") + route.describe() for v in vias[ok.numpy()]]
        score = torch.where(count > 0, total / count.clamp(min=1), torch.full_like(total, float("-inf")))
        if len(exclude):
            score[torch.from_numpy(np.isin(self.ids, [str(e) for e in exclude]))] = float("-inf")
        top = torch.topk(score, min(k, len(self.ids)))
        keep = torch.isfinite(top.values)
        idx = top.indices[keep].numpy()
        return pd.DataFrame({"id": self.ids[idx], "score": top.values[keep].numpy(), "via": vias[idx]})

    def _scores(self, route: _Route, query: Any) -> torch.Tensor:
        q, ok = route.encoder.encode([query])
        if not bool(ok[0]):
            raise ValueError(f"The {route.encoder.modality} query {str(query)[:80]!r} could not be encoded by "
                             f"{route.encoder.name!r} (empty, missing or unreadable)")
        if route.via == "shared":
            return F.normalize(self.vectors[route.target], dim=-1) @ F.normalize(q, dim=-1)[0]
        key = (route.source, route.target)
        if key not in self._projected:
            self._projected[key] = self.alignment.project(route.target, self.vectors[route.target])
        return self._projected[key] @ self.alignment.project(route.source, q)[0]


def _align_rows(ids: Sequence[str], vec_ids: Sequence[str], mat: Optional[np.ndarray]) -> np.ndarray:
    """Rows of ``mat`` (one per ``vec_ids``) placed at ``ids``' positions; zeros elsewhere."""
    if mat is None:
        return np.zeros((len(ids), 1), dtype=np.float32)
    pos = {str(i): k for k, i in enumerate(ids)}
    out = np.zeros((len(ids), mat.shape[1]), dtype=np.float32)
    rows = [pos[str(i)] for i in vec_ids if str(i) in pos]
    out[rows] = mat[[k for k, i in enumerate(vec_ids) if str(i) in pos]]
    return out
