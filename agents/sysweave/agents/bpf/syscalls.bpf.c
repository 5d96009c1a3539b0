// sysweave syscall capture: raw tracepoints on sys_enter/sys_exit plus sched fork/exec/exit.
//
// Per (process, syscall) exact aggregates live in the kernel (calls, errors, total ns, log2 latency
// histogram); a per-event record goes to the ring buffer only when it passes the sampling rule:
//   duration >= slow threshold  OR  failed  OR  first on this CPU for (process, syscall)
//   OR  (observable I/O and observable capture on)  OR  ship-everything on.
// Targets live in an array indexed by tgid (cheaper than a hash: the filter is the first thing every
// syscall of every process on the host pays).  Values: 0 none, 1 active, 2 armed (traced from its exec).
//
// Two builds of this one text (compat.h): libbpf CO-RE, compiled ahead of time into syscalls.bpf.o
// (infra/build-bpf.sh; build.py spells bcc's map calls m.lookup(k) as libbpf's bpf_map_lookup_elem(&m, k);
// the limits that vary per host or run are set in `limits` and the maps' sizes at load), and bcc,
// compiled at run time where the kernel has no BTF.  bcc parameters (cflags, set by
// syscalls.py): MAX_PID, PATH_CAP, PAYLOAD_CAP (power of two), ARG_CAP, MAX_ARGS, MAX_AGG, RINGBUF_PAGES,
// HAVE_GROUP_DEAD; -I this directory for syscalls.h and compat.h.
#include "compat.h"
#ifdef SYSWEAVE_CORE
#include <asm/unistd_64.h>  // __NR_* (linux-libc-dev, at build time): vmlinux.h has no macros
#else
#include <asm/unistd.h>
#endif
#include "syscalls.h"  // the contract with user space: record layout and constants (defined once)

// Per task: the current call's start, and which aggregate slot each syscall number of this process uses
// (AGG_GEN_SHIFT bits of slot, the rest the generation it was resolved in: a reset makes old ones stale).
struct start_t { u64 ts; u32 nr; u32 valid; u32 slot_of[OBS_NR_MAX]; };

#define REC_HDR (offsetof(struct rec, d1))

#ifdef SYSWEAVE_CORE
// Set by the loader before load (read-only to the programs: the verifier sees constants): what bcc gets as
// cflags.  Compiled bounds (PAYLOAD_CAP here is the largest payload_cap) keep the verifier's view finite.
const volatile struct { u32 max_pid; u32 max_agg; u32 payload_cap; u32 pad; } limits = {4194304, 65536, 4096, 0};
#define PID_LIMIT limits.max_pid
#define AGG_LIMIT limits.max_agg
#define PAYLOAD_LIMIT limits.payload_cap
// sched_process_fork(parent, child), sched_process_exec(p, old_pid, bprm), sched_process_exit(p[, group_dead])
#define SCHED_HOOK(event) RAW_TP(event)
#define FORK_CHILD_PID ((u32)BPF_CORE_READ((struct task_struct *)ctx->args[1], pid))
#define EXEC_OLD_PID ((u32)ctx->args[1])
#define EXEC_READ_FILENAME(dst) \
    bpf_probe_read_kernel_str(dst, PATH_CAP, BPF_CORE_READ((struct linux_binprm *)ctx->args[2], filename))
// Kernels whose exit tracepoint says whether the thread group died (6.16+) have it as the second argument;
// the field's presence in the tracepoint's record type tells (resolved at load, so the other branch is dead).
static __always_inline int exit_has_group_dead(void) {
    struct trace_event_raw_sched_process_exit *t = 0;
    return bpf_core_field_exists(t->group_dead);
}
#define EXIT_WHOLE(tgid, tid) (exit_has_group_dead() ? (int)(u8)ctx->args[1] : (tgid) == (tid))
#else
#define PID_LIMIT MAX_PID
#define AGG_LIMIT MAX_AGG
#define PAYLOAD_LIMIT PAYLOAD_CAP
#define SCHED_HOOK(event) TRACEPOINT_PROBE(sched, event)
#define FORK_CHILD_PID (args->child_pid)
#define EXEC_OLD_PID (args->old_pid)
#define EXEC_READ_FILENAME(dst) TP_DATA_LOC_READ_STR(dst, filename, PATH_CAP)
#ifdef HAVE_GROUP_DEAD
#define EXIT_WHOLE(tgid, tid) (args->group_dead)
#else
#define EXIT_WHOLE(tgid, tid) ((tgid) == (tid))
#endif
#endif

