"""PNG figures for training runs: loss curves and image grids. matplotlib is an optional extra
(`pip install gradcore[plots]`); it is imported only when a figure is drawn, and figures are rendered with the
Agg canvas directly (no pyplot, no global backend state, works without a display)."""
from __future__ import annotations

import math
import os

import numpy as np


def available():
    """True when matplotlib can be imported."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _figure(width, height):
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError("gradcore.plots needs matplotlib: pip install 'gradcore[plots]'") from None
    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path):
    path = os.fspath(path)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    return path


def loss_curve(path, loss, val_loss=None, baseline=None, title="loss", log_scale=True, baseline_label="baseline"):
    """Training loss per epoch (or per step), the validation loss beside it, and a horizontal baseline
    (e.g. the mean-image MSE) when given. `loss` may also be a gradcore.train.History."""
    if hasattr(loss, "loss") and hasattr(loss, "val_loss"):
        loss, val_loss = loss.loss, (loss.val_loss or None) if val_loss is None else val_loss
    fig = _figure(6, 4)
    ax = fig.add_subplot(1, 1, 1)
    epochs = np.arange(1, len(loss) + 1)
    ax.plot(epochs, loss, marker="o", label="train")
    if val_loss:
        ax.plot(np.arange(1, len(val_loss) + 1), val_loss, marker="s", label="held-out")
    if baseline is not None:
        ax.axhline(baseline, color="gray", linestyle="--", label=f"{baseline_label} {baseline:.4g}")
    if log_scale:
        ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel(title)
    ax.grid(True, alpha=0.3)
    ax.legend()
    return _save(fig, path)


def _as_images(images):
    a = images.numpy() if hasattr(images, "numpy") else np.asarray(images)
    if a.ndim == 4:
        if a.shape[1] not in (1, 3):
            raise ValueError(f"images: expected (N, 1 or 3, H, W), got shape {a.shape}")
        a = a.transpose(0, 2, 3, 1)
        if a.shape[-1] == 1:
            a = a[..., 0]
    elif a.ndim != 3:
        raise ValueError(f"images: expected (N, H, W) or (N, C, H, W), got shape {a.shape}")
    return np.clip(a, 0.0, 1.0)


def image_grid(path, rows, row_titles=None, title=None):
    """A grid of images in [0, 1]: `rows` is a list of image batches ((N, H, W) or (N, C, H, W)), one grid row
    each (pass [originals, reconstructions] to compare), or a single batch laid out in a near-square grid."""
    if not isinstance(rows, (list, tuple)):
        batch = _as_images(rows)
        cols = math.ceil(math.sqrt(len(batch)))
        rows = [batch[i:i + cols] for i in range(0, len(batch), cols)]
        row_titles = None
    rows = [_as_images(r) for r in rows]
    cols = max(len(r) for r in rows)
    fig = _figure(cols * 0.9, len(rows) * 0.95 + (0.3 if title else 0))
    for i, row in enumerate(rows):
        for j in range(cols):
            ax = fig.add_subplot(len(rows), cols, i * cols + j + 1)
            ax.set_xticks([])
            ax.set_yticks([])
            if j < len(row):
                ax.imshow(row[j], cmap="gray", vmin=0.0, vmax=1.0)
            else:
                ax.axis("off")
            if j == 0 and row_titles:
                ax.set_ylabel(row_titles[i], fontsize=8)
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def confusion_matrix(path, matrix, labels=None, title=None):
    """A confusion matrix (rows: true class, columns: predicted class) as a heat map with the counts written in."""
    m = np.asarray(matrix)
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise ValueError(f"matrix: expected a square (classes, classes) array, got shape {m.shape}")
    labels = [str(i) for i in range(len(m))] if labels is None else [str(v) for v in labels]
    fig = _figure(0.5 * len(m) + 2, 0.5 * len(m) + 1.5)
    ax = fig.add_subplot(1, 1, 1)
    image = ax.imshow(m, cmap="Blues")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    ax.set_xticks(range(len(m)), labels)
    ax.set_yticks(range(len(m)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    threshold = m.max() / 2 if m.size else 0
    for i in range(len(m)):
        for j in range(len(m)):
            ax.text(j, i, str(m[i, j]), ha="center", va="center", fontsize=7,
                    color="white" if m[i, j] > threshold else "black")
    if title:
        ax.set_title(title)
    return _save(fig, path)
