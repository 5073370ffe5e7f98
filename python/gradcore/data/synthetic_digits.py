"""Handwritten-like digits 0-9 drawn from pen strokes: the embedded default data set (no download).

Each digit is a few strokes (polylines and elliptic arcs) in a unit box, x to the right and y downwards.
Every sample bends its strokes with a smooth random warp (so no two "3"s are alike), then applies a random
affine map (rotation, shear, scale, aspect, translation) that places it in a 20-pixel box centred in the image
as MNIST does. It is rasterised with numpy alone: a pixel's ink is the anti-aliased coverage of a pen of the
sample's width, 1 at distance <= width/2 from the nearest stroke segment, falling linearly to 0 one pixel further.
Ink intensity and Gaussian sensor noise vary per sample; values are clipped to [0, 1].

Samples sharing a digit have the same number of segments, so a whole chunk of one digit is rasterised in a
single vectorised distance computation (10k digits in about 1.5 s on one core).
"""
from __future__ import annotations

import numpy as np

_ARC_POINTS = 18  # points per full turn of an ellipse; arcs use a proportional share
_CHUNK = 128       # samples rasterised together: bigger temporaries stop fitting in cache


def _arc(cx, cy, rx, ry, start_deg, end_deg):
    """Points of an elliptic arc; angles in degrees counter-clockwise as seen on the page (y grows downwards)."""
    count = max(3, int(round(abs(end_deg - start_deg) / 360.0 * _ARC_POINTS)) + 1)
    angles = np.deg2rad(np.linspace(start_deg, end_deg, count))
    return np.stack([cx + rx * np.cos(angles), cy - ry * np.sin(angles)], axis=1)


def _line(*points):
    return np.asarray(points, dtype=np.float64)


def _join(*parts):
    return np.concatenate(parts, axis=0)


# Strokes per digit, in a unit box; ASPECT is the width of the box relative to its height.
_STROKES = {
    0: [_arc(0.5, 0.5, 0.45, 0.5, 90, 450)],
    1: [_line((0.3, 0.22), (0.6, 0.0), (0.55, 1.0))],
    2: [_join(_arc(0.5, 0.3, 0.42, 0.3, 160, -30), _line((0.05, 1.0), (0.98, 1.0)))],
    3: [_join(_arc(0.47, 0.26, 0.4, 0.26, 150, -90), _arc(0.47, 0.74, 0.47, 0.26, 90, -160))],
    4: [_line((0.68, 1.0), (0.68, 0.0), (0.03, 0.68), (0.98, 0.68))],
    5: [_join(_line((0.9, 0.0), (0.22, 0.0), (0.16, 0.44)), _arc(0.5, 0.7, 0.44, 0.3, 150, -150))],
    6: [_join(_line((0.8, 0.0)), _arc(0.8, 0.62, 0.68, 0.62, 90, 180)[1:],
              _arc(0.5, 0.72, 0.38, 0.28, 180, 540)[1:])],
    7: [_line((0.0, 0.02), (1.0, 0.0), (0.38, 1.0)), _line((0.3, 0.52), (0.78, 0.52))],
    8: [_arc(0.5, 0.25, 0.36, 0.25, -90, 270), _arc(0.5, 0.74, 0.44, 0.26, 90, 450)],
    9: [_join(_arc(0.5, 0.3, 0.42, 0.3, 0, 360), _line((0.88, 0.3), (0.78, 1.0)))],
}
_ASPECT = {0: 0.72, 1: 0.45, 2: 0.7, 3: 0.66, 4: 0.74, 5: 0.68, 6: 0.66, 7: 0.7, 8: 0.64, 9: 0.66}


def _template(digit):
    """(points (P, 2) centred on the origin in units of the digit's height, segment endpoint indices (S, 2))."""
    points, segments = [], []
    for stroke in _STROKES[digit]:
        start = sum(len(p) for p in points)
        points.append(stroke)
        segments.extend((start + i, start + i + 1) for i in range(len(stroke) - 1))
    points = np.concatenate(points, axis=0) - 0.5
    points[:, 0] *= _ASPECT[digit]
    return points, np.asarray(segments)


_TEMPLATES = {d: _template(d) for d in range(10)}