MAP_ARRAY(targets, u8, MAX_PID);
MAP_ARRAY(settings, u64, CFG_N);  // the config slots (CFG_*)
MAP_ARRAY(observable, u8, OBS_NR_MAX);  // per nr: OBS_* bits
MAP_PERCPU_ARRAY(lost, u64, LOST_N);
// Aggregates by slot in a per-CPU array (the verifier inlines its lookup) rather than a per-CPU hash keyed
// by (tgid, nr): its lookup was ~40 ns of every traced call (docs/benchmarks.md).  agg_slots resolves a
// (tgid, nr) to its slot once per task and syscall number, cached in the task's storage; slot 0 means none.
struct agg_group { struct agg_val slot[AGG_GROUP]; };
MAP_PERCPU_ARRAY(aggs, struct agg_group, MAX_AGG / AGG_GROUP);
MAP_HASH_NO_PREALLOC(agg_slots, struct agg_key, u32, MAX_AGG);  // filled once per (process, syscall)
MAP_TASK_STORAGE(starts, struct start_t);
MAP_PERCPU_ARRAY(scratch, struct rec, 1);
MAP_RINGBUF(events, RINGBUF_PAGES);
#ifdef SYSWEAVE_CORE
// The call in flight on this CPU: sys_enter writes it, sys_exit reads it (array accesses the verifier inlines,
// where task storage costs a helper call at each end).  A task switched out mid-call takes its start along
// into task storage (sched_switch below), where sys_exit finds it when the per-CPU one is not its own.
// (by task, not tid: a thread that execs takes its group leader's pid between its sys_enter and sys_exit)
struct inflight { u64 ts; u64 task; u32 nr; u32 valid; };
MAP_PERCPU_ARRAY(inflight, struct inflight, 1);
struct slot_cache_e { u32 tgid; u32 gen_slot; };
MAP_PERCPU_ARRAY(slot_cache, struct slot_cache_e, OBS_NR_MAX);
#endif

static __always_inline u64 cfg(u32 slot) {
    u64 *v = settings.lookup(&slot);
    return v ? *v : 0;
}

static __always_inline u8 target_of(u32 tgid) {
    if (tgid >= PID_LIMIT) return 0;
    u8 *t = targets.lookup(&tgid);
    if (t && *t) return *t;
    u64 mode = cfg(CFG_MODE);  // array lookups are inlined by the verifier: cheap for the common mode 0
    if (mode == MODE_ALL) return tgid != cfg(CFG_SELF) ? TGT_ACTIVE : 0;
    if (mode == MODE_CGROUP) return bpf_get_current_cgroup_id() == cfg(CFG_CGROUP) ? TGT_ACTIVE : 0;
    return 0;
}

static __always_inline void count_lost(u32 slot) {
    u64 *v = lost.lookup(&slot);
    if (v) *v += 1;
}

static __always_inline u32 log2_bucket(u64 v) {
    u32 r = 0;
    if (v >> 32) { v >>= 32; r += 32; }
    if (v >> 16) { v >>= 16; r += 16; }
    if (v >> 8) { v >>= 8; r += 8; }
    if (v >> 4) { v >>= 4; r += 4; }
    if (v >> 2) { v >>= 2; r += 2; }
    if (v >> 1) { r += 1; }
    return r < HIST_BUCKETS ? r : HIST_BUCKETS - 1;
}

static __always_inline u32 resolve_slot(u32 tgid, u32 nr) {
    struct agg_key k = {.tgid = tgid, .nr = nr};
    u32 *found = agg_slots.lookup(&k);
    if (found) return *found;
    u32 slot_cfg = CFG_AGG_NEXT;
    u64 *next = settings.lookup(&slot_cfg);
    if (!next) return 0;
    u32 mine = __sync_fetch_and_add(next, 1);
    if (!mine || mine >= AGG_LIMIT) return 0;
    if (agg_slots.insert(&k, &mine) != 0) {  // another CPU resolved it first (or the table is full)
        found = agg_slots.lookup(&k);
        return found ? *found : 0;
    }
    return mine;
}

// Update the exact aggregate; return 1 if this is the first call of (tgid, nr) on this CPU.
// Where (tgid, nr)'s aggregate slot is cached (generation << AGG_GEN_SHIFT | slot), or 0: none.  The CO-RE
// build keeps it per CPU and syscall number, for the last process that used it there (an inlined array
// access; a miss only costs a hash lookup), bcc's in the task's storage.
static __always_inline u32 *slot_cache_for(struct start_t *s, u32 tgid, u32 nr) {
#ifdef SYSWEAVE_CORE
    if (nr >= OBS_NR_MAX) return 0;
    struct slot_cache_e *e = slot_cache.lookup(&nr);
    if (!e) return 0;
    if (e->tgid != tgid) { e->tgid = tgid; e->gen_slot = 0; }
    return &e->gen_slot;
#else
    u32 i = nr;
    if (!s || i >= OBS_NR_MAX) return 0;
    return &s->slot_of[i];
#endif
}

