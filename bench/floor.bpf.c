// The measurement floor: empty programs on both raw syscall tracepoints (what any eBPF tracer pays).
RAW_TRACEPOINT_PROBE(sys_enter) { return 0; }
RAW_TRACEPOINT_PROBE(sys_exit) { return 0; }
