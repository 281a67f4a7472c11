"""Regression models of a predictor: fitted with scikit-learn, evaluated with plain numpy.

Each model reduces to numbers after fitting (weights, tree node arrays, GP training rows), so
a predictor is saved as JSON + ``.npz`` arrays and loaded without running any stored code
(no pickle). Prediction re-implements each model's forward pass in vectorized numpy, which is
also faster than scikit-learn on the small batches a search scores; :func:`fit_model` checks
the re-implementation against scikit-learn right after fitting.

Targets are standardized by the caller (:class:`~litepose_nas.predictors.Predictor`); the
models see z-scores.
"""
from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from ..errors import JobError, PredictorError

MODEL_TYPES = ("mlp", "gbdt", "ridge", "gp")


class Model:
    """Interface: ``fit(X, y)``, ``predict(X)``, ``state()`` / ``from_state`` for saving."""

    kind: ClassVar[str] = ""
    array_names: ClassVar[tuple[str, ...]] = ()

    def __init__(self, seed: int = 0, **hparams: Any) -> None:
        self.seed = int(seed)
        self.hparams = {**self.default_hparams(), **hparams}
        unknown = set(hparams) - set(self.default_hparams())
        if unknown:
            raise PredictorError(
                f"model '{self.kind}': unknown option {sorted(unknown)[0]!r} "
                f"(allowed: {', '.join(sorted(self.default_hparams()))})"
            )
        self.arrays: dict[str, np.ndarray] = {}

    @classmethod
    def default_hparams(cls) -> dict[str, Any]:
        return {}

    def fit(self, X: np.ndarray, y: np.ndarray) -> "Model":
        raise NotImplementedError

    def predict(self, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    @property
    def fitted(self) -> bool:
        return bool(self.arrays)

    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        return {"kind": self.kind, "seed": self.seed, "hparams": self.hparams}, dict(self.arrays)

    @classmethod
    def from_state(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray], where: str) -> "Model":
        model = cls(seed=meta.get("seed", 0), **meta.get("hparams", {}))
        missing = [n for n in cls.array_names if n not in arrays and not n.endswith("*")]
        if missing:
            raise PredictorError(f"{where}: arrays file lacks {missing[0]!r} for model '{cls.kind}'")
        model.arrays = {k: np.asarray(v) for k, v in arrays.items()}
        model._check_shapes(where)
        return model

    def _check_shapes(self, where: str) -> None:
        pass


# ---------------------------------------------------------------------- ridge
class RidgeModel(Model):
    """Linear model on the one-hot features, regularization chosen by internal CV."""

    kind = "ridge"
    array_names = ("coef", "intercept")

    @classmethod
    def default_hparams(cls) -> dict[str, Any]:
        return {"alphas": [0.001, 0.01, 0.1, 1.0, 10.0, 100.0]}

    def fit(self, X, y):
        from sklearn.linear_model import RidgeCV

        reg = RidgeCV(alphas=self.hparams["alphas"]).fit(X, y)
        self.arrays = {"coef": reg.coef_.astype(np.float64), "intercept": np.array([reg.intercept_], dtype=np.float64)}
        self._reference = reg
        return self

    def predict(self, X):
        return np.asarray(X, dtype=np.float64) @ self.arrays["coef"] + self.arrays["intercept"][0]

    def _check_shapes(self, where):
        if self.arrays["coef"].ndim != 1:
            raise PredictorError(f"{where}: ridge coef must be 1-D")