static __always_inline int aggregate(u32 *cached, u32 tgid, u32 nr, u64 dur, s64 ret) {
    u32 gen = (u32)cfg(CFG_GEN) & AGG_GEN_MASK, slot = 0;
    if (cached) {
        u32 e = *cached;
        if ((e >> AGG_GEN_SHIFT) == gen) slot = e & ((1 << AGG_GEN_SHIFT) - 1);
    }
    if (!slot) {
        slot = resolve_slot(tgid, nr);
        if (!slot) { count_lost(LOST_AGG_FULL); return 0; }
        if (cached) *cached = (gen << AGG_GEN_SHIFT) | slot;
    }
    u32 group = slot / AGG_GROUP;
    struct agg_group *g = aggs.lookup(&group);
    if (!g) return 0;
    struct agg_val *v = &g->slot[slot & (AGG_GROUP - 1)];
    int first = v->calls == 0;
    v->calls += 1;
    if (ret < 0 && ret > -4096) v->errors += 1;
    v->total_ns += dur;
    u32 b = log2_bucket(dur);
    if (b < HIST_BUCKETS) v->hist[b] += 1;
    return first;
}

static __always_inline struct rec *new_rec(u32 type, u64 id, u32 nr) {
    u32 zero = 0;
    struct rec *r = scratch.lookup(&zero);
    if (!r) return 0;
    r->type = type; r->pid = id >> 32; r->tid = (u32)id; r->nr = nr;
    r->ts = bpf_ktime_get_ns(); r->dur = 0; r->ret = 0;
    r->reason = 0; r->len1 = 0; r->len2 = 0; r->aux = 0;
    return r;
}

static __always_inline void submit(struct rec *r) {
    u64 size = REC_HDR + PATH_CAP + (u64)r->len2;
    if (size > sizeof(struct rec)) size = sizeof(struct rec);
    barrier_var(size);
    if (size > sizeof(struct rec)) return;
    // No wakeup per record: on a 2-vCPU VM each wakeup is an IPI + context switch (~30 us measured);
    // user space drains on a 20 ms timer instead.
    if (events.ringbuf_output(r, size, BPF_RB_NO_WAKEUP) != 0) count_lost(LOST_RINGBUF);
}

static __always_inline void read_args(struct rec *r, struct pt_regs *regs) {
    struct pt_regs p = {};
    bpf_probe_read_kernel(&p, sizeof(p), regs);
    r->args[0] = p.di; r->args[1] = p.si; r->args[2] = p.dx;
    r->args[3] = p.r10; r->args[4] = p.r8; r->args[5] = p.r9;
}

static __always_inline void read_str1(struct rec *r, u64 uptr) {
    if (!uptr) return;
    int n = bpf_probe_read_user_str(r->d1, PATH_CAP, (void *)uptr);
    r->len1 = n > 0 ? n : 0;
}

static __always_inline void read_str2(struct rec *r, u64 uptr) {
    if (!uptr) return;
    int n = bpf_probe_read_user_str(r->d2, PATH_CAP, (void *)uptr);
    r->len2 = n > 0 ? n : 0;
}

static __always_inline void read_payload(struct rec *r, u64 uptr, s64 len) {
    if (!uptr || len <= 0) return;
    u32 n = len > PAYLOAD_LIMIT ? PAYLOAD_LIMIT : (u32)len;
    barrier_var(n);
    if (n > PAYLOAD_CAP) return;
    if (bpf_probe_read_user(r->d2, n, (void *)uptr) == 0) r->len2 = n;
}

static __always_inline void read_sockaddr(struct rec *r, u64 uptr, u64 len) {
    if (!uptr || len == 0) return;
    u32 n = len > PATH_CAP ? PATH_CAP : (u32)len;
    barrier_var(n);
    if (n > PATH_CAP) return;
    if (bpf_probe_read_user(r->d1, n, (void *)uptr) == 0) r->len1 = n;
}

static __always_inline u64 read_u64(u64 uptr) {
    u64 v = 0;
    if (uptr) bpf_probe_read_user(&v, sizeof(v), (void *)uptr);
    return v;
}

static __always_inline u32 read_u32(u64 uptr) {
    u32 v = 0;
    if (uptr) bpf_probe_read_user(&v, sizeof(v), (void *)uptr);
    return v;
}

