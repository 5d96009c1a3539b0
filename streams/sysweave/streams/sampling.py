"""Adaptive sampling (pure): per-class thresholds and a feedback controller that keeps the shipped span
rate of each host near a target, the way Jaeger's adaptive sampling calculator does.

The controlled quantity is p, the fraction of *eligible* spans (fast, successful, not first, not observable
I/O under validation) that a host ships. Each interval::

    p' = p * (target / observed) ** gain   (observed = shipped spans per second in the last interval)
    increases capped at +50 % per interval, decreases applied at once, no change inside the tolerance band;
    gain starts at 1 and halves whenever the error changes sign (:func:`damped_step`)

Worked example: target 1000/s, observed 4000/s at p = 0.2 -> p' = 0.05 (immediate). Next interval observed
200/s -> the error changed sign, gain 0.5: the raw p' = 0.05 * 5 ** 0.5 = 0.112 is capped at 0.05 * 1.5 = 0.075.

The kernel cannot flip a coin per call cheaply, so p becomes a **duration threshold**: the latency
histogram of the host's exact aggregates gives the threshold t such that about a fraction p of calls take
at least t (:func:`threshold_interpolated`); agents receive t on the control topic and write it into the BPF
map, so sampling cuts cost at the source.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

from sysweave.schemas.events import (
    ComputeBlock,
    Event,
    GpuKernel,
    GpuMemoryTransfer,
    SampleReason,
    SyscallAggregate,
    SyscallSpan,
)
from sysweave.schemas.topics import OperationClass

__all__ = ["CLASS_THRESHOLDS_NS", "ControllerConfig", "HostSampling", "SamplingAuthority", "damped_step", "keep",
           "merged_histogram", "operation_class", "threshold_interpolated"]

# The spec's per-class defaults (ns).
CLASS_THRESHOLDS_NS: dict[OperationClass, int] = {
    OperationClass.GPU_KERNEL: 100_000, OperationClass.COMPUTE: 50_000, OperationClass.SYSCALL: 10_000,
    OperationClass.MEMCPY: 1_000_000}
_SYSCALL_FLOOR_NS = CLASS_THRESHOLDS_NS[OperationClass.SYSCALL]
_CLASS_OF_KIND: dict[type, OperationClass] = {
    SyscallSpan: OperationClass.SYSCALL, GpuKernel: OperationClass.GPU_KERNEL,
    GpuMemoryTransfer: OperationClass.MEMCPY, ComputeBlock: OperationClass.COMPUTE}


def operation_class(e: Event) -> OperationClass | None:
    """The sampling class of an event's kind (None: never sampled — aggregates, lifecycle, ...)."""
    return _CLASS_OF_KIND.get(type(e))


def keep(e: Event, thresholds: dict[OperationClass, int], seen: set[tuple[str, int, str]], observable_run: bool) -> bool:
    """The per-event rule for sources that do not sample in the kernel (SDK, GPU agent).

    Kept: exact aggregates and lifecycle events always; spans at or above their class threshold; failed calls;
    the first (process, name) occurrence; every span already marked observable when the run is under validation.
    ``seen`` is updated (first-occurrence memory)."""
    cls = operation_class(e)
    if cls is None or isinstance(e, SyscallAggregate):
        return True
    name = getattr(e, "name", cls)
    key = (e.h.host_id, e.h.pid, name)
    first = key not in seen
    seen.add(key)
    if first or e.h.duration_ns >= thresholds.get(cls, CLASS_THRESHOLDS_NS[cls]):
        return True
    return isinstance(e, SyscallSpan) and (e.failed or bool(observable_run and e.reason & SampleReason.OBSERVABLE))


@dataclass(frozen=True, slots=True)
class ControllerConfig:
    target_spans_per_s: float = 10_000.0
    max_increase: float = 0.5  # +50 % per interval at most
    tolerance: float = 0.1  # no change while observed is within ±10 % of target
    min_fraction: float = 1e-6


@dataclass(frozen=True, slots=True)
class HostSampling:
    host_id: str
    fraction: float = 1.0  # p: share of eligible spans shipped
    threshold_ns: int = _SYSCALL_FLOOR_NS


def threshold_interpolated(hist_log2: Sequence[int], fraction: float, floor_ns: int) -> int:
    """The duration threshold (ns, at least ``floor_ns``) that about ``fraction`` of the calls in ``hist_log2``
    (bucket i: calls of [2**i, 2**(i+1)) ns) reach, interpolated inside the log2 bucket where the tail reaches
    ``fraction`` (calls taken as spread evenly over the bucket), so every fraction has its own threshold and
    the controller can settle inside its tolerance band instead of jumping between powers of two.
    Example: hist [0]*10 + [900, 90, 10], fraction 0.1 -> 2048 (the boundary is exact); fraction 0.055 ->
    45 of the 90 calls in [2048, 4096) are needed: 3072."""
    total = sum(hist_log2)
    if total == 0 or fraction >= 1.0:
        return floor_ns
    want = fraction * total
    above = 0
    for i in range(len(hist_log2) - 1, -1, -1):
        n = hist_log2[i]
        if n and above + n >= want:
            share = (want - above) / n
            return max(int((1 << (i + 1)) - share * (1 << i)), floor_ns)
        above += n
    return floor_ns


