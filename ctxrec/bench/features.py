"""``ctxrec bench features``: do the item vectors mean something on real data?

On a MovieLens-100K folder, each poster encoder's vectors are judged by **genre purity@k**:
for every item with a poster, the share of its ``k`` nearest posters (cosine, the item
itself left out) that share at least one genre with it, averaged over the items; and **by
genre** (:func:`genre_purity_by_genre`): per genre, the share of its items' neighbours of that
genre, averaged over the genres. The **base rates** are the same shares over all other items:
what neighbours picked at random would score. Sharing any genre is common (Drama, Comedy), so
the by-genre figure is the one that separates encoders. Encoders: the ImageNet CNN with its pretrained weights and with random weights (the
same network), the open_clip ViT the benchmark used so far (random weights here), and the
plot text (all-MiniLM-L6-v2) for reference.

**Text -> poster retrieval** (:func:`text_to_poster`): with no CLIP weights, a text-image space
is learned: an :class:`~ctxrec.fusion.align.Alignment` (one linear head over each frozen
encoder's vectors, symmetric InfoNCE) is fitted on the items that have both, split by item
into train / validation / test (70/15/15, per seed). The width and temperature of the shared
space are chosen on the validation items' retrieval MRR, its epochs by early stopping on their
loss; then each held-out test item's text must find its own poster among all the test items'
posters: Recall@10 and MRR, against a random ranking's (``chance``: ``10/n`` and
:math:`H_n / n`). Run for the item text (title, genres, plot: what ``ctxrec encode`` writes
and ``ctxrec search`` uses) and for the plot alone, against each poster encoder.

**Cold items** (:func:`cold_content_knn`): the ``cold_items`` protocol of ``ctxrec benchmark
movielens`` (:func:`ctxrec.bench.quality.run`, its split, refit and test), with only the
content k-NN rows, over the item text, the pretrained posters and both (the two unit vectors
side by side), raw, mean-centred and whitened.

Figures go to ``<out>/features_ml100k.json``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ctxrec.bench.report import aggregate, hash_tables, table, write_report

#: the shared space's settings tried per seed, chosen on the validation items' MRR
ALIGN_GRID = {"dim": (128, 256, 512), "temperature": (0.1, 0.2, 0.3)}
#: Alignment.fit settings: at lr 1e-2 the validation loss bottoms out after 2-3 epochs; 1e-3 reaches
#: the same validation MRR in ~15 epochs, a less brittle early stop (2 seeds measured, 2026-12-07)
ALIGN_FIT = {"lr": 1e-3, "weight_decay": 1e-4}
#: share of the items with both modalities held out for validation and for test
ALIGN_SPLIT = {"val": 0.15, "test": 0.15}
#: fewer items with both modalities than this: no text -> poster figures
MIN_PAIRS = 40


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


def retrieval(queries: torch.Tensor, targets: torch.Tensor, k: int = 10) -> Dict[str, float]:
    """Row ``i`` of ``queries`` looks for row ``i`` of ``targets`` among all rows (cosine).

    Returns:
        ``{"recall@k": share found in the top k, "mrr": mean of 1 / rank}``; ties count against
        the right row (its rank is 1 + the number of rows scoring at least as high).

    Example:
        >>> retrieval(torch.eye(3), torch.eye(3), k=1)
        {'recall@1': 1.0, 'mrr': 1.0}
    """
    q, t = F.normalize(queries.float(), dim=1), F.normalize(targets.float(), dim=1)
    sims = q @ t.T
    own = sims.diagonal().unsqueeze(1)
    rank = (sims >= own).sum(1)  # includes the row itself
    return {f"recall@{k}": float((rank <= k).float().mean()), "mrr": float((1.0 / rank.float()).mean())}


def retrieval_chance(n: int, k: int = 10) -> Dict[str, float]:
    """What a random ranking of ``n`` candidates scores: ``min(k, n) / n`` and ``H_n / n``."""
    return {f"recall@{k}": min(k, n) / n, "mrr": float(sum(1.0 / r for r in range(1, n + 1)) / n)}


def split_items(n: int, seed: int, val: float = ALIGN_SPLIT["val"], test: float = ALIGN_SPLIT["test"]):
    """Seeded split of ``n`` rows into ``(train, val, test)`` index arrays."""
    order = np.random.default_rng(seed).permutation(n)
    n_test, n_val = int(round(n * test)), int(round(n * val))
    return np.sort(order[n_test + n_val:]), np.sort(order[n_test:n_test + n_val]), np.sort(order[:n_test])


def text_to_poster(text: torch.Tensor, image: torch.Tensor, seeds: Sequence[int] = (0, 1, 2), k: int = 10,
                   grid: Optional[Dict[str, Sequence]] = None, epochs: int = 300, patience: int = 20,
                   log: Optional[str] = None) -> Dict[str, object]:
    """Fit an Alignment on train items, choose it on validation items, score text -> poster on test items.

    Args:
        text (Tensor [N, d_t]): one text vector per item, row-aligned with ``image``.
        image (Tensor [N, d_i]): the items' poster vectors.
        seeds: item splits and head initialisations (default: ``(0, 1, 2)``).
        k: the recall cut-off (default: 10).
        grid: ``dim`` and ``temperature`` values tried (default: :data:`ALIGN_GRID`).
        epochs: most epochs; early stopping on the validation items' loss (default: 300).
        patience: epochs without improvement before stopping (default: 20).
        log: a label to print progress lines with (default: None, silent).

    Returns:
        mean and ``_std`` over seeds of test ``recall@k`` and ``mrr``, ``chance`` for the test
        size, and ``per_seed`` (chosen settings, epochs, validation figures, sizes).
    """
    from ctxrec.fusion.align import Alignment

    grid = dict(grid or ALIGN_GRID)
    text, image = torch.as_tensor(text, dtype=torch.float32), torch.as_tensor(image, dtype=torch.float32)
    dims = {"text": text.size(1), "image": image.size(1)}
    per_seed = []
    for seed in seeds:
        train, val, test = split_items(len(text), seed)
        rows = np.concatenate([train, val])  # the test items stay out of fitting and scaling
        feats = {"text": text[rows], "image": image[rows]}
        masks = {m: torch.ones(len(rows), dtype=torch.bool) for m in feats}
        val_rows = range(len(train), len(rows))
        best = None
        for dim in grid["dim"]:
            for temperature in grid["temperature"]:
                align = Alignment(dims, dim=dim, temperature=temperature).fit(
                    feats, masks, epochs=epochs, seed=seed, patience=patience, val_rows=val_rows, **ALIGN_FIT)
                found = retrieval(align.project("text", text[val]), align.project("image", image[val]), k)
                if best is None or found["mrr"] > best[1]["mrr"]:
                    best = (align, found, {"dim": dim, "temperature": temperature})
        align, found, chosen = best
        scored = retrieval(align.project("text", text[test]), align.project("image", image[test]), k)
        per_seed.append({**scored, **{f"val_{m}": v for m, v in found.items()}, **chosen,
                         "epochs": align.best_epoch, "train": len(train), "val": len(val), "test": len(test)})
        if log:
            print(f"[text_to_poster {log} seed {seed}] test recall@{k} {scored[f'recall@{k}']:.4f} "
                  f"mrr {scored['mrr']:.4f} (chance {retrieval_chance(len(test), k)[f'recall@{k}']:.4f}); "
                  f"val mrr {found['mrr']:.4f} with {chosen}, {align.best_epoch} epochs", flush=True)
    out = aggregate({"x": per_seed})["x"]
    out["chance"] = retrieval_chance(per_seed[0]["test"], k)
    out[f"recall@{k}_over_chance"] = out[f"recall@{k}"] / out["chance"][f"recall@{k}"]
    out["grid"] = {key: list(v) for key, v in grid.items()}
    return out


def cold_content_knn(tables, vectors: Dict[str, tuple], seeds: Sequence[int] = (0, 1, 2),
                     work_dir: Optional[str | Path] = None) -> Dict[str, object]:
    """The ``cold_items`` benchmark's content k-NN rows over each of ``vectors``.

    Runs :func:`ctxrec.bench.quality.run` (select on validation, refit on train+val, test
    under ``per_user`` and ``per_context``) with ``models=("content_knn",)``; its own report
    goes to ``work_dir`` (a temporary folder by default), and the test figures come back.

    Args:
        tables (GraphTables): the MovieLens graph tables.
        vectors: feature name -> ``(item ids, [N, d])``.
        seeds: split seeds (default: ``(0, 1, 2)``, as ``ctxrec benchmark movielens``).
        work_dir: folder for the quality benchmark's own JSON and plots (default: a temporary one).

    Returns:
        ``{protocol: {row label: {"ndcg@20", "ndcg@20_std", "recall@20", "hit_rate@20", "mrr@20",
        "val_ndcg@20"}}}`` and ``_setup``.
    """
    import tempfile

    from ctxrec.bench.quality import EVAL_PROTOCOLS, SPLITS
    from ctxrec.bench.quality import run as run_quality
    from ctxrec.data import SplitConfig

    keys = ("ndcg@20", "ndcg@20_std", "recall@20", "recall@20_std", "hit_rate@20", "mrr@20", "val_ndcg@20")
    item_vectors = {("Item", name): v for name, v in vectors.items()}
    with tempfile.TemporaryDirectory() as tmp:
        figures = run_quality(tables, item_vectors, "features_cold_items", SplitConfig(protocol="cold_items",
                              **SPLITS["cold_items"]), seeds=seeds, models=("content_knn",),
                              features=list(vectors), out_dir=work_dir or tmp, markdown=None,
                              command="ctxrec bench features (cold_items content k-NN)")
    out: Dict[str, object] = {p: {label: {key: f[key] for key in keys if key in f} for label, f in figures[p].items()}
                              for p in EVAL_PROTOCOLS}
    out["_setup"] = {"protocol": "cold_items", "seeds": list(seeds), "split": figures["_setup"]["split"],
                     "selection": figures["_setup"]["selection"]}
    return out


def both_vectors(a: tuple, b: tuple) -> tuple:
    """``(ids, [N, d_a + d_b])``: the two unit vectors of each item side by side (zeros where absent)."""
    ids = sorted(set(map(str, a[0])) | set(map(str, b[0])))
    pos = {i: r for r, i in enumerate(ids)}
    parts = []
    for vid, x in (a, b):
        x = F.normalize(torch.as_tensor(np.asarray(x), dtype=torch.float32), dim=1)
        full = torch.zeros(len(ids), x.size(1))
        full[torch.tensor([pos[str(i)] for i in vid])] = x
        parts.append(full)
    return np.asarray(ids), torch.cat(parts, dim=1).numpy()


def _text_to_poster(movies, encoded: Dict[str, tuple], texts: Dict[str, tuple], seeds, grid, cache_dir):
    """``text_to_poster`` (item text) and ``plot_to_poster`` (the plot alone) against each poster encoder."""
    from ctxrec.modalities.cache import FeatureCache
    from ctxrec.modalities.registry import get_encoder

    plots = movies[movies["plot"].map(lambda p: isinstance(p, str) and bool(p.strip()))]
    text_name = "text" if "text" in texts else next(iter(texts))
    x_plot, ok = FeatureCache(cache_dir).encode(get_encoder("text"), plots["plot"].tolist())
    sources = {"text_to_poster": texts[text_name],
               "plot_to_poster": (plots["item_id"].astype(str).to_numpy()[ok.numpy()], x_plot[ok].numpy())}
    out: Dict[str, object] = {}
    rows = []
    for key, (t_ids, t_x) in sources.items():
        t_pos = {str(i): r for r, i in enumerate(t_ids)}
        t_x = torch.as_tensor(np.asarray(t_x))
        for label, (modality, ids, x) in encoded.items():
            if modality != "image" or (key == "plot_to_poster" and label != "pretrained" and "pretrained" in encoded):
                continue  # the plot alone: against the pretrained posters only
            x = torch.as_tensor(np.asarray(x))
            both = [(t_pos[str(i)], r) for r, i in enumerate(ids)
                    if str(i) in t_pos and x[r].abs().sum() > 0 and t_x[t_pos[str(i)]].abs().sum() > 0]
            if len(both) < MIN_PAIRS:
                print(f"{key} {label}: only {len(both)} items have both; skipped (needs {MIN_PAIRS})")
                continue
            t_rows, i_rows = (list(c) for c in zip(*both))
            found = text_to_poster(t_x[t_rows], x[i_rows], seeds=seeds, grid=grid, log=f"{key} {label}")
            found["items"] = len(both)
            out.setdefault(key, {})[label] = found
            rows.append({"query": key.split("_")[0], "posters": label, "items": len(both), "test": found["per_seed"][0]["test"],
                         "recall@10": found["recall@10"], "±": found["recall@10_std"],
                         "chance@10": found["chance"]["recall@10"], "mrr": found["mrr"], "chance_mrr": found["chance"]["mrr"]})
    if rows:
        print(table(rows, ["query", "posters", "items", "test", "recall@10", "±", "chance@10", "mrr", "chance_mrr"]))
    return out


#: (Chinese query, its English twin, the MovieLens genres a sensible answer has)
TWIN_QUERIES = (
    ("一部给孩子看的动画片", "an animated film for children", ("Animation", "Children's")),
    ("一部关于太空的科幻电影", "a science fiction film about space", ("Sci-Fi",)),
    ("一部让人害怕的恐怖片", "a scary horror film", ("Horror",)),
    ("一部浪漫的爱情喜剧", "a romantic comedy", ("Romance", "Comedy")),
    ("一部关于二战的战争片", "a war film about the second world war", ("War",)),
)


def twin_queries(tables, genres_of: Dict[str, Sequence[str]], cache_dir, k: int = 10,
                 encoder: str = "multilingual-text") -> Dict[str, object]:
    """``ctxrec search`` with each Chinese query of :data:`TWIN_QUERIES` and its English twin
    over the items' text encoded by the multilingual ``encoder``: both top-``k`` lists, their
    overlap, and the share of each list in the expected genres (against the catalogue's share)."""
    from ctxrec.modalities.features import encode_tables
    from ctxrec.modalities.registry import get_encoder
    from ctxrec.serve.search import ItemSearch

    enc = get_encoder(encoder)
    (ids, x), = encode_tables(tables, enc, cache_dir=cache_dir, labels=["Item"], name="multilingual").values()
    engine = ItemSearch(ids, {"multilingual": x}, {"multilingual": enc})
    out: Dict[str, object] = {}
    for zh, en, wanted in TWIN_QUERIES:
        hits = {lang: engine.search(q, modality="text", k=k)["id"].astype(str).tolist() for lang, q in (("zh", zh), ("en", en))}
        share = {lang: float(np.mean([bool(set(genres_of.get(i, ())) & set(wanted)) for i in found]))
                 for lang, found in hits.items()}
        base = float(np.mean([bool(set(g) & set(wanted)) for g in genres_of.values()]))
        out[en] = {"zh": zh, "genres": list(wanted), "top_zh": hits["zh"], "top_en": hits["en"],
                   f"overlap@{k}": len(set(hits["zh"]) & set(hits["en"])) / k,
                   "genre_share_zh": share["zh"], "genre_share_en": share["en"], "genre_base_rate": base}
    return out


def run(data: str | Path, k: int = 10, cache_dir: str | Path = ".ctxrec/cache", out_dir: str | Path = "benchmarks",
        encoders: Optional[Dict[str, tuple]] = None, command: str = "", seeds: Sequence[int] = (0, 1, 2),
        align_grid: Optional[Dict[str, Sequence]] = None, cold: bool = True,
        twins: bool = True) -> Dict[str, object]:
    """Encode the posters (and plots) of ``data`` with each encoder; print and write genre
    purity@k, text -> poster retrieval through a learned space, and cold-item content k-NN.

    Args:
        data: a MovieLens-100K folder with ``posters/`` (see :mod:`ctxrec.datasets.movielens`).
        k: neighbours per item (default: 10).
        cache_dir: feature cache (default: ".ctxrec/cache").
        out_dir: folder of ``features_ml100k.json`` (default: "benchmarks").
        encoders: ``label -> (encoder name, options)`` instead of the default four (default: None).
        command: the command line, recorded in the JSON.
        seeds: seeds of the text -> poster item splits and of the cold-item splits (default: ``(0, 1, 2)``).
        align_grid: the shared space's settings tried (default: :data:`ALIGN_GRID`).
        cold: also run the cold-item content k-NN over text, pretrained posters and both (needs
            the ``text`` and ``pretrained`` encoders) (default: True).
        twins: also search the items' text with Chinese queries and their English twins through
            the multilingual encoder (:func:`twin_queries`) (default: True).
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
    encoded: Dict[str, tuple] = {}
    for label, (name, options) in encoders.items():
        t0 = time.perf_counter()
        encoder = get_encoder(name, **options)
        (ids, x), = encode_tables(tables, encoder, cache_dir=cache_dir, labels=["Item"], name=label).values()
        encoded[label] = (encoder.modality, ids, x)
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
    texts = {label: (ids, x) for label, (modality, ids, x) in encoded.items() if modality == "text"}
    if texts:
        figures.update(_text_to_poster(movies, encoded, texts, seeds, align_grid, cache_dir))
    if cold and "text" in encoded and "pretrained" in encoded:
        text, image = encoded["text"][1:], encoded["pretrained"][1:]
        figures["cold_items_content_knn"] = cold_content_knn(
            tables, {"text": text, "image": image, "both": both_vectors(text, image)}, seeds)
        print(table([{"row": label, **{m: f.get(m) for m in ("ndcg@20", "ndcg@20_std", "recall@20")}}
                     for label, f in figures["cold_items_content_knn"]["per_user"].items()],
                    ["row", "ndcg@20", "ndcg@20_std", "recall@20"]))
    if twins:
        figures["twin_queries"] = twin_queries(tables, {str(i): g for i, g in genres_of.items()}, cache_dir, k)
        print(table([{"query": en, f"overlap@{k}": f[f"overlap@{k}"], "genre zh": f["genre_share_zh"],
                      "genre en": f["genre_share_en"], "base": f["genre_base_rate"]}
                     for en, f in figures["twin_queries"].items()],
                    ["query", f"overlap@{k}", "genre zh", "genre en", "base"]))
    figures["_setup"] = {"k": k, "encoders": {label: [name, options] for label, (name, options) in encoders.items()},
                         "genres": vocab, "facts": facts, "seeds": list(seeds),
                         "text_to_poster": {"split": ALIGN_SPLIT, "grid": {key: list(v) for key, v in
                                                                          (align_grid or ALIGN_GRID).items()},
                                            "selection": "dim and temperature by validation MRR; epochs by early "
                                                         "stopping on the validation items' InfoNCE loss",
                                            "heads": "linear, over per-dimension standardised frozen vectors",
                                            "fit": ALIGN_FIT},
                         "cold_items_content_knn": {"both": "the unit text and unit poster vectors concatenated",
                                                    "image": "pretrained"}}
    path = write_report("features_ml100k", figures, out_dir, command=command or f"ctxrec bench features --data {data}",
                        data={"hash": hash_tables(tables), "source": f"MovieLens-100K folder {data}"})
    print(f"\nwritten to {path}")
    return figures
