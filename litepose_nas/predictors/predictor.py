"""The accuracy predictor: features of a search space + a regression model + provenance.

Saved as a folder ``NAME/`` holding ``predictor.json`` (format, space, model kind and options,
target scaling, provenance, cross-validation report) and ``arrays.npz`` (the fitted numbers,
read with ``allow_pickle=False``). Nothing in either file can run code when loaded.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import io
import math
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import PredictorError
from ..io import load_npz_bounded, read_json_bounded
from ..space import Arch, SearchSpace
from .features import Featurizer, SpaceTranslator, as_encoded, space_fingerprint
from .models import MODEL_TYPES, MODELS, Model, fit_model

FORMAT = "litepose-nas-predictor/1"
META_FILE = "predictor.json"
ARRAYS_FILE = "arrays.npz"


class Predictor:
    """scikit-learn style: ``Predictor(space, 'mlp').fit(archs, ap)``, then ``predict(archs)``.

    ``archs`` are :class:`Arch` objects or encoded rows of :attr:`space` (or, with ``space=``,
    rows of a subspace of it).
    """

    def __init__(self, space: SearchSpace, model: str = "mlp", seed: int = 0, **hparams: Any) -> None:
        if model not in MODELS:
            raise PredictorError(f"model {model!r} not known (allowed: {', '.join(MODEL_TYPES)})")
        self.space = space
        self.kind = model
        self.seed = int(seed)
        self.hparams = hparams
        self.featurizer = Featurizer(space)
        self.model: Model | None = None
        self.y_mean = 0.0
        self.y_std = 1.0
        self.provenance: dict[str, Any] = {}
        self.cv_report: dict[str, Any] | None = None
        self.source = "in memory"
        self._translators: dict[str, SpaceTranslator] = {}

    # ------------------------------------------------------------------ scikit-learn estimator protocol
    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor arguments, so ``sklearn.base.clone`` and grid searches work."""
        return {"space": self.space, "model": self.kind, "seed": self.seed, **self.hparams}

    def set_params(self, **params: Any) -> "Predictor":
        """Change constructor arguments; the fitted model is dropped (refit to use them). A new
        ``model`` kind starts from its own defaults: only the options given here are kept."""
        current = self.get_params()
        if params.get("model", self.kind) != self.kind:
            current = {k: current[k] for k in ("space", "model", "seed")}
        current.update(params)
        space, model, seed = current.pop("space"), current.pop("model"), current.pop("seed")
        self.__init__(space, model, seed, **current)
        return self

    # ------------------------------------------------------------------ fit / predict
    def fit(self, archs: Sequence[Arch] | np.ndarray, y: Sequence[float] | np.ndarray) -> "Predictor":
        enc = as_encoded(self.space, archs)
        self.space.check_encoded(enc)
        y = np.asarray(y, dtype=np.float64).ravel()
        if len(y) != len(enc):
            raise PredictorError(f"{len(enc)} architectures but {len(y)} targets")
        if len(y) < 4:
            raise PredictorError(f"need at least 4 evaluated architectures to fit a predictor, got {len(y)}")
        if not np.all(np.isfinite(y)):
            raise PredictorError("targets contain NaN or infinite values")
        self.y_mean = float(y.mean())
        self.y_std = float(y.std()) or 1.0
        X = self.featurizer.transform(enc)
        self.model = fit_model(self.kind, X, (y - self.y_mean) / self.y_std, seed=self.seed, **self.hparams)
        self.provenance.setdefault("rows", int(len(y)))
        return self

    def predict(self, archs: Arch | Sequence[Arch] | np.ndarray, space: SearchSpace | None = None) -> np.ndarray:
        """Predicted AP, ``[N]`` float64 (a float for a single :class:`Arch`)."""
        if self.model is None:
            raise PredictorError("predictor is not fitted (call fit or load one)")
        single = isinstance(archs, Arch)
        target = space or self.space
        enc = as_encoded(target, archs)
        if space is not None and space_fingerprint(space) != space_fingerprint(self.space):
            enc = self.translator(space)(enc)
        out = self.model.predict(self.featurizer.transform(enc)) * self.y_std + self.y_mean
        if not np.isfinite(out).all():
            # finite weights can still overflow; a NaN score would be ranked silently
            raise PredictorError(f"{self.source or 'predictor'}: predicts NaN or infinite accuracy for "
                                 f"{int((~np.isfinite(out)).sum())} of {len(out)} architectures (broken predictor?)")
        return float(out[0]) if single else out

    __call__ = predict

    def translator(self, space: SearchSpace) -> SpaceTranslator:
        """Re-encoding for a subspace; raises :class:`PredictorError` for any other space."""
        key = space_fingerprint(space)
        if key not in self._translators:
            self._translators[key] = SpaceTranslator(space, self.space, where=self.source)
        return self._translators[key]

    def check_space(self, space: SearchSpace) -> None:
        """Raise :class:`PredictorError` unless this predictor can score ``space``."""
        if space_fingerprint(space) != space_fingerprint(self.space):
            self.translator(space)

    @property
    def name(self) -> str:
        return str(self.provenance.get("name", f"{self.kind}-{self.space.name}"))

    def describe(self) -> str:
        rows = self.provenance.get("rows", "?")
        return f"{self.name} ({self.kind}, space '{self.space.name}', {rows} training rows)"

    # ------------------------------------------------------------------ save / load
    def to_meta(self) -> dict[str, Any]:
        if self.model is None:
            raise PredictorError("cannot save an unfitted predictor")
        model_meta, _ = self.model.state()
        return {
            "format": FORMAT,
            "space": {"name": self.space.name, "fingerprint": space_fingerprint(self.space), "definition": self.space.to_dict()},
            "model": model_meta,
            "target": {"mean": self.y_mean, "std": self.y_std},
            "features": {"num_features": self.featurizer.num_features, "encoding": "one-hot per dimension, constant dims dropped, inactive slots zero"},
            "provenance": self.provenance,
            "cv": self.cv_report,
        }

    def save(self, path: str | os.PathLike) -> Path:
        """Write the folder ``path`` (``predictor.json`` + ``arrays.npz``), each file atomically."""
        from ..io import write_bytes_atomic, write_json_atomic

        folder = Path(path)
        if folder.exists() and not folder.is_dir():
            raise PredictorError(f"{folder}: exists and is not a folder (a predictor is saved as a folder)")
        assert self.model is not None
        self.provenance.setdefault("created", _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
        self.provenance.setdefault("name", folder.name)
        from .. import __version__

        self.provenance.setdefault("litepose_nas_version", __version__)
        meta = self.to_meta()
        _, arrays = self.model.state()
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        data = buf.getvalue()
        meta["arrays_sha256"] = hashlib.sha256(data).hexdigest()
        folder.mkdir(parents=True, exist_ok=True)
        # arrays first: a predictor.json always points at a complete arrays file, and over an
        # older predictor a save killed between the two files leaves arrays its meta refuses
        write_bytes_atomic(folder / ARRAYS_FILE, data)
        write_json_atomic(folder / META_FILE, meta)
        return folder

    @classmethod
    def load(cls, path: str | os.PathLike, space: SearchSpace | None = None) -> "Predictor":
        """Read a predictor folder (or its ``predictor.json``, or a shipped predictor's name).

        With ``space``, raise :class:`PredictorError` unless the predictor can score it.
        """
        folder = resolve_predictor_path(path)
        meta_path = folder / META_FILE
        meta = read_json_bounded(meta_path, "predictor", PredictorError)
        where = str(folder)
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise PredictorError(f"{meta_path}: format {meta.get('format') if isinstance(meta, dict) else None!r} not supported (expected {FORMAT!r})")
        try:
            fitted_space = SearchSpace.from_dict(meta["space"]["definition"], source=f"{meta_path}: space")
            model_meta = meta["model"]
            kind = model_meta["kind"]
            target = meta["target"]
        except (KeyError, TypeError) as exc:
            raise PredictorError(f"{meta_path}: missing field {exc} (required: space.definition, model.kind, target)") from None
        if kind not in MODELS:
            raise PredictorError(f"{meta_path}: model.kind {kind!r} not known (allowed: {', '.join(MODEL_TYPES)})")
        if space_fingerprint(fitted_space) != meta["space"].get("fingerprint"):
            raise PredictorError(f"{meta_path}: space fingerprint does not match its definition (file edited?)")
        if not (folder / ARRAYS_FILE).exists():
            raise PredictorError(f"{folder / ARRAYS_FILE}: file not found (a predictor folder needs {META_FILE} and {ARRAYS_FILE})")
        arrays = load_npz_bounded(folder / ARRAYS_FILE, "predictor arrays", PredictorError, sha256=meta.get("arrays_sha256"),
                                  recorded_in=f"{META_FILE} (field arrays_sha256): saved halfway over another "
                                  "predictor (fit it again)")
        for name, array in arrays.items():
            if array.dtype.kind not in "biuf":
                raise PredictorError(f"{folder / ARRAYS_FILE}: array {name!r} has dtype {array.dtype} (allowed: real numbers)")
            if not np.isfinite(array).all():
                # a NaN weight makes every score NaN, and a search would rank NaNs silently
                raise PredictorError(f"{folder / ARRAYS_FILE}: array {name!r} holds NaN or infinite values")
        pred = cls(fitted_space, kind, seed=model_meta.get("seed", 0), **model_meta.get("hparams", {}))
        pred.model = MODELS[kind].from_state(model_meta, arrays, where)
        width = pred.featurizer.num_features
        first = _input_width(pred.model)
        if first is not None and first != width:
            raise PredictorError(f"{where}: model expects {first} features, space '{fitted_space.name}' gives {width}")
        pred.y_mean, pred.y_std = _target_scale(target, meta_path)
        pred.provenance = dict(meta.get("provenance") or {})
        pred.cv_report = meta.get("cv")
        pred.source = where
        if space is not None:
            pred.check_space(space)
        return pred


def _target_scale(target: Any, meta_path: Path) -> tuple[float, float]:
    """``target.mean`` and ``target.std``: finite numbers, the std positive."""
    values = []
    for key in ("mean", "std"):
        v = target.get(key) if isinstance(target, dict) else None
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise PredictorError(f"{meta_path}: field target.{key} is {v!r} (allowed: a finite number)")
        values.append(float(v))
    if values[1] <= 0:
        raise PredictorError(f"{meta_path}: field target.std is {values[1]} (allowed: a number > 0)")
    return values[0], values[1]


def _input_width(model: Model) -> int | None:
    a = model.arrays
    if "w0" in a:
        return int(a["w0"].shape[0])
    if "coef" in a:
        return int(a["coef"].shape[0])
    if "x_train" in a:
        return int(a["x_train"].shape[1])
    return None


def resolve_predictor_path(path: str | os.PathLike) -> Path:
    """A predictor folder, its ``predictor.json``, or the name of a shipped predictor."""
    p = Path(path)
    if p.is_file() and p.name == META_FILE:
        return p.parent
    if p.is_dir() and (p / META_FILE).exists():
        return p
    if p.is_file():
        raise PredictorError(f"{p}: expected a predictor folder holding {META_FILE} and {ARRAYS_FILE}")
    if os.sep not in str(path):
        shipped = shipped_predictors()
        if str(path) in shipped:
            return shipped[str(path)]
    if p.is_dir():
        raise PredictorError(f"{p}: folder has no {META_FILE} (not a predictor)")
    names = ", ".join(sorted(shipped_predictors())) or "none"
    raise PredictorError(f"{path}: predictor not found (shipped predictors: {names})")


def shipped_predictors() -> dict[str, Path]:
    """Name -> folder of every predictor shipped in the package's ``predictors/`` folder."""
    from ..resources import shipped_dir

    try:
        root = shipped_dir("predictors")
    except FileNotFoundError:
        return {}
    return {p.name: p for p in sorted(root.iterdir()) if p.is_dir() and (p / META_FILE).is_file()}


def load_predictor(path: str | os.PathLike, space: SearchSpace | None = None) -> Predictor:
    return Predictor.load(path, space)


def default_predictor(space: SearchSpace) -> Predictor | None:
    """The shipped predictor that can score ``space`` (exact space first), or ``None``."""
    candidates = []
    for name, folder in shipped_predictors().items():
        try:
            pred = Predictor.load(folder)
        except PredictorError:
            continue
        exact = space_fingerprint(pred.space) == space_fingerprint(space)
        try:
            pred.check_space(space)
        except PredictorError:
            continue
        candidates.append((not exact, name != "default", name, pred))
    if not candidates:
        return None
    return sorted(candidates, key=lambda c: c[:3])[0][3]