def merged_histogram(aggs: Iterable[SyscallAggregate]) -> list[int]:
    hist: list[int] = []
    for a in aggs:
        if len(hist) < len(a.hist_log2):
            hist += [0] * (len(a.hist_log2) - len(hist))
        for i, n in enumerate(a.hist_log2):
            hist[i] += n
    return hist


def damped_step(state: HostSampling, shipped_spans: int, interval_s: float, hist_log2: Sequence[int],
                cfg: ControllerConfig, gain: float = 1.0, last_error: float = 0.0) -> tuple[HostSampling, float, float]:
    """One controller interval for one host: the new fraction p' = p * (target/observed) ** gain, where gain halves
    (down to 1/8) each time the error changes sign and grows back (x1.5, up to 1) while it keeps its sign. The
    threshold -> rate mapping is only roughly proportional (a histogram bucket's calls are not spread evenly over
    it, the last bucket is partly empty), so the plain step can overshoot by as much as it corrects and oscillate
    around the band forever; halving on a sign change makes it settle. Same caps (+50 % per interval, decreases at
    once) and tolerance band as the module docstring's step; the threshold realising p' comes from
    :func:`threshold_interpolated`. Returns the new state, gain and error."""
    observed = shipped_spans / interval_s if interval_s > 0 else 0.0
    target, p = cfg.target_spans_per_s, state.fraction
    if observed <= 0:
        proposed, error = p * (1 + cfg.max_increase), last_error
    elif abs(observed - target) <= cfg.tolerance * target:
        return state, gain, 0.0
    else:
        error = math.log(target / observed)
        if last_error and (error > 0) != (last_error > 0):
            gain = max(gain / 2, 0.125)
        elif last_error:
            gain = min(gain * 1.5, 1.0)
        proposed = p * math.exp(gain * error)
    if proposed > p:
        proposed = min(proposed, p * (1 + cfg.max_increase))
    p = min(1.0, max(cfg.min_fraction, proposed))
    return replace(state, fraction=p, threshold_ns=threshold_interpolated(hist_log2, p, _SYSCALL_FLOOR_NS)), \
        gain, error


@dataclass
class SamplingAuthority:
    """The one place a host's sampling decision is made, whatever the number of workers.

    Every worker reports, per interval, what it saw of each host (``topics.HostCounts`` on TOPIC_SAMPLING,
    key = host id); the reports of one host all land on one partition of that topic, so exactly one worker —
    the one that owns it — feeds them to its authority. ``step`` then turns the sum of every worker's reports
    since the last step into one decision per host (:func:`damped_step`). Example: two workers each report 2500
    events of host h over a 1 s step, target 1000/s -> observed 5000/s -> p = 0.2 (a decision is returned only
    when the threshold changes). State is per host and is lost when the partition moves to another worker (the
    new owner starts again from p = 1, converging within a few intervals)."""

    cfg: ControllerConfig = field(default_factory=ControllerConfig)
    state: dict[str, HostSampling] = field(default_factory=dict)
    shipped: dict[str, int] = field(default_factory=dict)
    hists: dict[str, list[int]] = field(default_factory=dict)  # latest reported histogram per host (kept while
    # no new one arrives: agents send their exact aggregates every window, which may span several intervals)
    stale: set[str] = field(default_factory=set)
    gain: dict[str, float] = field(default_factory=dict)  # per host: the step's damping (damped_step)
    error: dict[str, float] = field(default_factory=dict)  # per host: the last interval's log(target/observed)

    def report(self, host_id: str, shipped: int, hist_log2: Sequence[int]) -> None:
        self.shipped[host_id] = self.shipped.get(host_id, 0) + shipped
        if not any(hist_log2):
            self.state.setdefault(host_id, HostSampling(host_id))
            return
        if host_id in self.stale:
            self.hists[host_id] = []
            self.stale.discard(host_id)
        h = self.hists.setdefault(host_id, [])
        if len(h) < len(hist_log2):
            h += [0] * (len(hist_log2) - len(h))
        for i, n in enumerate(hist_log2):
            h[i] += n
        self.state.setdefault(host_id, HostSampling(host_id))

    def step(self, interval_s: float) -> list[HostSampling]:
        """One interval for every host reported (a host with no report counts as 0 shipped: relaxes)."""
        out = []
        for host, old in list(self.state.items()):
            new, self.gain[host], self.error[host] = damped_step(
                old, self.shipped.get(host, 0), interval_s, self.hists.get(host, []), self.cfg,
                self.gain.get(host, 1.0), self.error.get(host, 0.0))
            self.state[host] = new
            if new.threshold_ns != old.threshold_ns:
                out.append(new)
        self.shipped.clear()
        self.stale = set(self.hists)  # the next report with a histogram replaces it; until then it is reused
        return out
