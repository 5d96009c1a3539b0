// The contract between syscalls.bpf.c and user space, defined once.
//
// syscalls.py and records.py derive their constants and the record layout from this file
// (sysweave.agents.bpf.contract parses it), and tests/capture/test_contract.py compiles it with gcc and
// compares every field's offset and size with the Python side.  Keep it to what that parser reads:
// `#define NAME <integer>` lines and structs of `type name;` / `type name[N];` members, one per line or
// several separated by ';'.  Sizes that are parameters (PATH_CAP, PAYLOAD_CAP, ARG_CAP) come from cflags.
#ifndef SYSWEAVE_SYSCALLS_H
#define SYSWEAVE_SYSCALLS_H

// Record types (struct rec.type)
#define REC_SYSCALL 1    // one syscall, entry to exit
#define REC_EXEC_ARGS 2  // execve/execveat arguments as read at sys_enter (before the old image is gone)
#define REC_FORK 3       // a traced process forked: aux = child pid
#define REC_EXEC 4       // sched_process_exec: d1 filename, d2 argv read from the new image, aux old pid;
                         // args[1] > 0: d2[args[1] - 1:] = its SYSWEAVE_*/TRACEPARENT environment entries
#define REC_EXIT 5       // the whole process exited

// Config slots (the `config` array)
#define CFG_SLOW_NS 0
#define CFG_FLAGS 1
#define CFG_ARM_TGID 2
#define CFG_MODE 3  // MODE_*
#define CFG_SELF 4
#define CFG_CGROUP 5
#define CFG_GEN 6       // aggregate generation: bumped by every reset, so per-task slot caches go stale
#define CFG_AGG_NEXT 7  // next free aggregate slot (slot 0 means none)
#define CFG_N 8

// CFG_MODE values: which processes are traced besides the targets array
#define MODE_TARGETS 0  // the targets array only
#define MODE_ALL 1      // every process but CFG_SELF
#define MODE_CGROUP 2   // processes in cgroup CFG_CGROUP

// CFG_FLAGS bits
#define FLAG_OBSERVABLE 1
#define FLAG_ALL 2
#define FLAG_FOLLOW 4

// The targets array's values
#define TGT_NONE 0
#define TGT_ACTIVE 1
#define TGT_ARMED 2  // traced from its exec on

// The `observable` array's bits, per syscall number
#define OBS_IO 1      // observable I/O: shipped under FLAG_OBSERVABLE
#define OBS_ALWAYS 2  // process lifecycle: always shipped
#define OBS_NR_MAX 512

// Why a REC_SYSCALL record was shipped (struct rec.reason)
#define R_SLOW 1
#define R_OBSERVABLE 2
#define R_FAILED 4
#define R_FIRST 8
#define R_ALL 16

// REC_EXIT (struct rec.reason): ret holds the task's exit_code as the kernel set it in do_exit (the wait
// status its parent would get: code << 8, or the signal | 0x80 core dumped), also when no wait reports it
#define EXIT_STATUS_KNOWN 1
// REC_EXIT (the bcc fallback, which cannot read task->exit_code): ret holds the signal the process died of,
// as the signal tracepoints' stable formats showed it (a fatal signal delivered with its default action;
// for the kernel's fast path, the fatal signal generated for the process). exit_group's status wins over it
// (the threads an exit_group kills are delivered SIGKILL too)
#define EXIT_SIGNAL_DELIVERED 2

// sendfile, splice (struct rec.aux): the in file's offset after the call, read at exit from the offset
// pointer, or with a NULL pointer from the in fd's position (CO-RE only); when the in fd is a file the bytes
// moved are [aux - ret, aux) of it. OFFSET_UNKNOWN where it cannot be read or lies past 4 GiB.
// vmsplice (struct rec.aux): the number of iovecs; d2 the first one's bytes (capped), as for writev
#define OFFSET_UNKNOWN 0xffffffff

// What a REC_EXEC_ARGS read missed (struct rec.reason): user memory the task had not faulted in yet
// (a fork/vfork child's untouched pages) cannot be read from BPF; REC_EXEC's copy fills the gap.
#define EA_PATH_FAULT 1
#define EA_ARGV_FAULT 2
#define EA_ARGV_TRUNCATED 4  // more arguments or bytes than the record holds

// Slots of the per-CPU `lost` array
#define LOST_RINGBUF 0
#define LOST_AGG_FULL 1
#define LOST_START 2  // a call's start could not be kept when its task was switched out (CO-RE build)
#define LOST_N 3

#define HIST_BUCKETS 40
// Aggregates are stored AGG_GROUP slots to a map value (slot s: value s / AGG_GROUP, entry s % AGG_GROUP):
// a per-CPU array allocates each value separately, and 65536 single-slot values took ~0.2 s of every load.
#define AGG_GROUP 64
// A per-task aggregate slot cache entry: generation << AGG_GEN_SHIFT | slot (so MAX_AGG <= 1 << 20)
#define AGG_GEN_SHIFT 20
#define AGG_GEN_MASK 4095

struct agg_key {
    u32 tgid; u32 nr;
};

struct agg_val {
    u64 calls; u64 errors; u64 total_ns;
    u32 hist[HIST_BUCKETS];
};

// One ring-buffer record.  Shipped cut after d1 + len2 bytes of d2.
// REC_EXEC: args[0] = argc of the new image.
struct rec {
    u32 type; u32 pid; u32 tid; u32 nr;
    u64 ts; u64 dur; s64 ret;
    u64 args[6];
    u32 reason; u32 len1; u32 len2; u32 aux;
    char d1[PATH_CAP];
    char d2[PAYLOAD_CAP + ARG_CAP];
};

#endif
