"""The sysweave command line."""

# the public modules; each module's own __all__ marks its names
__all__ = ["agent", "demo", "export", "main", "query", "runner", "streams", "topics", "trace", "validate", "validator"]
