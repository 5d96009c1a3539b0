"""sysweave.streams: the pure trace pipeline (``pipeline``), the open-trace buffer and the adaptive sampling
controller (pure), and the Faust workers around them (``worker``: the only module that imports faust)."""

__all__ = ["buffer", "pipeline", "sampling", "worker"]  # the public modules; each module's own __all__ marks its names
