"""Exports of a finished trace: OTLP spans (``otlp``) and Perfetto/Chrome JSON (``perfetto``)."""

__all__ = ["otlp", "perfetto"]  # the public modules; each module's own __all__ marks its names
