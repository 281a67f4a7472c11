"""Test-only helpers (not public API): oracle network outputs rendered from known people, and the
slow reference grouper the fast one is checked against. Used by ``tests/`` and ``benchmarks/``."""