// execve's filename and argv as the caller passed them (what strace shows, also for #! scripts).  BPF
// cannot fault pages in: strings in pages the task has not touched yet (a fork/vfork child's string
// literals) fail to read.  r->reason says what failed (EA_*); REC_EXEC's copy from the new image fills in.
static __always_inline void read_exec_args(struct rec *r, u64 fname, u64 argv) {
    if (fname) {
        int n = bpf_probe_read_user_str(r->d1, PATH_CAP, (void *)fname);
        if (n > 0) r->len1 = n;
        else r->reason |= EA_PATH_FAULT;
    }
    u32 off = 0, argc = 0, done = !argv;  // execve(path, NULL, ...) runs with an empty argv
    // A bounded loop the verifier walks, not unrolled: unrolling 20 bodies cost ~0.5 s of every compile.
#pragma clang loop unroll(disable)
    for (int i = 0; i < MAX_ARGS; i++) {
        if (done) break;
        u64 p = 0;
        if (bpf_probe_read_user(&p, sizeof(p), (void *)(argv + i * 8)) != 0) { r->reason |= EA_ARGV_FAULT; break; }
        if (!p) { done = 1; break; }
        u64 o = off;
        barrier_var(o);
        o &= (PAYLOAD_CAP - 1);
        int n = bpf_probe_read_user_str(&r->d2[o], ARG_CAP, (void *)p);
        if (n <= 0) { r->reason |= EA_ARGV_FAULT; break; }
        off += n; argc++;
        if (off >= PAYLOAD_LIMIT) break;
    }
    if (!done && !(r->reason & EA_ARGV_FAULT)) r->reason |= EA_ARGV_TRUNCATED;
    r->len2 = off; r->aux = argc;
}

// argv of the image exec has just built, from its initial stack: the user sp (set by start_thread)
// points at argc, then argv[0..argc-1]; the strings lie back to back from argv[0], written by the kernel
// moments ago, so resident.  d2 = the strings (NUL-separated, cut at PAYLOAD_LIMIT), args[0] = argc.
static __always_inline void read_image_argv(struct rec *r) {
    struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs((struct task_struct *)bpf_get_current_task_btf());
    u64 sp = 0;
    if (!regs || bpf_probe_read_kernel(&sp, sizeof(sp), &regs->sp) != 0 || !sp) return;
    u64 argc = read_u64(sp);
    r->args[0] = argc;
    if (!argc) return;
    u64 first = read_u64(sp + 8), last = read_u64(sp + 8 * argc);  // argv[0], argv[argc - 1]
    if (!first || last < first) return;
    u64 before = last - first;  // bytes of every argument but the last
    if (before >= PAYLOAD_LIMIT) {
        u32 cap = PAYLOAD_LIMIT;
        barrier_var(cap);
        if (cap > PAYLOAD_CAP) return;
        if (bpf_probe_read_user(r->d2, cap, (void *)first) == 0) r->len2 = cap;
        return;
    }
    u32 n = before;
    barrier_var(n);
    if (n >= PAYLOAD_CAP) return;
    if (n && bpf_probe_read_user(r->d2, n, (void *)first) != 0) return;
    u64 o = n;
    barrier_var(o);
    o &= (PAYLOAD_CAP - 1);
    int m = bpf_probe_read_user_str(&r->d2[o], ARG_CAP, (void *)last);
    r->len2 = n + (m > 0 ? m : 0);
}

// A job naming itself: the new image's SYSWEAVE_* and TRACEPARENT environment entries, appended to d2 after
// argv (args[1], below; 0: none). envp follows argv's NULL on the stack; each entry's first 8 bytes are
// compared (one read per entry), ENV_SCAN entries at most, and the first 3 matches are copied.
// args[1] = 1 + the offset of the first copied entry in d2.  Two passes, the matches noted in the record
// (args[2..4], count in args[5]; zeroed after): what the verifier tracks stays the same from one entry to the
// next, so it walks the scan once per entry -- copying while scanning, or keeping the matches in registers,
// made it explore every combination (0.5 s of every load, or past its 1M-instruction limit).
#define ENV_SCAN 128
#define ENV_SYSWEAVE 0x4556414557535953ULL  // "SYSWEAVE", little-endian
#define ENV_TRACEPAR 0x5241504543415254ULL  // "TRACEPAR"
#define ENV_TRACE_L 0x4c5f45434152545fULL   // "_TRACE_L": only SYSWEAVE_TRACE_LABEL is a job's name; the other
                                            // SYSWEAVE_* settings (STORE, BPF_LOADER, ...) must not use the 3 slots
