"""The sysweave command line."""

__all__ = ["agent", "demo", "export", "main", "query", "runner", "streams", "trace", "validate", "validator"]  # the public modules; each module's own __all__ marks its names
