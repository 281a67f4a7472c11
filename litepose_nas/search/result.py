"""The outcome of a search: the best architecture per budget, the Pareto front, the history.

Saved as ``result.json`` (everything; architectures in the original repository's JSON format,
and ``results`` in the original search output format ``{"0": [budget, [score, arch]], ...}``),
``best.json`` (the best architecture under the tightest budget, a plain architecture file that
every other command reads) and ``pareto.png`` (matplotlib).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError, JobError
from ..io import read_json_bounded
from ..space import Arch, SearchSpace
from .pareto import pareto_mask, unique_rows

FORMAT = "litepose-nas-search-result/1"


@dataclass
class BudgetChoice:
    """The best architecture found under one budget (``cost <= limit``)."""

    limit: float
    encoded: np.ndarray | None
    arch: Arch | None
    score: float | None
    cost: float | None
    costs: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"limit": self.limit, "score": self.score, "cost": self.cost, "costs": self.costs,
                "arch": self.arch.to_dict() if self.arch else None}


@dataclass
class SearchResult:
    algo: str
    space: SearchSpace
    objective: dict[str, Any]
    constraint: dict[str, Any]
    constraints: list[dict[str, Any]]
    seed: int
    budget: dict[str, Any]
    best: list[BudgetChoice]
    front_encoded: np.ndarray
    front_scores: np.ndarray
    front_costs: np.ndarray
    history: list[dict[str, Any]]
    evaluations: int
    seconds: float
    info: dict[str, Any] = field(default_factory=dict)
    evaluated_encoded: np.ndarray | None = field(default=None, repr=False)
    evaluated_scores: np.ndarray | None = field(default=None, repr=False)
    evaluated_costs: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.best = carry_forward(self.best, self.info)

    # ------------------------------------------------------------------ views
    @property
    def limits(self) -> list[float]:
        return [b.limit for b in self.best]

    def best_for(self, limit: float) -> BudgetChoice:
        for b in self.best:
            if b.limit == limit:
                return b
        raise KeyError(limit)

    @property
    def tightest(self) -> BudgetChoice:
        return min(self.best, key=lambda b: b.limit)

    def front_archs(self) -> list[Arch]:
        return self.space.decode(self.front_encoded) if len(self.front_encoded) else []

    def original_format(self) -> dict[str, list]:
        """``{"0": [budget, [score, arch]], ...}``: the original search output, tightest first."""
        out = {}
        for i, b in enumerate(sorted(self.best, key=lambda b: b.limit)):
            if b.arch is not None:
                out[str(i)] = [b.limit, [b.score, b.arch.to_dict()]]
        return out

    # ------------------------------------------------------------------ serialisation
    def to_dict(self) -> dict[str, Any]:
        archs = self.front_archs()
        return {
            "format": FORMAT,
            "algo": self.algo,
            "space": self.space.name,
            "space_definition": self.space.to_dict(),
            "objective": self.objective,
            "constraint": self.constraint,
            "constraints": self.constraints,
            "seed": self.seed,
            "budget": self.budget,
            "evaluations": self.evaluations,
            "seconds": round(self.seconds, 4),
            "results": self.original_format(),
            "best": [b.to_dict() for b in sorted(self.best, key=lambda b: b.limit)],
            "pareto_front": [
                {"score": float(s), "cost": float(c), "arch": a.to_dict()}
                for s, c, a in zip(self.front_scores, self.front_costs, archs)
            ],
            "history": self.history,
            "info": self.info,
        }

    def save(self, out_dir: str | os.PathLike, plot: bool = True) -> dict[str, Path]:
        """Write ``best.json``, ``result.json`` and (``plot``) ``pareto.png`` into ``out_dir``."""
        from ..io import write_json_atomic

        out = Path(out_dir)
        if out.exists() and not out.is_dir():
            raise InputError(f"{out}: exists and is not a folder (--out takes a folder)")
        tight = self.tightest
        if tight.arch is None:
            raise JobError(f"no architecture found under the tightest budget {tight.limit:g} {self.constraint.get('unit', '')}")
        paths = {"result": out / "result.json", "best": out / "best.json"}
        tight.arch.to_json(paths["best"])
        if plot:
            paths["pareto"] = out / "pareto.png"
            self.plot(paths["pareto"])
        # last: a result.json says the search finished and its other files are there
        write_json_atomic(paths["result"], self.to_dict())
        return paths

    @classmethod
    def load(cls, path: str | os.PathLike) -> "SearchResult":
        """Read a ``result.json`` (the evaluated-candidates cloud is not stored, the front is)."""
        path = Path(path)
        data = read_json_bounded(path, "search result", InputError)
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise InputError(f"{path}: not a search result (format must be {FORMAT!r})")
        space = SearchSpace.from_dict(data["space_definition"], source=f"{path}: space_definition")
        best = []
        for b in data["best"]:
            arch = Arch.from_dict(b["arch"], source=f"{path}: best") if b["arch"] else None
            enc = space.encode(arch) if arch else None
            best.append(BudgetChoice(b["limit"], enc, arch, b["score"], b["cost"], b.get("costs", {})))
        front = [Arch.from_dict(p["arch"], source=f"{path}: pareto_front") for p in data["pareto_front"]]
        return cls(
            algo=data["algo"], space=space, objective=data["objective"], constraint=data["constraint"],
            constraints=data["constraints"], seed=data["seed"], budget=data["budget"], best=best,
            front_encoded=space.encode(front) if front else np.zeros((0, space.num_dimensions), dtype=np.int64),
            front_scores=np.array([p["score"] for p in data["pareto_front"]]),
            front_costs=np.array([p["cost"] for p in data["pareto_front"]]),
            history=data["history"], evaluations=data["evaluations"], seconds=data["seconds"], info=data.get("info", {}),
        )

    # ------------------------------------------------------------------ plot
    def plot(self, path: str | os.PathLike, reference: tuple[np.ndarray, np.ndarray] | None = None) -> None:
        """Pareto PNG: every evaluated candidate, the front, each budget and its choice.

        ``reference``: an optional ``(scores, costs)`` front to overlay (e.g. the exhaustive one).
        """
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from ..io import atomic_path

        fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
        if self.evaluated_scores is not None and len(self.evaluated_scores):
            ax.scatter(self.evaluated_costs, self.evaluated_scores, s=4, c="0.75", label="evaluated", zorder=1)
        if reference is not None:
            order = np.argsort(reference[1])
            ax.step(np.asarray(reference[1])[order], np.asarray(reference[0])[order], where="post", c="tab:green",
                    lw=1, label="reference front", zorder=2)
        if len(self.front_scores):
            order = np.argsort(self.front_costs)
            ax.step(self.front_costs[order], self.front_scores[order], where="post", c="tab:blue", lw=1.5, zorder=3)
            ax.scatter(self.front_costs, self.front_scores, s=14, c="tab:blue", label="Pareto front", zorder=4)
        for i, b in enumerate(sorted(self.best, key=lambda b: b.limit)):
            ax.axvline(b.limit, c="tab:red", ls="--", lw=0.8, zorder=2)
            if b.score is not None:
                ax.scatter([b.cost], [b.score], marker="*", s=140, c="tab:red", zorder=5,
                           label="best per budget" if i == 0 else None)
        unit = self.constraint.get("unit", "")
        ax.set_xlabel(self.constraint.get("label") or f"{self.constraint.get('name')} ({unit})")
        ax.set_ylabel(self.objective.get("label", "score"))
        ax.set_title(f"{self.algo} search on '{self.space.name}' ({self.evaluations} evaluations)", fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
        fig.tight_layout()
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png")
        plt.close(fig)


def carry_forward(best: list[BudgetChoice], info: dict[str, Any]) -> list[BudgetChoice]:
    """No silent loss: a looser budget is at least as good as every tighter one.

    Whatever meets a tighter limit meets a looser one, so a looser budget whose best scores
    below a tighter budget's best (a per-budget searcher that missed it) gets that choice
    instead; ``info["carried_forward"]`` lists ``{"limit", "from_limit"}`` for each such budget.
    """
    out: list[BudgetChoice] = []
    carried = []
    for b in sorted(best, key=lambda b: b.limit):
        prev = max((p for p in out if p.score is not None), key=lambda p: p.score, default=None)
        if prev is not None and (b.score is None or b.score < prev.score) and prev.cost is not None \
                and prev.cost <= b.limit:
            carried.append({"limit": b.limit, "from_limit": prev.limit})
            b = BudgetChoice(b.limit, prev.encoded, prev.arch, prev.score, prev.cost, dict(prev.costs))
        out.append(b)
    if carried:
        info["carried_forward"] = info.get("carried_forward", []) + carried
    return out


def make_front(encoded: np.ndarray, scores: np.ndarray, costs: np.ndarray, max_cost: float | None = None
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The deduplicated Pareto front of evaluated candidates (optionally only ``cost <= max_cost``)."""
    enc, s, c = unique_rows(encoded, scores, costs)
    if max_cost is not None:
        keep = c <= max_cost
        enc, s, c = enc[keep], s[keep], c[keep]
    m = pareto_mask(s, c)
    order = np.argsort(c[m])
    return enc[m][order], s[m][order], c[m][order]