static __always_inline void read_image_env(struct rec *r) {
    r->args[1] = 0;
    struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs((struct task_struct *)bpf_get_current_task_btf());
    u64 sp = 0;
    if (!regs || bpf_probe_read_kernel(&sp, sizeof(sp), &regs->sp) != 0 || !sp) return;
    u64 envp = sp + 8 * (read_u64(sp) + 2);
    r->args[2] = 0; r->args[3] = 0; r->args[4] = 0; r->args[5] = 0;
#pragma clang loop unroll(disable)
    for (int i = 0; i < ENV_SCAN; i++) {
        u64 p = read_u64(envp + 8 * i);
        if (!p) break;
        u64 head = read_u64(p);
        if (head != ENV_SYSWEAVE && head != ENV_TRACEPAR) continue;
        if (head == ENV_SYSWEAVE && read_u64(p + 8) != ENV_TRACE_L) continue;
        u64 n = r->args[5];
        if (n >= 3) break;
        r->args[2 + n] = p;
        r->args[5] = n + 1;
    }
    u32 o = r->len2, copied = 0;
#pragma clang loop unroll(full)
    for (int j = 0; j < 3; j++) {
        u64 p = r->args[2 + j];
        if (!p || o >= PAYLOAD_LIMIT) break;
        barrier_var(o);
        u32 at = o & (PAYLOAD_CAP - 1);
        int m = bpf_probe_read_user_str(&r->d2[at], ARG_CAP, (void *)p);
        if (m <= 0) continue;
        if (!copied) r->args[1] = (u64)at + 1;
        copied++;
        o = at + m;
    }
    r->args[2] = 0; r->args[3] = 0; r->args[4] = 0; r->args[5] = 0;
    r->len2 = o;
}

// The file position of one of the current task's fds (sendfile with a NULL offset pointer moves the in
// file's own position). CO-RE only: bcc cannot trust the installed headers' struct layouts.
#ifdef SYSWEAVE_CORE
static __always_inline u64 fd_pos(u64 fd) {
    struct task_struct *t = (struct task_struct *)bpf_get_current_task_btf();
    struct fdtable *fdt = BPF_CORE_READ(t, files, fdt);
    struct file **fds = BPF_CORE_READ(fdt, fd);
    struct file *f = 0;
    if (fd >= BPF_CORE_READ(fdt, max_fds) || bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]) || !f)
        return OFFSET_UNKNOWN;
    return BPF_CORE_READ(f, f_pos);
}
#else
#define fd_pos(fd) OFFSET_UNKNOWN
#endif

// The in file's offset after a sendfile/splice (OFFSET_UNKNOWN, syscalls.h): from the offset pointer, or for
// a NULL pointer from the in fd's own position.
static __always_inline u32 in_offset_after(u64 off_ptr, u64 in_fd, s64 ret) {
    u64 end = ret <= 0 ? OFFSET_UNKNOWN : off_ptr ? read_u64(off_ptr) : fd_pos(in_fd);
    return end < OFFSET_UNKNOWN ? (u32)end : OFFSET_UNKNOWN;
}

// The first iovec of a readv/writev/sendmsg/recvmsg: payload (capped) in d2; aux = number of iovecs.
static __always_inline void read_iov0(struct rec *r, u64 iov, s64 ret) {
    u64 base = read_u64(iov), len = read_u64(iov + 8);
    read_payload(r, base, ret < (s64)len ? ret : (s64)len);
}

