from .helpers import workload_bin  # noqa: F401  (fixture)
