"""BPF programs, one per ``.bpf.c`` file, each beside its loader."""

__all__ = ["syscalls"]  # the public modules; each module's own __all__ marks its names
