"""A PNG grid of ground truth (or of augmented training samples) for looking at a dataset."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DataError
from ..io import write_bytes_atomic
from .sources import open_dataset


def _draw_people(img: np.ndarray, people: np.ndarray, skeleton, scale: float = 1.0) -> np.ndarray:
    import cv2

    out = img.copy()
    for person in people:
        pts = person[:, :2] * scale
        vis = person[:, 2] > 0
        for a, b in skeleton:
            if vis[a] and vis[b]:
                cv2.line(out, tuple(int(v) for v in pts[a]), tuple(int(v) for v in pts[b]), (255, 255, 255), 1, cv2.LINE_AA)
        for (x, y), v in zip(pts, person[:, 2]):
            if v > 0:
                cv2.circle(out, (int(x), int(y)), 2, (0, 255, 0) if v == 2 else (255, 0, 0), -1)
    return out


def preview_grid(root: str | Path, dataset: str, split: str, out_file: str | Path, count: int = 8,
                 augment: bool = False, size: int = 256, seed: int = 0, recipe: str = "default") -> None:
    import cv2

    src = open_dataset(root, dataset, split)
    if not src.image_ids:
        raise DataError(f"{src.annotation_file}: no images to preview")
    tiles = []
    if augment:
        from .dataset import MEAN, STD, PoseDataset

        ds = PoseDataset(src, input_size=size, train=True, seed=seed, recipe=recipe)
        for i in range(min(count, len(ds))):
            s = ds[i]
            img = (s["image"].permute(1, 2, 0).numpy() * np.array(STD) + np.array(MEAN)) * 255
            hm = cv2.resize(s["heatmaps"][1].max(0).values.numpy(), (size, size))
            mask = cv2.resize(s["masks"][1].numpy(), (size, size), interpolation=cv2.INTER_NEAREST)
            tile = 0.6 * img + 0.4 * 255 * hm[..., None]
            tile[mask < 0.5] *= np.array([1.0, 0.4, 0.4])  # ignored regions tinted red
            tiles.append(np.clip(tile, 0, 255).astype(np.uint8))
    else:
        for image_id in src.image_ids[:count]:
            img = src.load_image(image_id)
            h, w = img.shape[:2]
            s = size / max(h, w)
            small = cv2.resize(img, (max(int(round(w * s)), 1), max(int(round(h * s)), 1)), interpolation=cv2.INTER_AREA)
            small = _draw_people(small, src.people(image_id), src.spec.skeleton, s)
            tile = np.zeros((size, size, 3), np.uint8)
            tile[:small.shape[0], :small.shape[1]] = small
            tiles.append(tile)
    cols = min(4, len(tiles))
    rows = -(-len(tiles) // cols)
    grid = np.zeros((rows * size, cols * size, 3), np.uint8)
    for k, tile in enumerate(tiles):
        r, c = divmod(k, cols)
        grid[r * size:(r + 1) * size, c * size:(c + 1) * size] = tile
    ok, buf = cv2.imencode(".png", cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))
    if not ok:
        raise DataError(f"cannot encode preview {out_file}")
    write_bytes_atomic(out_file, buf.tobytes())