static __always_inline void decode(struct rec *r) {
    u64 *a = r->args;
    s64 ret = r->ret;
    switch (r->nr) {
    case __NR_open: case __NR_creat: case __NR_stat: case __NR_lstat: case __NR_access: case __NR_unlink:
    case __NR_mkdir: case __NR_rmdir: case __NR_chdir: case __NR_truncate: case __NR_chmod: case __NR_chown:
    case __NR_readlink: case __NR_mknod:
        read_str1(r, a[0]); break;
    case __NR_openat: case __NR_openat2: case __NR_newfstatat: case __NR_statx: case __NR_faccessat:
    case __NR_faccessat2: case __NR_unlinkat: case __NR_mkdirat: case __NR_fchmodat: case __NR_fchownat:
    case __NR_readlinkat: case __NR_utimensat: case __NR_mknodat:
        read_str1(r, a[1]); break;
    case __NR_rename: case __NR_link: case __NR_symlink:
        read_str1(r, a[0]); read_str2(r, a[1]); break;
    case __NR_renameat: case __NR_renameat2: case __NR_linkat:
        read_str1(r, a[1]); read_str2(r, a[3]); break;
    case __NR_symlinkat:
        read_str1(r, a[0]); read_str2(r, a[2]); break;
    case __NR_write: case __NR_pwrite64: case __NR_read: case __NR_pread64:
        read_payload(r, a[1], ret); break;
    case __NR_sendto:
        read_payload(r, a[1], ret); read_sockaddr(r, a[4], a[5]); break;
    case __NR_recvfrom:
        read_payload(r, a[1], ret); if (a[5]) read_sockaddr(r, a[4], read_u32(a[5])); break;
    case __NR_writev: case __NR_readv: case __NR_pwritev: case __NR_preadv: case __NR_pwritev2: case __NR_preadv2:
        read_iov0(r, a[1], ret); r->aux = (u32)a[2]; break;
    case __NR_sendmsg: case __NR_recvmsg: {
        // struct user_msghdr: name@0, namelen@8, iov@16, iovlen@24 (uapi, stable)
        u64 name = read_u64(a[1]), iov = read_u64(a[1] + 16);
        read_sockaddr(r, name, read_u32(a[1] + 8));
        read_iov0(r, iov, ret); r->aux = (u32)read_u64(a[1] + 24); break;
    }
    case __NR_connect: case __NR_bind:
        read_sockaddr(r, a[1], a[2]); break;
    case __NR_accept: case __NR_accept4: case __NR_getsockname: case __NR_getpeername:
        if (a[2]) read_sockaddr(r, a[1], read_u32(a[2])); break;
    case __NR_wait4:
        if (ret > 0) r->aux = read_u32(a[1]); break;
    case __NR_sendfile:
        r->aux = in_offset_after(a[2], a[1], ret); break;
    case __NR_splice:  // fd_in a[0], off_in a[1] (a pipe's position is meaningless: the validator knows which)
        r->aux = in_offset_after(a[1], a[0], ret); break;
    case __NR_vmsplice:  // user memory into a pipe: its first iovec, as for writev
        read_iov0(r, a[1], ret); r->aux = (u32)a[2]; break;
    case __NR_pipe: case __NR_pipe2:
        if (ret == 0) read_sockaddr(r, a[0], 8); break;
    case __NR_socketpair:
        if (ret == 0) read_sockaddr(r, a[3], 8); break;
    case __NR_clone3:
        r->aux = (u32)read_u64(a[0]); break;
    // A failed exec returns to the old image: its filename page is resident now (the kernel read it),
    // where sys_enter may not have been able to read it (REC_EXEC_ARGS says so).
    case __NR_execve:
        if (ret < 0) read_str1(r, a[0]); break;
    case __NR_execveat:
        if (ret < 0) read_str1(r, a[1]); break;
    }
}

RAW_TP(sys_enter) {
    u64 id = bpf_get_current_pid_tgid();
    u8 t = target_of(id >> 32);
    if (!t) return 0;  // the filter first: untargeted processes stop here
    u32 nr = ctx->args[1];
    if (nr == __NR_execve || nr == __NR_execveat) {
        // argv must be read before exec replaces the address space; armed processes too (their exec
        // is where tracing starts)
        struct rec *r = new_rec(REC_EXEC_ARGS, id, nr);
        if (r) {
            read_args(r, (struct pt_regs *)ctx->args[0]);
            read_exec_args(r, nr == __NR_execve ? r->args[0] : r->args[1], nr == __NR_execve ? r->args[1] : r->args[2]);
            submit(r);
        }
    } else if (t != TGT_ACTIVE) {
        return 0;
    } else if (nr == __NR_exit_group || nr == __NR_exit) {
        // never returns: count and ship it here
#ifdef SYSWEAVE_CORE
        struct start_t *s = 0;
#else
        struct start_t *s = starts.task_storage_get((struct task_struct *)bpf_get_current_task_btf(), 0,
                                                    BPF_LOCAL_STORAGE_GET_F_CREATE);
        if (!s) return 0;
#endif
        int first = aggregate(slot_cache_for(s, id >> 32, nr), id >> 32, nr, 0, 0);
        struct rec *r = new_rec(REC_SYSCALL, id, nr);
        if (r) {
            read_args(r, (struct pt_regs *)ctx->args[0]);
            r->reason = R_OBSERVABLE | (first ? R_FIRST : 0);
            submit(r);
        }
        return 0;
    }
#ifdef SYSWEAVE_CORE
    u32 zero = 0;
    struct inflight *f = inflight.lookup(&zero);
    if (!f) return 0;
    f->ts = bpf_ktime_get_ns();
    f->task = bpf_get_current_task();
    f->nr = nr;
    f->valid = 1;
#else
    struct start_t *s = starts.task_storage_get((struct task_struct *)bpf_get_current_task_btf(), 0,
                                                BPF_LOCAL_STORAGE_GET_F_CREATE);
    if (!s) return 0;
    s->ts = bpf_ktime_get_ns();
    s->nr = nr;
    s->valid = 1;
#endif
    return 0;
}

