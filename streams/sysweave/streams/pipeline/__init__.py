"""The one trace pipeline (pure: no faust, no kafka): events in, one finished UnifiedTrace out.

Every mode calls it — ``sysweave trace`` and ``validate`` in-process, the Faust stream worker, the
validator service — so a trace is built the same way wherever it is built.
"""

__all__ = ["assembly", "causality", "clocksync"]  # the public modules; each module's own __all__ marks its names
