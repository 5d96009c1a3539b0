"""GPU events above the NVML/CUPTI boundary, from recorded readings; NVML itself where a GPU exists."""

from __future__ import annotations

from typing import Any

import pytest

from sysweave.agents.gpu import ActivityClock, kernel_event, memcpy_event, nvml_devices
from sysweave.schemas import codec
from sysweave.schemas.events import MemcpyKind
from sysweave.streams.sampling import CLASS_THRESHOLDS_NS, keep

# Recorded from CUPTI activity buffers (CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL / MEMCPY) of a vector add.
KERNEL: dict[str, Any] = {"name": "_Z6vecAddPKfS0_Pfi", "start": 1_700_000_250_000, "end": 1_700_000_430_000, "deviceId": 0,
          "streamId": 7, "gridX": 4096, "gridY": 1, "gridZ": 1, "blockX": 256, "blockY": 1, "blockZ": 1,
          "correlationId": 42, "threadId": 0}
COPY = {"copyKind": 1, "bytes": 16_777_216, "start": 1_700_000_000_000, "end": 1_700_001_400_000, "deviceId": 0,
        "streamId": 7, "correlationId": 41}
CLOCK = ActivityClock(activity_at_anchor=1_700_000_000_000, mono_at_anchor=5_000_000_000, wall_minus_mono=10**18)


def test_kernel_and_copy_records_become_events() -> None:
    k = kernel_event(KERNEL, CLOCK, "gpu-host", 1234, 9, 1)
    assert k.h.mono_ns == 5_000_250_000 and k.h.duration_ns == 180_000 and k.h.wall_ns == 10**18 + 5_000_250_000
    assert (k.grid, k.block, k.stream, k.correlation_id) == ((4096, 1, 1), (256, 1, 1), 7, 42)
    m = memcpy_event(COPY, CLOCK, "gpu-host", 1234, 9, 2)
    assert m.kind is MemcpyKind.HTOD and m.bytes == 16_777_216 and m.h.duration_ns == 1_400_000
    batch = codec.Batch(9, 1, 0, (k, m))
    assert codec.decode_batch(codec.encode_batch(batch)) == batch


def test_class_thresholds_apply_to_gpu_events() -> None:
    k = kernel_event(KERNEL, CLOCK, "gpu-host", 1234, 9, 1)  # 180 us >= 100 us kernel threshold
    short = kernel_event({**KERNEL, "end": KERNEL["start"] + 20_000}, CLOCK, "gpu-host", 1234, 9, 2)
    seen: set[tuple[str, int, str]] = set()
    assert keep(k, CLASS_THRESHOLDS_NS, seen, False)  # first occurrence and slow
    assert not keep(short, CLASS_THRESHOLDS_NS, seen, False)  # fast, not first: sampled away
    m = memcpy_event(COPY, CLOCK, "gpu-host", 1234, 9, 3)  # 1.4 ms >= 1 ms memcpy threshold
    assert keep(m, CLASS_THRESHOLDS_NS, seen, False)


def test_bad_records_are_rejected() -> None:
    with pytest.raises(ValueError, match="ends before"):
        kernel_event({**KERNEL, "end": 0}, CLOCK, "h", 1, 1, 1)
    with pytest.raises(ValueError, match="memcpy kind"):
        memcpy_event({**COPY, "copyKind": 99}, CLOCK, "h", 1, 1, 1)


@pytest.mark.gpu
def test_nvml_lists_devices() -> None:
    devices = nvml_devices()
    assert devices and devices[0]["memory_total"] > 0 and devices[0]["name"]
