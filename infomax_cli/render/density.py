"""The violins' statistics (figures.mi_violin_figure): matplotlib's, with the density estimated on an
even subsample and evaluated without a BLAS call per point."""

from __future__ import annotations

import numpy as np
from matplotlib import cbook, mlab

# a violin's density is estimated on at most this many of its values (evenly spaced)
KDE_POINTS = 20_000


def violin_stats(v: np.ndarray) -> dict:
    """matplotlib's violin statistics of v: median and extremes from every value, the Gaussian KDE from
    an even subsample (the full one costs seconds on 5000 x 32 maps) with the bandwidth Scott's rule gives
    all the values."""

    def density(x, coords):
        sub = x[:: max(1, len(x) // KDE_POINTS)]
        if np.ptp(sub) == 0:  # one value (coords are all that value): a flat line at full width
            return np.ones_like(coords)
        return kde_evaluate(mlab.GaussianKDE(sub, len(x) ** -0.2), coords)

    return cbook.violin_stats(v, density)[0]


def kde_evaluate(kde: mlab.GaussianKDE, coords: np.ndarray) -> np.ndarray:
    """`kde.evaluate(coords)` for one-dimensional data, the same arithmetic in the same order without
    its np.dot per point: there the 1 x 1 inverse covariance times the differences goes to BLAS once
    per point, whose threads wait for each other when other work shares the cores (a violin of
    10,000 values then took over a second instead of 20 ms)."""
    data, inv, points = kde.dataset[0], kde.inv_cov[0, 0], np.asarray(coords, dtype=float)
    if len(points) >= kde.num_dp:  # more points than data: a loop over the data, as matplotlib's
        result = np.zeros(len(points))
        for value in data:
            diff = value - points
            result = result + np.exp(-(diff * (inv * diff) / 2.0))
    else:
        result = np.zeros(len(points))
        for i, point in enumerate(points):
            diff = data - point
            result[i] = np.sum(np.exp(-(diff * (inv * diff) / 2.0)))
    return result / kde.norm_factor
