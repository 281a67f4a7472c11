"""``predictor collect``: evaluate N subnets of a supernet into an ``evals.csv``, row by row.

Architectures are sampled stratified over MACs (MACs quantiles of a large seeded random pool, in
an order whose every prefix spans the range). Each row is appended and flushed as soon as it
is measured; a rerun skips the architectures already in the file, so a killed job resumes.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError
from ..space import Arch, SearchSpace


def _van_der_corput(k: int) -> float:
    q, denom = 0.0, 1.0
    while k:
        denom *= 2
        k, bit = divmod(k, 2)
        q += bit / denom
    return q


def stratified_sample(space: SearchSpace, n: int, seed: int = 0) -> list[Arch]:
    """``n`` architectures spread evenly over the MACs range, any prefix too.

    A seeded random pool is sorted by MACs; the largest and smallest architectures come first,
    then the pool entries at MACs quantiles 1/2, 1/4, 3/4, 1/8, ... (van der Corput order), so the
    first k rows of a killed run span the range, and a rerun with a larger N extends the same list.
    """
    from ..cost import macs

    rng = np.random.default_rng(seed)
    pool = np.unique(space.sample_encoded(rng, 20000 * (1 + (n - 1) // 400)), axis=0)
    pool = pool[rng.permutation(len(pool))]
    order = np.argsort(macs(pool, convention="paper", space=space), kind="stable")
    picks = [space.encode(space.largest()), space.encode(space.smallest())]
    used = {p.tobytes() for p in picks}
    k = 1
    while len(picks) < min(n, len(pool) + 2):
        pos = int(_van_der_corput(k) * len(order))
        k += 1
        for j in list(range(pos, len(order))) + list(range(pos)):
            row = pool[order[j]]
            if row.tobytes() not in used:
                used.add(row.tobytes())
                picks.append(row)
                break
    return [space.decode(p) for p in picks[:n]]


def collect_evals(supernet_path: str | os.PathLike, data_dir: str | os.PathLike, dataset: str, n_archs: int,
                  out_csv: str | os.PathLike, space: SearchSpace | None = None, *, calib_batches: int = 10,
                  batch_size: int = 8, val_images: int = 200, train_split: str = "train", val_split: str = "val",
                  device: str = "cpu", seed: int = 0, progress: bool = True, predictor: Any = None,
                  resolution_scale: float = 1.0) -> dict[str, int]:
    """Evaluate ``n_archs`` stratified subnets into ``out_csv`` (resumable). ``predictor``: an
    already built :class:`ExactPredictor` (tests), else one is loaded from the files.
    ``resolution_scale``: evaluate each subnet at ``img_size x scale`` (a CPU proxy, see ExactPredictor).

    Under ``torchrun`` (``WORLD_SIZE`` > 1) every rank evaluates its share of the list into its own
    part file and rank 0 merges them into ``out_csv`` (see :mod:`.shards`); the returned counts are
    then the whole run's on rank 0 and this rank's share elsewhere."""
    from .collect_dist import CollectGroup

    out = Path(out_csv)
    if out.exists() and not out.is_file():
        raise DataError(f"{out}: is not a file")
    group = CollectGroup.join(out, device)
    try:
        if predictor is None:
            from .exact import ExactPredictor

            predictor = ExactPredictor.from_files(supernet_path, data_dir, dataset, space, train_split, val_split,
                                                  calib_batches=calib_batches, batch_size=batch_size,
                                                  val_images=val_images, device=group.device, seed=seed,
                                                  resolution_scale=resolution_scale)
        space = space or predictor.space
        if group.is_main and supernet_path is not None:
            check_provenance(out, collection_settings(supernet_path, data_dir, dataset, space, predictor,
                                                      train_split, val_split, seed))
        archs = stratified_sample(space, n_archs, seed)
        done = group.done_archs()
        todo = [(i, a) for i, a in group.share(archs) if a.to_json() not in done]
        _evaluate_into(group.write_path, predictor, space, todo, progress and group.is_main,
                       total=len(group.share(archs)), desc=group.progress_label)
        group.finish()
    finally:
        group.close()
    new = group.count_new(len(todo))
    return {"requested": n_archs, "done": len(archs), "new": new, "skipped": len(archs) - new}


def provenance_path(evals_csv: str | os.PathLike) -> Path:
    """Where ``predictor collect`` records how the rows of ``evals_csv`` were measured."""
    return Path(evals_csv).with_suffix(".provenance.json")


# settings that change the measured AP: rows measured under other values must not share a file
_MEASUREMENT_KEYS = ("supernet_sha256", "dataset", "train_split", "val_split", "space_fingerprint", "calib_batches",
                     "batch_size", "val_images", "resolution_scale", "metric", "seed")


def collection_settings(supernet_path: str | os.PathLike, data_dir: str | os.PathLike, dataset: str,
                        space: SearchSpace, predictor: Any, train_split: str, val_split: str,
                        seed: int) -> dict[str, Any]:
    """How a collection measures AP: the supernet (by content), the data and the evaluation settings."""
    import hashlib

    from .features import space_fingerprint

    digest = hashlib.sha256()
    with open(supernet_path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return {"supernet": str(Path(supernet_path).resolve()), "supernet_sha256": digest.hexdigest(),
            "data": str(Path(data_dir).resolve()), "dataset": dataset, "train_split": train_split,
            "val_split": val_split, "space": space.name, "space_fingerprint": space_fingerprint(space),
            "calib_batches": predictor.calib_batches, "batch_size": predictor.batch_size,
            "val_images": predictor.val_images, "resolution_scale": predictor.resolution_scale,
            "metric": predictor.metric, "seed": int(seed)}


def read_provenance(evals_csv: str | os.PathLike) -> dict[str, Any] | None:
    """The settings recorded beside ``evals_csv`` by ``predictor collect`` (None when there are none)."""
    from ..io import read_json_bounded

    path = provenance_path(evals_csv)
    return read_json_bounded(path, "collection provenance", DataError) if path.is_file() else None


def check_provenance(evals_csv: Path, settings: dict[str, Any]) -> None:
    """Record ``settings`` beside a new ``evals_csv``; refuse to extend one measured differently."""
    from ..io import write_json_atomic

    recorded = read_provenance(evals_csv)
    if recorded is None:
        write_json_atomic(provenance_path(evals_csv), settings)
        return
    changed = [k for k in _MEASUREMENT_KEYS if recorded.get(k) != settings[k]]
    if changed:
        raise DataError(f"{evals_csv}: its rows were measured with other settings ({', '.join(changed)}; see "
                        f"{provenance_path(evals_csv).name}): write to another --out, or delete both files to start again")


def _evaluate_into(path: Path, predictor: Any, space: SearchSpace, todo: list[tuple[int, Arch]], progress: bool,
                   total: int, desc: str) -> None:
    """Evaluate ``todo`` and append one flushed row per architecture to ``path``."""
    from ..cost import macs
    from .data import append_row

    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total, initial=total - len(todo), desc=desc, unit="arch")
    for i, arch in todo:
        r = predictor.evaluate_arch(arch)
        m = r["metrics"]
        append_row(path, {
            "index": i, "space": space.name, "macs_g": f"{macs(arch, convention='paper') / 1e9:.4f}",
            "ap": m.get("AP"), "ap50": m.get("AP50", m.get("AP .5")), "ap75": m.get("AP75", m.get("AP .75")),
            "seconds": f"{r['seconds']:.2f}", "arch": arch.to_json(),
        })
        if bar:
            bar.update(1)
    if bar:
        bar.close()