RAW_TP(sys_exit) {
    u64 id = bpf_get_current_pid_tgid();
    u32 tgid = id >> 32;
    if (target_of(tgid) != TGT_ACTIVE) return 0;
    u64 start = 0;
    u32 nr = 0;
    struct start_t *s = 0;
#ifdef SYSWEAVE_CORE
    u32 zero = 0;
    struct inflight *f = inflight.lookup(&zero);
    if (f && f->valid && f->task == bpf_get_current_task()) {
        f->valid = 0;
        start = f->ts;
        nr = f->nr;
    } else {  // switched out mid-call: its start moved to task storage
        s = starts.task_storage_get((struct task_struct *)bpf_get_current_task_btf(), 0, 0);
        if (!s || !s->valid) return 0;
        s->valid = 0;
        start = s->ts;
        nr = s->nr;
    }
#else
    s = starts.task_storage_get((struct task_struct *)bpf_get_current_task_btf(), 0, 0);
    if (!s || !s->valid) return 0;
    s->valid = 0;
    start = s->ts;
    nr = s->nr;
#endif
    u64 now = bpf_ktime_get_ns();
    u64 dur = now - start;
    s64 ret = ctx->args[1];
    int first = aggregate(slot_cache_for(s, tgid, nr), tgid, nr, dur, ret);

    u64 flags = cfg(CFG_FLAGS);
    u32 reason = first ? R_FIRST : 0;
    if (dur >= cfg(CFG_SLOW_NS)) reason |= R_SLOW;
    if (ret < 0 && ret > -4096) reason |= R_FAILED;
    if (flags & FLAG_ALL) reason |= R_ALL;
    u32 k = nr;
    u8 *o = observable.lookup(&k);
    if (o && (((*o & OBS_IO) && (flags & FLAG_OBSERVABLE)) || (*o & OBS_ALWAYS))) reason |= R_OBSERVABLE;
    if (!reason) return 0;

    struct rec *r = new_rec(REC_SYSCALL, id, nr);
    if (!r) return 0;
    r->ts = start; r->dur = dur; r->ret = ret; r->reason = reason;
    read_args(r, (struct pt_regs *)ctx->args[0]);
    decode(r);
    submit(r);
    return 0;
}

