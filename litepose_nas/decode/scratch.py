"""Per-thread work arrays reused from call to call by the decoder's hot paths."""
from __future__ import annotations

import math
import threading

import numpy as np

_LOCAL = threading.local()
# Larger work arrays are allocated afresh and not kept (their page faults are then small next to
# the work on them): at most ~8M elements per name stay cached (e.g. 17 maps of 512 x 896).
MAX_CACHED = 1 << 23


def scratch(name: str, shape: tuple[int, ...], dtype: type) -> np.ndarray:
    """A work array of ``shape`` and ``dtype`` (contents undefined), private to this thread and to
    ``name``, valid until the next call with the same name. Never return it to a caller.

    The map-sized temporaries of a decode (~1 MB at 17 x 128 x 128) are above malloc's mmap
    threshold, so fresh ones come as new pages whose faults can cost more than the work done on
    them. Each name keeps one buffer that only grows, up to :data:`MAX_CACHED` elements.
    """
    size = math.prod(shape)
    if size > MAX_CACHED:
        return np.empty(shape, dtype=dtype)
    buffers = _LOCAL.__dict__.setdefault("buffers", {})
    buf = buffers.get(name)
    if buf is None or buf.dtype != dtype or buf.size < size:
        buf = buffers[name] = np.empty(size, dtype=dtype)
    return buf[:size].reshape(shape)
