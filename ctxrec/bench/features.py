"""``ctxrec bench features``: do the item vectors mean something on real data?

On a MovieLens-100K folder, each poster encoder's vectors are judged by **genre purity@k**:
for every item with a poster, the share of its ``k`` nearest posters (cosine, the item
itself left out) that share at least one genre with it, averaged over the items; and **by
genre** (:func:`genre_purity_by_genre`): per genre, the share of its items' neighbours of that
genre, averaged over the genres. The **base rates** are the same shares over all other items:
what neighbours picked at random would score. Sharing any genre is common (Drama, Comedy), so
the by-genre figure is the one that separates encoders. Encoders: the ImageNet CNN with its pretrained weights and with random weights (the
same network), the open_clip ViT the benchmark used so far (random weights here), and the
plot text (all-MiniLM-L6-v2) for reference. Figures go to ``<out>/features_ml100k.json``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, Optional

import numpy as np
import torch
import torch.nn.functional as F

from ctxrec.bench.report import hash_tables, table, write_report


def genre_purity(vectors: torch.Tensor, genres: np.ndarray, k: int = 10) -> float:
    """Mean share of each row's ``k`` nearest rows (cosine, itself left out) that share a genre with it.

    Args:
        vectors (Tensor [N, d]): one vector per item.
        genres (bool array [N, G]): the items' genres.
        k: neighbours per item (default: 10).
    """
    z = F.normalize(vectors.float(), dim=1)
    sims = z @ z.T
    sims.fill_diagonal_(float("-inf"))
    top = sims.topk(min(k, len(z) - 1), dim=1).indices.numpy()
    shared = (genres.astype(np.int64) @ genres.T.astype(np.int64)) > 0
    return float(np.take_along_axis(shared, top, axis=1).mean())


def genre_purity_by_genre(vectors: torch.Tensor, genres: np.ndarray, k: int = 10) -> tuple[float, float]:
    """Per genre ``g``: among the items of ``g``, the mean share of their ``k`` nearest rows that are
    of ``g`` too, and the share of all other items that are (its base rate); both averaged over
    the genres (macro), so rare genres (Animation, Film-Noir) count as much as Drama.

    Returns:
        ``(purity, base rate)``.
    """
    z = F.normalize(vectors.float(), dim=1)
    sims = z @ z.T
    sims.fill_diagonal_(float("-inf"))
    top = sims.topk(min(k, len(z) - 1), dim=1).indices.numpy()
    purities, bases = [], []
    n = len(genres)
    for g in range(genres.shape[1]):
        members = np.flatnonzero(genres[:, g])
        if len(members) < 2:
            continue
        purities.append(float(genres[top[members], g].mean()))
        bases.append((len(members) - 1) / (n - 1))
    return float(np.mean(purities)), float(np.mean(bases))


def base_rate(genres: np.ndarray) -> float:
    """Mean share of the other items that share a genre with each item."""
    shared = (genres.astype(np.int64) @ genres.T.astype(np.int64)) > 0
    n = len(genres)
    return float((shared.sum(1) - shared.diagonal()).sum() / (n * (n - 1)))


def run(data: str | Path, k: int = 10, cache_dir: str | Path = ".ctxrec/cache", out_dir: str | Path = "benchmarks",
        encoders: Optional[Dict[str, tuple]] = None, command: str = "") -> Dict[str, object]:
    """Encode the posters (and plots) of ``data`` with each encoder, print and write genre purity@k.

    Args:
        data: a MovieLens-100K folder with ``posters/`` (see :mod:`ctxrec.datasets.movielens`).
        k: neighbours per item (default: 10).
        cache_dir: feature cache (default: ".ctxrec/cache").
        out_dir: folder of ``features_ml100k.json`` (default: "benchmarks").
        encoders: ``label -> (encoder name, options)`` instead of the default four (default: None).
        command: the command line, recorded in the JSON.
    """
    import time

    from ctxrec.bench.movielens import SMALL_CLIP, prepare
    from ctxrec.datasets.movielens import load_movielens
    from ctxrec.modalities.features import encode_tables
    from ctxrec.modalities.registry import get_encoder

    encoders = encoders or {"pretrained": ("imagenet", {}), "random": ("imagenet", {"weights": "random"}),
                            "open_clip_random": ("image", SMALL_CLIP), "text": ("text", {})}
    tables, _, _, facts = prepare(data, cache_dir=cache_dir, features=())
    movies = load_movielens(data).items
    genres_of = dict(zip(movies["item_id"], movies["genres"]))
    vocab = sorted({g for row in genres_of.values() for g in row})
    figures: Dict[str, object] = {"poster_genre_purity@10" if k == 10 else f"poster_genre_purity@{k}": {}}
    key = next(iter(figures))
    rows = []
    for label, (name, options) in encoders.items():
        t0 = time.perf_counter()
        (ids, x), = encode_tables(tables, get_encoder(name, **options), cache_dir=cache_dir, labels=["Item"],
                                  name=label).values()
        vecs = torch.as_tensor(x)
        has = vecs.abs().sum(1) > 0  # items whose poster (or text) was read
        g = np.array([[v in genres_of.get(str(i), ()) for v in vocab] for i in ids])[has.numpy()]
        purity = genre_purity(vecs[has], g, k)
        figures[key][label] = purity
        by_genre, by_genre_base = genre_purity_by_genre(vecs[has], g, k)
        figures.setdefault(f"poster_genre_purity_by_genre@{k}", {})[label] = by_genre
        figures.setdefault("items", {})[label] = int(has.sum())
        figures.setdefault("encode_s", {})[label] = time.perf_counter() - t0
        if "base_rate" not in figures:
            figures["base_rate"], figures["base_rate_by_genre"] = base_rate(g), by_genre_base
        rows.append({"encoder": label, "name": name, f"purity@{k}": purity, f"by_genre@{k}": by_genre,
                     "items": int(has.sum())})
    rows.append({"encoder": "base rate", "name": "-", f"purity@{k}": figures.get("base_rate"),
                 f"by_genre@{k}": figures.get("base_rate_by_genre"), "items": "-"})
    print(table(rows, ["encoder", "name", f"purity@{k}", f"by_genre@{k}", "items"]))
    figures["_setup"] = {"k": k, "encoders": {label: [name, options] for label, (name, options) in encoders.items()},
                         "genres": vocab, "facts": facts}
    path = write_report("features_ml100k", figures, out_dir, command=command or f"ctxrec bench features --data {data}",
                        data={"hash": hash_tables(tables), "source": f"MovieLens-100K folder {data}"})
    print(f"\nwritten to {path}")
    return figures
