"""BPF programs, one per ``.bpf.c`` file, each beside its loader."""
