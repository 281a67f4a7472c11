"""K-fold cross-validation of predictor models on held-out architectures.

Every architecture is predicted once by a model that never saw it; RMSE, Kendall tau and
Spearman rho are computed per fold and averaged (with the spread), and also on the pooled
held-out predictions. Search needs the ranking more than the values, so ``auto`` picks the
model with the best mean held-out Kendall tau.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

import numpy as np

from ..errors import PredictorError
from ..space import SearchSpace
from .models import MODEL_TYPES
from .predictor import Predictor


@dataclass
class ModelScore:
    model: str
    folds: int
    rmse: float
    kendall_tau: float
    spearman: float
    rmse_std: float = 0.0
    kendall_tau_std: float = 0.0
    spearman_std: float = 0.0
    pooled: dict[str, float] = field(default_factory=dict)
    fit_seconds: float = 0.0


@dataclass
class CVReport:
    rows: int
    folds: int
    scores: list[ModelScore]
    best: str

    def to_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "folds": self.folds, "best": self.best, "scores": [asdict(s) for s in self.scores]}

    def table(self) -> str:
        from ..cli.common import format_table

        rows = [[s.model + (" *" if s.model == self.best else ""), f"{s.rmse:.4f} ± {s.rmse_std:.4f}",
                 f"{s.kendall_tau:.3f} ± {s.kendall_tau_std:.3f}", f"{s.spearman:.3f} ± {s.spearman_std:.3f}",
                 f"{s.fit_seconds:.1f}"] for s in self.scores]
        return format_table(rows, ["model", "RMSE", "Kendall tau", "Spearman", "fit s"])


def _metrics(y: np.ndarray, p: np.ndarray) -> tuple[float, float, float]:
    from scipy.stats import kendalltau, spearmanr

    rmse = float(np.sqrt(np.mean((y - p) ** 2)))
    if np.ptp(y) == 0 or np.ptp(p) == 0:
        return rmse, 0.0, 0.0
    return rmse, float(kendalltau(y, p).statistic), float(spearmanr(y, p).statistic)


def cross_validate(space: SearchSpace, encoded: np.ndarray, y: np.ndarray, models: Sequence[str] = MODEL_TYPES,
                   folds: int = 5, seed: int = 0, hparams: dict[str, dict[str, Any]] | None = None,
                   progress: bool = False) -> CVReport:
    """Score each model kind by ``folds``-fold CV on held-out architectures."""
    import time

    from sklearn.model_selection import KFold

    y = np.asarray(y, dtype=np.float64)
    if len(y) < 2 * folds:
        raise PredictorError(f"{len(y)} rows is too few for {folds}-fold cross-validation (need at least {2 * folds})")
    splits = list(KFold(n_splits=folds, shuffle=True, random_state=seed).split(encoded))
    scores = []
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(models) * folds, desc="cross-validation", unit="fit")
    for kind in models:
        per_fold, pooled_pred = [], np.zeros_like(y)
        start = time.perf_counter()
        for train, test in splits:
            pred = Predictor(space, kind, seed=seed, **(hparams or {}).get(kind, {})).fit(encoded[train], y[train])
            p = pred.predict(encoded[test])
            pooled_pred[test] = p
            per_fold.append(_metrics(y[test], p))
            if bar:
                bar.update(1)
        m = np.asarray(per_fold)
        pooled = dict(zip(("rmse", "kendall_tau", "spearman"), _metrics(y, pooled_pred)))
        scores.append(ModelScore(kind, folds, float(m[:, 0].mean()), float(m[:, 1].mean()), float(m[:, 2].mean()),
                                 float(m[:, 0].std()), float(m[:, 1].std()), float(m[:, 2].std()), pooled,
                                 (time.perf_counter() - start) / folds))
    if bar:
        bar.close()
    best = max(scores, key=lambda s: (s.kendall_tau, -s.rmse)).model
    return CVReport(len(y), folds, scores, best)


def fit_predictor(space: SearchSpace, encoded: np.ndarray, y: np.ndarray, model: str = "auto", folds: int = 5,
                  seed: int = 0, compare: Sequence[str] | None = None, progress: bool = False,
                  hparams: dict[str, dict[str, Any]] | None = None) -> Predictor:
    """Cross-validate (``compare`` kinds, all by default), then fit ``model`` on all rows.

    ``model='auto'`` picks the best held-out Kendall tau. The CV report is kept on the predictor.
    """
    if model != "auto" and model not in MODEL_TYPES:
        raise PredictorError(f"model {model!r} not known (allowed: {', '.join(MODEL_TYPES)}, auto)")
    kinds = list(compare) if compare else list(MODEL_TYPES)
    if model != "auto" and model not in kinds:
        kinds.append(model)
    if "gp" in kinds and len(y) > 4000:
        kinds.remove("gp")
    report = cross_validate(space, encoded, y, kinds, folds, seed, hparams, progress)
    chosen = report.best if model == "auto" else model
    pred = Predictor(space, chosen, seed=seed, **(hparams or {}).get(chosen, {})).fit(encoded, y)
    pred.cv_report = report.to_dict()
    return pred
