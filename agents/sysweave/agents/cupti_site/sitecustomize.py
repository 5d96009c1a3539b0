"""sysweave's opt-in CUPTI hook for a traced Python (``sysweave trace --gpu`` puts this directory first on
PYTHONPATH and sets SYSWEAVE_CUPTI_DIR). Standard library + cupti-python only; it never stops the program:
without cupti-python or a driver it does nothing.

It enables CUPTI activity records for kernels (CONCURRENT_KERNEL), copies (MEMCPY) and driver API calls
(DRIVER, which carry the CPU thread and the correlation id that joins a launch to its kernel), and at exit
flushes them to ``$SYSWEAVE_CUPTI_DIR/cupti-<pid>.jsonl``: first an anchor line (one simultaneous reading of
the CUPTI clock and CLOCK_MONOTONIC), then one record a line with CUPTI's C field names
(sysweave.agents.cuda_probes.join_cupti reads it). A sitecustomize further down the path is still run.
"""

# Annotations that subscript builtins are quoted and __all__'s type is a comment: a traced Python evaluates
# them when this file runs, and 3.6-3.8 cannot (the program would print "Error in sitecustomize").
import atexit
import json
import os
import time

__all__ = []  # type: list[str]  # run for its side effect: CUPTI activity records of the traced program


def _chain() -> None:
    """Run the sitecustomize this one shadows (the next one on sys.path), if any."""
    import importlib.util
    import sys

    here = os.path.dirname(os.path.abspath(__file__))
    for entry in sys.path:
        if os.path.abspath(entry or ".") == here:
            continue
        path = os.path.join(entry or ".", "sitecustomize.py")
        if os.path.isfile(path):
            spec = importlib.util.spec_from_file_location("_sysweave_next_sitecustomize", path)
            if spec and spec.loader:
                spec.loader.exec_module(importlib.util.module_from_spec(spec))
            return


def _get(a: object, *names: str, default: object = 0) -> object:
    for n in names:
        if hasattr(a, n):
            return getattr(a, n)
    return default


def _record(a: object, kernel: object, memcpy: object, driver: object) -> "dict[str, object] | None":
    """One CUPTI activity record with CUPTI's C field names (None: a kind not asked for). ``kernel``,
    ``memcpy``, ``driver``: this CUPTI's ActivityKind values for CONCURRENT_KERNEL, MEMCPY and DRIVER."""
    k = _get(a, "kind")
    if k == kernel:
        return {"kind": "kernel", "name": str(_get(a, "name", default="")),
                "start": _get(a, "start"), "end": _get(a, "end"),
                "deviceId": _get(a, "device_id", "deviceId"), "streamId": _get(a, "stream_id", "streamId"),
                "correlationId": _get(a, "correlation_id", "correlationId"),
                **{f"grid{x}": _get(a, f"grid_{x.lower()}", f"grid{x}", default=1) for x in "XYZ"},
                **{f"block{x}": _get(a, f"block_{x.lower()}", f"block{x}", default=1) for x in "XYZ"}}
    if k == memcpy:
        return {"kind": "memcpy", "copyKind": _get(a, "copy_kind", "copyKind"), "bytes": _get(a, "bytes"),
                "start": _get(a, "start"), "end": _get(a, "end"),
                "deviceId": _get(a, "device_id", "deviceId"), "streamId": _get(a, "stream_id", "streamId"),
                "correlationId": _get(a, "correlation_id", "correlationId")}
    if k == driver:
        return {"kind": "driver", "cbid": _get(a, "cbid"), "start": _get(a, "start"), "end": _get(a, "end"),
                "threadId": _get(a, "thread_id", "threadId"),
                "correlationId": _get(a, "correlation_id", "correlationId")}
    return None


def _write_records(out_dir: str, anchor: "dict[str, int]", records: "list[dict[str, object]]", errors: int) -> None:
    """``$SYSWEAVE_CUPTI_DIR/cupti-<pid>.jsonl``: the anchor line (clock readings in ns), then one record a line."""
    path = os.path.join(out_dir, f"cupti-{os.getpid()}.jsonl")
    with open(path, "w") as f:
        f.write(json.dumps({"anchor": anchor, "pid": os.getpid(), "hook_errors": errors}) + "\n")
        for r in records:
            f.write(json.dumps(r, default=int) + "\n")


def _install(out_dir: str) -> None:
    try:
        from cupti import cupti
    except ImportError:
        return
    records: list[dict[str, object]] = []
    kinds = cupti.ActivityKind

    def requested() -> "tuple[int, int]":
        return 8 * 1024 * 1024, 0

    errors = [0]

    def completed(activities: "list[object]") -> None:
        try:
            for a in activities:
                r = _record(a, kinds.CONCURRENT_KERNEL, kinds.MEMCPY, kinds.DRIVER)
                if r is not None:
                    records.append(r)
        except Exception:  # a field this CUPTI version names differently: count it, never raise into CUPTI
            errors[0] += 1

    try:
        cupti.activity_register_callbacks(requested, completed)
        for k in (kinds.CONCURRENT_KERNEL, kinds.MEMCPY, kinds.DRIVER):
            cupti.activity_enable(k)
        anchor = {"activity_ns": int(cupti.get_timestamp()), "mono_ns": time.clock_gettime_ns(time.CLOCK_MONOTONIC)}
        anchor["wall_minus_mono"] = time.clock_gettime_ns(time.CLOCK_REALTIME) - time.clock_gettime_ns(time.CLOCK_MONOTONIC)
    except Exception:
        return

    def flush() -> None:
        try:
            cupti.activity_flush_all(1)
        except Exception:
            pass
        _write_records(out_dir, anchor, records, errors[0])

    atexit.register(flush)


if os.environ.get("SYSWEAVE_CUPTI_DIR"):
    _install(os.environ["SYSWEAVE_CUPTI_DIR"])
_chain()