def _warp(points, rng):
    """Smooth random bending of point sets (B, P, 2): each coordinate moves by a low-frequency sinusoid of y
    plus one of x, with random frequency, phase and amplitude (up to 5% of the digit's height each)."""
    count = points.shape[0]
    freq = rng.uniform(1.0, 3.0, (count, 2, 2, 1))   # (sample, output axis, term, 1)
    phase = rng.uniform(0, 2 * np.pi, (count, 2, 2, 1))
    amp = rng.uniform(0.0, 0.05, (count, 2, 2, 1))
    src = points[:, None, :, ::-1].transpose(0, 1, 3, 2)  # (B, 1, 2, P): term 0 reads y, term 1 reads x
    terms = amp * np.sin(freq * np.pi * src + phase)      # (B, 2, 2, P)
    return points + terms.sum(axis=2).transpose(0, 2, 1)


def _affine(points, size, rng):
    """Random rotation, shear, scale, aspect and translation mapping unit-height digits into pixel coordinates."""
    count = points.shape[0]
    angle = np.deg2rad(rng.uniform(-15, 15, count))
    shear = rng.uniform(-0.3, 0.3, count)
    height = size * (20.0 / 28.0) * rng.uniform(0.8, 1.05, count)
    aspect = rng.uniform(0.85, 1.15, count)
    cos, sin = np.cos(angle), np.sin(angle)
    # M = rotation @ shear(x by y) @ diag(height * aspect, height)
    m = np.empty((count, 2, 2))
    m[:, 0, 0] = cos * height * aspect
    m[:, 0, 1] = (cos * shear - sin) * height
    m[:, 1, 0] = sin * height * aspect
    m[:, 1, 1] = (sin * shear + cos) * height
    shift = size / 2.0 + rng.uniform(-1.5, 1.5, (count, 1, 2)) * (size / 28.0)
    return np.einsum("bij,bpj->bpi", m, points) + shift


def _rasterise(points, segments, width, size):
    """Anti-aliased pen coverage (B, size, size) of the segments of each point set (B, P, 2) in pixels.

    Works on x and y separately with in-place float32 ops: the (B, S, H*W) temporaries dominate the cost."""
    centres = np.arange(size, dtype=np.float32) + 0.5
    px = np.tile(centres, size)[None, None]                        # (1, 1, H*W): x is the column
    py = np.repeat(centres, size)[None, None]
    pts = points.astype(np.float32)
    ax, ay = pts[:, segments[:, 0], 0, None], pts[:, segments[:, 0], 1, None]   # (B, S, 1)
    abx, aby = pts[:, segments[:, 1], 0, None] - ax, pts[:, segments[:, 1], 1, None] - ay
    inv_length2 = 1.0 / np.maximum(abx * abx + aby * aby, 1e-12)
    apx, apy = px - ax, py - ay                                    # (B, S, H*W)
    t = apx * abx
    t += apy * aby
    t *= inv_length2
    np.clip(t, 0.0, 1.0, out=t)                                    # nearest point's position on the segment
    apx -= t * abx
    apy -= t * aby
    apx *= apx
    apy *= apy
    apx += apy
    dist = np.sqrt(apx.min(axis=1))                                # (B, H*W)
    cover = np.clip(width[:, None] / 2.0 + 0.5 - dist, 0.0, 1.0)
    return cover.reshape(-1, size, size)


def synthetic_digits(n, size=28, seed=0):
    """n handwritten-like digits: (images float32 (n, 1, size, size) in [0, 1], labels int64 (n,)).

    The same (n, size, seed) always gives the same arrays. Labels are drawn uniformly from 0-9.
    """
    if not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"n: expected a non-negative integer, got {n!r}")
    if not isinstance(size, (int, np.integer)) or size < 8:
        raise ValueError(f"size: expected an integer >= 8, got {size!r}")
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, int(n)).astype(np.int64)
    images = np.zeros((int(n), 1, size, size), dtype=np.float32)
    scale = size / 28.0
    for digit in range(10):
        template, segments = _TEMPLATES[digit]
        where = np.flatnonzero(labels == digit)
        for begin in range(0, len(where), _CHUNK):
            idx = where[begin:begin + _CHUNK]
            count = len(idx)
            points = _warp(np.broadcast_to(template, (count,) + template.shape), rng)
            points = _affine(points, size, rng)
            width = (rng.uniform(1.4, 3.0, count) * scale).astype(np.float32)
            ink = rng.uniform(0.75, 1.0, count).astype(np.float32)
            noise = rng.uniform(0.0, 0.04, count).astype(np.float32)
            img = _rasterise(points, segments, width, size) * ink[:, None, None]
            img += noise[:, None, None] * rng.standard_normal(img.shape, dtype=np.float32)
            images[idx, 0] = np.clip(img, 0.0, 1.0)
    return images, labels
