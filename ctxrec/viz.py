"""Plots the notebooks share: training curves, a 2-D map of embeddings, a grid of item
images per context. matplotlib (and PIL) are imported here, never by ``import ctxrec``.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from PIL import Image

__all__ = ["plot_curves", "palette", "plot_map", "plot_covers", "plot_metric_bars", "plot_group_bars"]


def plot_curves(models, metric="ndcg@20"):
    """Training loss and validation metric per epoch of every model that has a history."""
    fig, ax = plt.subplots(1, 2, figsize=(10, 3.2))
    for label, model in models.items():
        hist = getattr(model, "history", None)
        if hist is None or not hist.loss:
            continue  # MostPop is counted, not trained
        x = np.arange(1, len(hist.loss) + 1)
        (line,) = ax[0].plot(x, hist.loss, label=label)
        ax[1].plot(x, hist.val, label=label, color=line.get_color())
        ax[1].axvline(hist.best_epoch + 1, ls="--", lw=0.8, color=line.get_color())
    ax[0].set(title="training loss (log scale: models differ in scale)", xlabel="epoch", yscale="log")
    ax[1].set(title=f"validation {metric} (dashed: the kept epoch)", xlabel="epoch")
    for a in ax:
        a.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
    ax[1].legend(fontsize=8)
    fig.tight_layout()
    return fig


def palette(labels, colours=None):
    """label -> colour, biggest group first (``colours`` fixes some of them)."""
    order = pd.Series(labels).value_counts().index
    cmap = plt.get_cmap("tab10" if len(order) <= 10 else "tab20")
    return {lab: (colours or {}).get(lab, cmap(k % cmap.N)) for k, lab in enumerate(order)}


def plot_map(ax, x, labels, colours, title):
    """Rows of ``x`` on their first two principal components (SVD), one colour per label."""
    x = np.asarray(x, dtype=np.float64)
    u, s, _ = np.linalg.svd(x - x.mean(0), full_matrices=False)
    xy, labels = u[:, :2] * s[:2], np.asarray(labels)
    for lab, colour in colours.items():
        m = labels == lab
        ax.scatter(xy[m, 0], xy[m, 1], s=9, alpha=0.75, color=colour, label=lab)
    ax.set(title=title, xticks=[], yticks=[])


def plot_covers(rows, items, width=8):
    """One row of item images per ``label -> item ids``; ``items`` (indexed by id) has
    ``name`` and ``image_path``."""
    fig, axes = plt.subplots(len(rows), width, figsize=(1.5 * width, 2.5 * len(rows)), squeeze=False)
    for r, (label, ids) in enumerate(rows.items()):
        for c, ax in enumerate(axes[r]):
            ax.set_axis_off()
            if c >= len(ids):
                continue
            path, name = items.loc[ids[c], "image_path"], str(items.loc[ids[c], "name"])
            if isinstance(path, str) and Path(path).is_file():
                ax.imshow(Image.open(path).convert("RGB"))
            else:
                ax.text(0.5, 0.5, "no image", ha="center", va="center", color="grey")
            ax.set_title(name if len(name) <= 22 else name[:21] + "…", fontsize=7)
        axes[r, 0].text(-0.12, 0.5, label, transform=axes[r, 0].transAxes, rotation=90, ha="right",
                        va="center", fontsize=8)
    fig.tight_layout()
    return fig


def plot_metric_bars(values, title, path=None):
    """Grouped bars: ``{model: {metric: (mean, std)}}``, one group per metric; saved to ``path``."""
    models = list(values)
    metrics = list(next(iter(values.values())))
    fig, ax = plt.subplots(figsize=(max(6, 1.1 * len(models) * len(metrics)), 3.4))
    width = 0.8 / len(models)
    for k, m in enumerate(models):
        x = np.arange(len(metrics)) + k * width
        ax.bar(x, [values[m][q][0] for q in metrics], width, yerr=[values[m][q][1] for q in metrics],
               capsize=2, label=m)
    ax.set_xticks(np.arange(len(metrics)) + 0.4 - width / 2, metrics)
    ax.set(title=title)
    ax.legend(fontsize=7, ncol=min(len(models), 4))
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=110)
        plt.close(fig)
    return fig


def plot_group_bars(values, title, path=None):
    """Grouped bars: ``{model: {group: value}}``, one group of bars per group label."""
    flat = {m: {g: (float(v), 0.0) for g, v in groups.items()} for m, groups in values.items()}
    return plot_metric_bars(flat, title, path)

