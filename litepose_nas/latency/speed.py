"""Time only while the machine runs at its nominal speed.

Shared and virtual machines change speed for tens of seconds at a time. On the 2-core VM this
project is developed on, whole networks and single layers alike ran ~1.5x slower for 25-45 s
stretches while the process still got all of its CPU time, so the CPU-share check of
:mod:`.runners` cannot see them. A table profiled across such stretches mixes fast and slow
rows, and a network timed inside one looks 50 % slower than its layers add up to.

A fixed *reference layer*, timed right before and right after each item, shows these stretches.
:class:`SpeedGuard` keeps the fastest reference time seen as the nominal speed, waits out slow
stretches before timing, re-times an item when the machine slowed during it, and records what it
saw so that items timed before a faster nominal speed was known can be re-timed at the end.
Within the tolerance, times are scaled to the nominal speed by the reference's slowdown
(:func:`speed_factor`), so that a table and a validation run days apart describe the same machine.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any, Callable, TypeVar

import numpy as np

from .layers import LayerConfig

T = TypeVar("T")

# A mid-sized inverted-residual block (~1 ms on 2 x86 cores): long enough to time reliably in a
# few runs, short enough to run twice per timed item.
REFERENCE_LAYER = LayerConfig("block", 64, 32, 32, 192, 7, 1)
REFERENCE_RUNS = 12


def reference_statistic(call: Callable[[], Any], runs: int = REFERENCE_RUNS) -> float:
    """Lower quartile (ms) of ``runs`` timed calls after one warm-up: robust to a single preemption."""
    call()
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        call()
        samples.append((time.perf_counter() - t0) * 1e3)
    return float(np.percentile(samples, 25))


@dataclass
class SpeedCheck:
    """What the guard saw around one timed item."""

    before_ms: float
    after_ms: float
    waited_s: float
    attempts: int

    @property
    def reference_ms(self) -> float:
        """The slower of the two reference timings: what the item's timing may have suffered."""
        return max(self.before_ms, self.after_ms)

    @property
    def fastest_ms(self) -> float:
        """The faster of the two reference timings: a candidate for the nominal speed."""
        return min(self.before_ms, self.after_ms)

    def factor(self, nominal_ms: float) -> float:
        return speed_factor(self.before_ms, self.after_ms, nominal_ms)

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass
class SpeedGuard:
    """Runs timings only while ``probe()`` (reference ms) is within ``tolerance`` of the fastest seen.

    After ``max_wait_s`` without nominal speed the item is timed anyway and the guard *rebases*:
    the machine's speed changed for good (another job started, a thermal limit), and waiting for
    every item would never end. Any later faster reading lowers the nominal speed again.
    """

    probe: Callable[[], float]
    tolerance: float = 1.2
    max_wait_s: float = 90.0
    pause_s: float = 0.5
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    nominal_ms: float = float("inf")
    waited_s: float = 0.0
    retimed: int = 0
    rebased: int = 0

    def measure(self) -> float:
        ms = float(self.probe())
        self.nominal_ms = min(self.nominal_ms, ms)
        return ms

    def is_nominal(self, reference_ms: float, nominal_ms: float | None = None) -> bool:
        return reference_ms <= self.tolerance * (self.nominal_ms if nominal_ms is None else nominal_ms)

    def run(self, timed: Callable[[], T]) -> tuple[T, SpeedCheck]:
        """``timed()`` run at nominal speed (as far as ``max_wait_s`` allows), and what was seen."""
        start = self.clock()
        attempts, timing_s = 0, 0.0
        while True:
            before = self.measure()
            late = self.clock() - start >= self.max_wait_s
            if not self.is_nominal(before) and not late:
                self.sleep(self.pause_s)
                continue
            attempts += 1
            t0 = self.clock()
            result = timed()
            timing_s += self.clock() - t0
            after = self.measure()
            late = self.clock() - start >= self.max_wait_s
            if self.is_nominal(max(before, after)) or late:
                break
            self.retimed += 1
        waited = self.clock() - start - timing_s  # waiting for nominal speed and timing the reference
        self.waited_s += waited
        check = SpeedCheck(before, after, waited, attempts)
        if not self.is_nominal(check.reference_ms):
            self.rebased += 1
            self.nominal_ms = min(before, after)
        return result, check

    def summary(self, reference_ms: list[float], nominal_ms: float) -> dict[str, Any]:
        """Header record: the nominal reference time and how many items were timed off it."""
        refs = [r for r in reference_ms if np.isfinite(r)]
        nominal = nominal_ms
        return {
            "reference_layer": REFERENCE_LAYER.key,
            "statistic": f"lower quartile of {REFERENCE_RUNS} runs, before and after each item",
            "tolerance": self.tolerance,
            "nominal_reference_ms": None if not np.isfinite(nominal) else round(nominal, 4),
            "normalized": "times scaled by nominal / mean(reference before, after)",
            "items": len(refs),
            "off_nominal_items": sum(1 for r in refs if not self.is_nominal(r, nominal)),
            "retimed_during_run": self.retimed,
            "rebased": self.rebased,
            "waited_s": round(self.waited_s, 1),
        }


def speed_factor(before_ms: float, after_ms: float, nominal_ms: float) -> float:
    """What scales a time taken at the observed reference speed to the nominal speed (<= 1 when slower).

    Within the tolerance the machine still varies by up to ~20 %; whole networks and single
    layers slowed by the same factor as the reference layer (1.55x and 1.54x over one slow
    stretch here), so times are scaled by it rather than taken as they came.
    """
    return float(nominal_ms / ((before_ms + after_ms) / 2))
