"""sysweave benchmarks: `make bench` (or `python -m bench [NAME]`). Results go to docs/benchmarks.md by hand."""