#ifdef SYSWEAVE_CORE
// A traced task leaves the CPU in the middle of a call (it blocks, or is preempted): its start goes with it
// into its task storage, so sys_exit finds it on whichever CPU the call returns.  Runs at every context
// switch on the host; for a CPU with no traced call in flight it is one array access.
SEC("tp_btf/sched_switch")
int BPF_PROG(sched_switch_hook, bool preempt, struct task_struct *prev, struct task_struct *next) {
    u32 zero = 0;
    struct inflight *f = inflight.lookup(&zero);
    if (!f || !f->valid || f->task != (u64)prev) return 0;
    f->valid = 0;
    struct start_t *s = starts.task_storage_get(prev, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
    if (!s) { count_lost(LOST_START); return 0; }  // that call goes uncounted: said, not hidden
    s->ts = f->ts;
    s->nr = f->nr;
    s->valid = 1;
    return 0;
}
#endif

// The exiting task's wait status (do_exit sets task->exit_code before this tracepoint fires). CO-RE only:
// bcc reads struct task_struct through the installed kernel headers, whose layout need not be the running
// kernel's (measured: garbage on this host's 6.18); it takes the signal from the signal tracepoints instead.
#ifdef SYSWEAVE_CORE
static __always_inline int task_exit_status(struct rec *r) {
    struct task_struct *t = (struct task_struct *)bpf_get_current_task_btf();
    int code = 0;
    if (bpf_probe_read_kernel(&code, sizeof(code), &t->exit_code) != 0) return 0;
    r->ret = code;
    return EXIT_STATUS_KNOWN;
}
#else
// bcc: the signal a process dies of, from the signal tracepoints' formats (no struct layout read). A signal
// delivered with its default action and fatal by default kills the process; for the kernel's fast path
// (complete_signal turns a fatal SIGTERM/SIGINT/... into SIGKILL for every thread) the delivered one is
// SIGKILL and the cause is the last fatal signal generated for the process (later ones are ignored).
MAP_HASH(sig_generated, u32, u32, 8192);  // target pid (tgid or tid) -> the last fatal-by-default signal sent
MAP_HASH(sig_fatal, u32, u32, 8192);  // tgid -> the signal it is dying of

static __always_inline int fatal_by_default(int sig) {
    // SIGCHLD SIGCONT SIGSTOP SIGTSTP SIGTTIN SIGTTOU SIGURG SIGWINCH: ignored or stopping by default
    return sig > 0 && sig <= 64 && !(sig >= 17 && sig <= 23) && sig != 28;
}

TRACEPOINT_PROBE(signal, signal_generate) {
    u32 pid = args->pid, sig = args->sig;
    if (args->result != 0 || !fatal_by_default(args->sig) || pid >= PID_LIMIT || target_of(pid) != TGT_ACTIVE)
        return 0;  // result 0: delivered (not ignored, not already pending, not a group already exiting)
    sig_generated.update(&pid, &sig);
    return 0;
}

TRACEPOINT_PROBE(signal, signal_deliver) {
    u64 id = bpf_get_current_pid_tgid();
    u32 tgid = id >> 32, tid = (u32)id, sig = args->sig;
    if (args->sa_handler != 0 || !fatal_by_default(args->sig) || target_of(tgid) != TGT_ACTIVE) return 0;
    if (sig == 9) {  // SIGKILL: sent as such, or the fast path's stand-in for the signal generated before it
        u32 *cause = sig_generated.lookup(&tgid);
        if (!cause) cause = sig_generated.lookup(&tid);
        if (cause) sig = *cause;
    }
    sig_fatal.update(&tgid, &sig);
    return 0;
}

static __always_inline int task_exit_status(struct rec *r) {
    u32 tgid = r->pid;
    u32 *sig = sig_fatal.lookup(&tgid);
    int known = 0;
    if (sig) {
        r->ret = *sig;
        known = EXIT_SIGNAL_DELIVERED;
    }
    sig_fatal.delete(&tgid);
    sig_generated.delete(&tgid);
    return known;
}
static __always_inline void forget_fatal(u32 tgid) { sig_fatal.delete(&tgid); }
static __always_inline void forget_generated(u32 tid) { sig_generated.delete(&tid); }
#endif
#ifdef SYSWEAVE_CORE
static __always_inline void forget_fatal(u32 tgid) {}
static __always_inline void forget_generated(u32 tid) {}
#endif


SCHED_HOOK(sched_process_fork) {
    u64 id = bpf_get_current_pid_tgid();
    u32 parent = id >> 32;
    u32 child = FORK_CHILD_PID;
    u8 t = target_of(parent);
    u8 mark = 0;
    if (t == TGT_ACTIVE && (cfg(CFG_FLAGS) & FLAG_FOLLOW)) mark = TGT_ACTIVE;
    else if (parent == cfg(CFG_ARM_TGID)) mark = TGT_ARMED;
    if (!mark || child >= PID_LIMIT) return 0;
    targets.update(&child, &mark);
    if (mark == TGT_ACTIVE) {
        struct rec *r = new_rec(REC_FORK, id, 0);
        if (r) { r->aux = child; submit(r); }
    }
    return 0;
}

SCHED_HOOK(sched_process_exec) {
    u64 id = bpf_get_current_pid_tgid();
    u32 tgid = id >> 32;
    u8 t = target_of(tgid);
    if (!t) return 0;
    if (t == TGT_ARMED) {
        u8 active = TGT_ACTIVE;
        targets.update(&tgid, &active);
    }
    forget_fatal(tgid);  // the threads exec's de_thread killed were delivered SIGKILL: not this process's end
    struct rec *r = new_rec(REC_EXEC, id, 0);
    if (r) {
        EXEC_READ_FILENAME(r->d1);
        r->len1 = PATH_CAP;  // NUL-terminated within d1; user space cuts at the NUL
        r->aux = EXEC_OLD_PID;
        read_image_argv(r);
        read_image_env(r);
        submit(r);
    }
    return 0;
}

SCHED_HOOK(sched_process_exit) {
    u64 id = bpf_get_current_pid_tgid();
    u32 tgid = id >> 32, tid = (u32)id;
    int whole = EXIT_WHOLE(tgid, tid);
    if (tid != tgid && target_of(tid)) {  // a thread marked by the fork hook
        u8 none = 0;
        targets.update(&tid, &none);
        forget_generated(tid);
    }
    if (!whole || target_of(tgid) != TGT_ACTIVE) return 0;
    struct rec *r = new_rec(REC_EXIT, id, 0);
    if (r) {
        r->reason = task_exit_status(r);
        submit(r);
    }
    u8 none = 0;
    targets.update(&tgid, &none);
    return 0;
}
