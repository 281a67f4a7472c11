"""A ridge surrogate of the search's own scores, for ranking candidates before scoring them.

The evolutionary search's ``model`` operator costs many cheap mutants per generation, ranks them
with this surrogate and scores only the best-ranked ones. The predictor landscapes are close to
additive in the one-hot choices, so a linear model of the scores so far points to isolated
optima a few choices away from the population's family, which mutation reaches rarely.
"""
from __future__ import annotations

import numpy as np

from ..predictors.features import Featurizer
from ..space import SearchSpace

SURROGATE_ROWS = 4096  # at most this many best rows are fitted (a default search scores ~5,000)


class RidgeSurrogate:
    """Ridge regression on one-hot choices, fitted on the upper half of the scores.

    The upper half, because the surrogate only has to rank good candidates, and a linear fit of
    the whole range is dominated by the poor ones; at most ``max_rows`` of them (the best), so a
    long run's generations do not slow down one after the other.

    ``fit`` is scikit-learn's (every row given anew); a search whose rows only accumulate calls
    ``add`` with each generation's new rows and ``refit``, so each row is one-hot encoded once.
    """

    def __init__(self, space: SearchSpace, alpha: float = 1.0, max_rows: int = SURROGATE_ROWS) -> None:
        self.featurizer = Featurizer(space)
        self.alpha = alpha
        self.max_rows = max_rows
        self.coef_: np.ndarray | None = None
        self._features: list[np.ndarray] = []
        self._scores: list[np.ndarray] = []
        self.rows = 0  # rows added so far

    def fit(self, encoded: np.ndarray, scores: np.ndarray) -> "RidgeSurrogate":
        self._features, self._scores, self.rows = [], [], 0
        return self.add(encoded, scores).refit()

    def add(self, encoded: np.ndarray, scores: np.ndarray) -> "RidgeSurrogate":
        """Append rows (their features are kept) without refitting."""
        if len(encoded):
            self._features.append(self.featurizer.transform(encoded))
            self._scores.append(np.asarray(scores, dtype=np.float64))
            self.rows += len(encoded)
        return self

    def refit(self) -> "RidgeSurrogate":
        """Fit on every row added so far (the upper half of them, at most ``max_rows``)."""
        if len(self._features) > 1:  # one block: later calls only append to it
            self._features, self._scores = [np.concatenate(self._features)], [np.concatenate(self._scores)]
        X_all = self._features[0] if self._features else np.zeros((0, self.featurizer.num_features), np.float32)
        y = self._scores[0] if self._scores else np.zeros(0)
        if self.rows >= 2 * self.max_rows:
            # the upper half of every row has more than max_rows: the fit takes the best max_rows.
            # A row outside them now never enters later (new rows only push it down), so the kept
            # rows alone stay the whole state (in their order of arrival): a long search refits in
            # constant time instead of copying every row it ever scored
            keep = np.zeros(len(y), dtype=bool)
            if len(y) > self.max_rows:
                keep[np.argpartition(-y, self.max_rows - 1)[: self.max_rows]] = True
            else:
                keep[:] = True
            self._features, self._scores = [X_all[keep]], [y[keep]]
            X_all, y, keep = self._features[0], self._scores[0], np.ones(int(keep.sum()), dtype=bool)
        else:
            keep = y >= np.median(y) if len(y) else np.zeros(0, dtype=bool)
            if keep.sum() > self.max_rows:
                keep = np.zeros(len(y), dtype=bool)
                keep[np.argpartition(-y, self.max_rows - 1)[: self.max_rows]] = True
        X = X_all[keep].astype(np.float64)
        gram = X.T @ X + self.alpha * np.eye(X.shape[1])
        self.coef_ = np.linalg.solve(gram, X.T @ (y[keep] - (y[keep].mean() if keep.any() else 0.0)))
        return self

    def predict(self, encoded: np.ndarray) -> np.ndarray:
        if self.coef_ is None:
            raise RuntimeError("RidgeSurrogate.predict before fit")
        return self.featurizer.transform(encoded).astype(np.float64) @ self.coef_
