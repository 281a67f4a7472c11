"""Where the tests' reference data lives: inside the repository only (``tests/data/``, the shipped
``search_spaces/published/``), so a plain clone runs the suite. See ``tests/data/README.md``."""
from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TEST_DATA = REPO / "tests" / "data"
REAL = TEST_DATA / "real"  # real COCO / CrowdPose samples (mmpose test data, Apache-2.0)
LAYOUT_FILE = TEST_DATA / "checkpoint-layout-search-XS.json"
PUBLISHED = REPO / "search_spaces" / "published"
SEED_NAMES = ("search-XS", "search-S", "search-M", "search-L", "prune-S", "prune-M", "prune-L")
