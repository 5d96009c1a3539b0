// One program text for two toolchains: libbpf CO-RE (the default; built ahead of time by
// infra/build-bpf.sh with `clang -target bpf -DSYSWEAVE_CORE` against vmlinux.h) and bcc (the fallback where
// the kernel has no BTF: compiled at run time against the kernel headers).  The programs use these macros
// for map declarations and program sections; map calls are written bcc's way (m.lookup(k): bcc's rewriter
// refuses them inside macros) and build.py spells them libbpf's way for the CO-RE build.  Everything else
// (the sampling rule, the aggregates, the record) is written once.
#ifndef SYSWEAVE_COMPAT_H
#define SYSWEAVE_COMPAT_H

#ifdef SYSWEAVE_CORE
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#define MAP_ARRAY(name, val, n) \
    struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, n); __type(key, u32); __type(value, val); } \
    name SEC(".maps")
#define MAP_PERCPU_ARRAY(name, val, n) \
    struct { __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY); __uint(max_entries, n); __type(key, u32); \
             __type(value, val); } name SEC(".maps")
#define MAP_HASH(name, key_t, val, n) \
    struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, n); __type(key, key_t); __type(value, val); } \
    name SEC(".maps")
#define MAP_HASH_NO_PREALLOC(name, key_t, val, n) \
    struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, n); __uint(map_flags, BPF_F_NO_PREALLOC); \
             __type(key, key_t); __type(value, val); } name SEC(".maps")
#define MAP_PERCPU_HASH(name, key_t, val, n) \
    struct { __uint(type, BPF_MAP_TYPE_PERCPU_HASH); __uint(max_entries, n); __type(key, key_t); \
             __type(value, val); } name SEC(".maps")
#define MAP_TASK_STORAGE(name, val) \
    struct { __uint(type, BPF_MAP_TYPE_TASK_STORAGE); __uint(map_flags, BPF_F_NO_PREALLOC); __type(key, int); \
             __type(value, val); } name SEC(".maps")
#define MAP_RINGBUF(name, pages) \
    struct { __uint(type, BPF_MAP_TYPE_RINGBUF); __uint(max_entries, (pages) * 4096); } name SEC(".maps")

// Raw tracepoints: attached and detached at once (a classic tracepoint's perf event waits ~60 ms of RCU
// grace periods on release), their arguments are the tracepoint's C arguments, read with CO-RE.
#define RAW_TP(event) SEC("raw_tp/" #event) int event(struct bpf_raw_tracepoint_args *ctx)
#define UPROBE_FN(name) SEC("uprobe") int name(struct pt_regs *ctx)

char LICENSE[] SEC("license") = "GPL";
#else
#include <uapi/linux/ptrace.h>
#include <asm/ptrace.h>

#define MAP_ARRAY(name, val, n) BPF_ARRAY(name, val, n)
#define MAP_PERCPU_ARRAY(name, val, n) BPF_PERCPU_ARRAY(name, val, n)
#define MAP_HASH(name, key_t, val, n) BPF_HASH(name, key_t, val, n)
#define MAP_HASH_NO_PREALLOC(name, key_t, val, n) BPF_F_TABLE("hash", key_t, val, name, n, BPF_F_NO_PREALLOC)
#define MAP_PERCPU_HASH(name, key_t, val, n) BPF_PERCPU_HASH(name, key_t, val, n)
#define MAP_TASK_STORAGE(name, val) BPF_TASK_STORAGE(name, val)
#define MAP_RINGBUF(name, pages) BPF_RINGBUF_OUTPUT(name, pages)

#define RAW_TP(event) RAW_TRACEPOINT_PROBE(event)
#define UPROBE_FN(name) int name(struct pt_regs *ctx)

// Only pointers to it are passed around: including linux/sched.h for it costs ~0.5 s of every compile.
struct task_struct;
#endif

// Keeps clang from computing a size from the unclamped value, which the verifier would reject.
#ifndef barrier_var
#define barrier_var(v) asm volatile("" : "+r"(v))
#endif

#endif
