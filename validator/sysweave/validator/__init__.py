"""sysweave.validator: behavioural equivalence (``equivalence``), trace history (``store``), exports
(``export``: OTLP, Perfetto) and the validator service (``service``)."""

__all__ = ["equivalence", "export", "service", "store"]  # the public modules; each module's own __all__ marks its names
