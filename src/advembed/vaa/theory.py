"""Paper 002's Theorem 1: how well the vulnerability alone can predict the label.

With n labels whose vulnerability is normal, ``X_k ~ N(μ + k·d, σ²)`` (k = 0 … n − 1), the best
1-D classifier (thresholds half-way between neighbouring means) is right with probability

    P = (1 − 2S)/n + 2S,    S = ∫_μ^{μ+d/2} N(x; μ, σ²) dx = Φ(d / 2σ) − ½     (eq. 9)

(the two outer classes are right with 0.5 + S, the inner ones with 2S).  Corollaries 2–5: P
falls with n towards 2S (and is S + ½ at n = 2); P rises with d from 1/n towards 1.
"""

from __future__ import annotations

import math


def theorem1_area(d: float, sigma: float) -> float:
    """S of eq. 9: the normal mass between the mean and half the spacing above it."""
    return 0.5 * math.erf(d / (2 * sigma * math.sqrt(2)))


def theorem1_accuracy(n: int, d: float, sigma: float) -> float:
    """P of eq. 9 for ``n`` labels with spacing ``d`` and spread ``sigma``."""
    area = theorem1_area(d, sigma)
    return (1 - 2 * area) / n + 2 * area


def simulated_accuracy(n: int, d: float, sigma: float, *, samples: int = 100_000,
                       seed: int = 0) -> float:
    """Accuracy of the nearest-mean classifier on ``samples`` draws from Theorem 1's classes
    (equally many of each), for checking eq. 9 by simulation."""
    import numpy as np

    rng = np.random.default_rng(seed)
    labels = rng.integers(0, n, samples)
    values = labels * d + rng.normal(0.0, sigma, samples)
    predicted = np.clip(np.rint(values / d), 0, n - 1)
    return float((predicted == labels).mean())


def theorem1_fit(scores: list[float], labels: list[int]) -> dict[str, float | int]:
    """Theorem 1 on measured vulnerabilities: fit its n, d and σ (d the mean spacing of the
    sorted class means, σ the pooled within-class standard deviation) and compare the P it
    predicts with the accuracy of the nearest-class-mean classifier on the same scores.  The
    theorem assumes equally many examples of each label, so ``balanced_accuracy`` (the mean of
    the per-label accuracies) is the figure to set beside P; ``measured_accuracy`` weights the
    labels as the data does, which with three labels or more differs from P under unequal label
    shares even where the theorem's normal classes hold exactly."""
    import numpy as np

    values, classes = np.asarray(scores, dtype=float), np.asarray(labels)
    present = sorted(set(classes.tolist()))
    if len(present) < 2:
        return {"n": len(present)}
    means = np.array([values[classes == c].mean() for c in present])
    spread = np.sqrt(sum(((values[classes == c] - m) ** 2).sum()
                         for c, m in zip(present, means, strict=True)) / len(values))
    spacing = float(np.ptp(means) / (len(present) - 1))
    nearest = np.abs(values[:, None] - means[None, :]).argmin(1)
    right = np.asarray(present)[nearest] == classes
    measured = float(right.mean())
    balanced = float(np.mean([right[classes == c].mean() for c in present]))
    predicted = theorem1_accuracy(len(present), spacing, float(spread)) if spread > 0 else 1.0
    return {"n": len(present), "d": spacing, "sigma": float(spread),
            "predicted_accuracy": predicted, "measured_accuracy": measured,
            "balanced_accuracy": balanced}
