"""Latency lookup tables: torch-free profiling, vectorized prediction, fidelity checks.

``load_table(name)`` gives a :class:`LatencyTable`; ``table.predict(encoded, space=space)``
returns milliseconds for a batch of architectures.
"""
from .layers import LayerConfig, enumerate_layers
from .table import LatencyTable, list_tables, load_table, user_dir

__all__ = ["LatencyTable", "LayerConfig", "enumerate_layers", "list_tables", "load_table", "user_dir"]