# ---------------------------------------------------------------------- MLP
class MLPModel(Model):
    """ReLU multi-layer perceptron (Once-for-All's accuracy predictor shape, smaller default)."""

    kind = "mlp"

    @classmethod
    def default_hparams(cls) -> dict[str, Any]:
        return {"hidden": [256, 256, 256], "alpha": 1e-4, "learning_rate": 1e-3, "max_iter": 600}

    def fit(self, X, y):
        import warnings

        from sklearn.exceptions import ConvergenceWarning
        from sklearn.neural_network import MLPRegressor

        reg = MLPRegressor(
            hidden_layer_sizes=tuple(self.hparams["hidden"]), activation="relu", solver="adam",
            alpha=self.hparams["alpha"], learning_rate_init=self.hparams["learning_rate"],
            max_iter=self.hparams["max_iter"], random_state=self.seed, n_iter_no_change=30, tol=1e-6,
            batch_size=min(128, len(y)),
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            reg.fit(X, y)
        self.arrays = {}
        for i, (w, b) in enumerate(zip(reg.coefs_, reg.intercepts_)):
            self.arrays[f"w{i}"] = w.astype(np.float32)
            self.arrays[f"b{i}"] = b.astype(np.float32)
        self._reference = reg
        return self

    @property
    def num_layers(self) -> int:
        return sum(1 for k in self.arrays if k.startswith("w"))

    def predict(self, X):
        h = np.asarray(X, dtype=np.float32)
        n = self.num_layers
        for i in range(n):
            h = h @ self.arrays[f"w{i}"] + self.arrays[f"b{i}"]
            if i < n - 1:
                np.maximum(h, 0.0, out=h)
        return h[:, 0].astype(np.float64)

    def _check_shapes(self, where):
        n = self.num_layers
        if n == 0 or any(f"b{i}" not in self.arrays or f"w{i}" not in self.arrays for i in range(n)):
            raise PredictorError(f"{where}: MLP arrays must be w0, b0, w1, b1, ...")
        for i in range(1, n):
            if self.arrays[f"w{i}"].shape[0] != self.arrays[f"w{i - 1}"].shape[1]:
                raise PredictorError(f"{where}: MLP layer {i} does not fit layer {i - 1}")


# ---------------------------------------------------------------------- gradient-boosted trees
class GBDTModel(Model):
    """Gradient-boosted regression trees; all trees are evaluated at once on node arrays."""

    kind = "gbdt"
    array_names = ("feature", "threshold", "left", "right", "value", "init")

    @classmethod
    def default_hparams(cls) -> dict[str, Any]:
        return {"n_estimators": 300, "max_depth": 4, "learning_rate": 0.05, "subsample": 0.8}

    def fit(self, X, y):
        from sklearn.ensemble import GradientBoostingRegressor

        reg = GradientBoostingRegressor(
            n_estimators=self.hparams["n_estimators"], max_depth=self.hparams["max_depth"],
            learning_rate=self.hparams["learning_rate"], subsample=self.hparams["subsample"],
            random_state=self.seed,
        ).fit(X, y)
        trees = [est[0].tree_ for est in reg.estimators_]
        width = max(t.node_count for t in trees)
        shape = (len(trees), width)
        feature = np.zeros(shape, dtype=np.int32)
        threshold = np.zeros(shape, dtype=np.float64)
        left = np.full(shape, -1, dtype=np.int32)
        right = np.full(shape, -1, dtype=np.int32)
        value = np.zeros(shape, dtype=np.float64)
        for i, t in enumerate(trees):
            m = t.node_count
            feature[i, :m] = np.maximum(t.feature, 0)
            threshold[i, :m] = t.threshold
            left[i, :m] = t.children_left
            right[i, :m] = t.children_right
            value[i, :m] = t.value[:, 0, 0] * reg.learning_rate
        init = float(np.ravel(reg.init_.constant_)[0])
        self.arrays = {"feature": feature, "threshold": threshold, "left": left, "right": right,
                       "value": value, "init": np.array([init])}
        self._reference = reg
        return self

    def predict(self, X):
        X = np.asarray(X, dtype=np.float32)
        a = self.arrays
        n_trees, width = a["feature"].shape
        # flat node indices (tree * width + node) and 1-D takes: searches call this on small
        # batches thousands of times, where 2-D fancy indexing costs several times more
        flat = {k: a[k].ravel() for k in ("feature", "threshold", "left", "right", "value")}
        base = np.arange(n_trees, dtype=np.int64)[None, :] * width
        x_flat = X.ravel()
        row_base = np.arange(X.shape[0], dtype=np.int64)[:, None] * X.shape[1]
        at = np.broadcast_to(base, (X.shape[0], n_trees)).copy()
        for _ in range(int(self.hparams["max_depth"])):
            left = flat["left"].take(at)
            go_left = x_flat.take(row_base + flat["feature"].take(at)) <= flat["threshold"].take(at)
            nxt = np.where(go_left, left, flat["right"].take(at))
            at = np.where(left >= 0, base + nxt, at)
        return a["init"][0] + flat["value"].take(at).sum(axis=1)

    def _check_shapes(self, where):
        shapes = {self.arrays[k].shape for k in ("feature", "threshold", "left", "right", "value")}
        if len(shapes) != 1:
            raise PredictorError(f"{where}: GBDT node arrays differ in shape")


# ---------------------------------------------------------------------- Gaussian process
class GPModel(Model):
    """Gaussian-process regression (constant x RBF + white noise kernel); mean prediction."""

    kind = "gp"
    array_names = ("x_train", "alpha", "kernel")
    max_rows: ClassVar[int] = 4000  # exact GP cost grows as rows^3

    @classmethod
    def default_hparams(cls) -> dict[str, Any]:
        return {"length_scale": 3.0, "noise": 0.1}

    def fit(self, X, y):
        from sklearn.gaussian_process import GaussianProcessRegressor
        from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel

        if len(y) > self.max_rows:
            raise PredictorError(f"model 'gp': {len(y)} rows is too many for an exact GP (at most {self.max_rows}); use mlp or gbdt")
        kernel = ConstantKernel(1.0, (1e-3, 1e3)) * RBF(self.hparams["length_scale"], (1e-2, 1e3)) + \
            WhiteKernel(self.hparams["noise"], (1e-6, 1e1))
        reg = GaussianProcessRegressor(kernel=kernel, normalize_y=False, random_state=self.seed).fit(X, y)
        k = reg.kernel_
        self.arrays = {
            "x_train": np.asarray(X, dtype=np.float64),
            "alpha": np.asarray(reg.alpha_, dtype=np.float64).ravel(),
            "kernel": np.array([k.k1.k1.constant_value, k.k1.k2.length_scale, k.k2.noise_level], dtype=np.float64),
        }
        self._reference = reg
        return self

    def predict(self, X):
        X = np.asarray(X, dtype=np.float64)
        xt, alpha = self.arrays["x_train"], self.arrays["alpha"]
        const, scale = self.arrays["kernel"][0], self.arrays["kernel"][1]
        out = np.empty(X.shape[0])
        xt_sq = (xt**2).sum(1)
        for start in range(0, X.shape[0], 4096):  # bounded memory for big batches
            chunk = X[start:start + 4096]
            d2 = (chunk**2).sum(1)[:, None] + xt_sq[None, :] - 2.0 * chunk @ xt.T
            np.maximum(d2, 0.0, out=d2)
            out[start:start + 4096] = (const * np.exp(-0.5 * d2 / scale**2)) @ alpha
        return out

    def _check_shapes(self, where):
        if self.arrays["x_train"].shape[0] != self.arrays["alpha"].shape[0]:
            raise PredictorError(f"{where}: GP x_train and alpha differ in length")


MODELS: dict[str, type[Model]] = {m.kind: m for m in (MLPModel, GBDTModel, RidgeModel, GPModel)}


def make_model(kind: str, seed: int = 0, **hparams: Any) -> Model:
    if kind not in MODELS:
        raise PredictorError(f"model {kind!r} not known (allowed: {', '.join(MODEL_TYPES)}, auto)")
    return MODELS[kind](seed=seed, **hparams)


def fit_model(kind: str, X: np.ndarray, y: np.ndarray, seed: int = 0, **hparams: Any) -> Model:
    """Fit and check that the numpy forward pass reproduces scikit-learn's predictions."""
    model = make_model(kind, seed, **hparams).fit(X, y)
    reference = model._reference.predict(X[:256])
    ours = model.predict(X[:256])
    if not np.allclose(reference, ours, rtol=1e-4, atol=1e-4 * max(1.0, float(np.abs(reference).max()))):
        raise JobError(f"model '{kind}': numpy re-implementation differs from scikit-learn "
                       f"(max diff {np.abs(reference - ours).max():.3g})")
    del model._reference  # not part of the state: nothing unsafe is kept or saved
    return model
