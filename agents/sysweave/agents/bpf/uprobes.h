// The kernel/user-space contract of uprobes.bpf.c: constants and the layouts of the record, the per-probe
// configuration and the aggregates. uprobes.py derives its slots and the record decoder from this file
// (through contract.parse_header); nothing here is copied by hand on the Python side.
#ifndef SYSWEAVE_UPROBES_H
#define SYSWEAVE_UPROBES_H

#define UP_HIST_BUCKETS 40
#define UP_MAX_DEPTH 16      // nested probed calls per thread (a power of two)
#define UP_ARGS 9            // integer arguments kept per call: the 6 x86-64 argument registers + 3 stack words
#define UP_REG_ARGS 6
#define UP_STR_CAP 128       // bytes of a string argument copied into a record

// Threshold classes: one slot each in the `thresholds` map (the sampling controller moves them).
#define UP_CLASS_COMPUTE 0
#define UP_CLASS_GPU_KERNEL 1
#define UP_CLASS_MEMCPY 2
#define UP_CLASS_ALWAYS 3    // bookkeeping probes: every call ships (threshold ignored)
#define UP_CLASS_N 4

// Per-probe flags (struct up_probe.flags).
#define UPF_READ_STR 1       // copy the NUL-terminated string that argument str_arg points to
#define UPF_DEREF 2          // at return, read the u64 that argument deref_arg points to (an out-parameter)
#define UPF_STACK_ARGS 4     // also keep arguments 7..9 (the first three stack words above the return address)

// Loss counters (per-CPU array `lost`).
#define UP_LOST_RINGBUF 0    // ring buffer full: a record was not shipped (the aggregate still counts it)
#define UP_LOST_AGG_FULL 1   // aggregate table full: a call was not counted
#define UP_LOST_DEPTH 2      // nesting deeper than UP_MAX_DEPTH: a call was not measured
#define UP_LOST_UNMATCHED 3  // entries whose return never came (longjmp, exceptions, exit in the call)
#define UP_LOST_N 4

// Target states shared with the syscall program's `targets` array (see syscalls.h).
#define UP_TGT_ACTIVE 1

struct up_probe { u32 cls; u32 flags; u32 str_arg; u32 deref_arg; };

struct up_agg_key { u32 tgid; u32 probe; };
struct up_agg_val { u64 calls; u64 total_ns; u32 hist[UP_HIST_BUCKETS]; };

struct up_frame { u64 ts; u64 args[UP_ARGS]; u32 probe; u32 pad; };

struct up_rec {
    u32 pid; u32 tid; u32 probe; u32 str_len;
    u64 ts; u64 dur; u64 ret; u64 deref;
    u64 args[UP_ARGS];
    char str[UP_STR_CAP];
};

#endif
