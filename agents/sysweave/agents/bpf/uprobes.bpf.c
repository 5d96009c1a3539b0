// sysweave function probes: entry/return uprobe pairs, measured in the kernel.
//
// One program text for two toolchains (compat.h): libbpf CO-RE, the default (uprobes.bpf.o, built ahead of
// time by infra/build-bpf.sh), and bcc, the fallback where the kernel has no BTF (compiled at run time).
//
// Every probed function (a symbol of a binary or shared library) gets a probe id. Entry pushes (time,
// arguments) on a per-thread stack in task storage; return pops it, updates the exact per-(process, probe)
// aggregate (calls, total ns, log2 histogram) and ships a record only when the call took at least its class
// threshold (the `thresholds` map, moved by the sampling controller) -- or always for bookkeeping probes.
// Probe identity: the CO-RE build has one entry and one return program, attached once per function with the
// probe id as the attachment's BPF cookie (bpf_get_attach_cookie); bcc (0.26 sets no cookies) gets a pair of
// programs per id, up_entry_XX / up_return_XX (XX = the id in hex), MAX_PROBES of them.
//
// Which processes count is decided by the syscall program's own `targets` array and `settings` map, so
// function probes follow exactly the processes the syscall capture follows (-f children included) and fire
// for nobody else. libbpf reuses those maps by fd (bpf_map__reuse_fd, no bpffs); bcc opens them by a pin
// path the loader makes in bpffs for the time of the load.
//
// Parameters. CO-RE: the read-only globals `up_limits` (pid_max and the syscall program's contract, read
// from syscalls.h) and the maps' sizes are set at load. bcc: cflags (uprobes.py) MAX_PROBES (a multiple of 16,
// <= 256), MAX_AGG, RINGBUF_PAGES, MAX_PID, TARGETS_PIN, CONFIG_PIN (paths), SYS_CFG_N, SYS_CFG_MODE,
// SYS_CFG_SELF, SYS_CFG_CGROUP, SYS_MODE_ALL, SYS_MODE_CGROUP.
#include "compat.h"
#ifdef SYSWEAVE_CORE
#include <bpf/usdt.bpf.h>  // libbpf's USDT argument specs (--usdt: the CO-RE build only)
#endif
#include "uprobes.h"

struct up_stack { u32 depth; u32 pad; struct up_frame f[UP_MAX_DEPTH]; };

#ifdef SYSWEAVE_CORE
// Set at load (uprobes_load.py: _LIMITS); the verifier sees them as constants.
const volatile struct {
    u32 max_pid; u32 cfg_mode; u32 cfg_self; u32 cfg_cgroup; u32 mode_all; u32 mode_cgroup; u32 pad[2];
} up_limits = {4194304, 0, 0, 0, 0, 0, {0, 0}};
#define UP_PID_LIMIT up_limits.max_pid
#define UP_CFG_MODE up_limits.cfg_mode
#define UP_CFG_SELF up_limits.cfg_self
#define UP_CFG_CGROUP up_limits.cfg_cgroup
#define UP_MODE_ALL up_limits.mode_all
#define UP_MODE_CGROUP up_limits.mode_cgroup
#ifndef PT_REGS_PARM6  // libbpf 1.1's bpf_tracing.h stops at 5 (x86-64: the 6th integer argument is in r9)
#define PT_REGS_PARM6(x) (((const struct pt_regs *)(x))->r9)
#endif
// Map sizes are build defaults (uprobes_load.CORE_PARAMS); the loader sizes `probes`, `aggs` and `events`
// per run. `targets` and `sys_config` are the syscall program's own maps (bpf_map__reuse_fd).
MAP_ARRAY(targets, u8, 1);
MAP_ARRAY(sys_config, u64, 1);
#else
#define UP_PID_LIMIT MAX_PID
#define UP_CFG_MODE SYS_CFG_MODE
#define UP_CFG_SELF SYS_CFG_SELF
#define UP_CFG_CGROUP SYS_CFG_CGROUP
#define UP_MODE_ALL SYS_MODE_ALL
#define UP_MODE_CGROUP SYS_MODE_CGROUP
BPF_TABLE_PINNED("array", u32, u8, targets, MAX_PID, TARGETS_PIN);
BPF_TABLE_PINNED("array", u32, u64, sys_config, SYS_CFG_N, CONFIG_PIN);
#endif
MAP_ARRAY(thresholds, u64, UP_CLASS_N);
MAP_ARRAY(probes, struct up_probe, MAX_PROBES);
MAP_PERCPU_ARRAY(lost, u64, UP_LOST_N);
MAP_PERCPU_HASH(aggs, struct up_agg_key, struct up_agg_val, MAX_AGG);
MAP_TASK_STORAGE(stacks, struct up_stack);
MAP_RINGBUF(events, RINGBUF_PAGES);

static __always_inline u64 sys_cfg(u32 slot) {
    u64 *v = sys_config.lookup(&slot);
    return v ? *v : 0;
}

static __always_inline int traced(u32 tgid) {
    if (tgid >= UP_PID_LIMIT) return 0;
    u8 *t = targets.lookup(&tgid);
    if (t && *t == UP_TGT_ACTIVE) return 1;
    u64 mode = sys_cfg(UP_CFG_MODE);
    if (mode == UP_MODE_ALL) return tgid != sys_cfg(UP_CFG_SELF);
    if (mode == UP_MODE_CGROUP) return bpf_get_current_cgroup_id() == sys_cfg(UP_CFG_CGROUP);
    return 0;
}

static __always_inline void count_lost(u32 slot, u64 n) {
    u64 *v = lost.lookup(&slot);
    if (v) *v += n;
}

static __always_inline u32 log2_bucket(u64 v) {
    u32 r = 0;
    if (v >> 32) { v >>= 32; r += 32; }
    if (v >> 16) { v >>= 16; r += 16; }
    if (v >> 8) { v >>= 8; r += 8; }
    if (v >> 4) { v >>= 4; r += 4; }
    if (v >> 2) { v >>= 2; r += 2; }
    if (v >> 1) { r += 1; }
    return r < UP_HIST_BUCKETS ? r : UP_HIST_BUCKETS - 1;
}

// (tgid, probe)'s exact aggregate, made on its first call; 0 (counted as lost) when the table is full.
static __always_inline struct up_agg_val *agg_of(u32 tgid, u32 probe) {
    struct up_agg_key k = {.tgid = tgid, .probe = probe};
    struct up_agg_val *v = aggs.lookup(&k);
    if (!v) {
        struct up_agg_val zero = {};
        if (aggs.update(&k, &zero) != 0) { count_lost(UP_LOST_AGG_FULL, 1); return 0; }
        v = aggs.lookup(&k);
    }
    return v;
}

static __always_inline void aggregate(u32 tgid, u32 probe, u64 dur) {
    struct up_agg_val *v = agg_of(tgid, probe);
    if (!v) return;
    v->calls += 1;
    v->total_ns += dur;
    u32 b = log2_bucket(dur);
    if (b < UP_HIST_BUCKETS) v->hist[b] += 1;
}

static __always_inline void count_hit(u32 tgid, u32 probe) {  // a USDT hit: a point, no duration
    struct up_agg_val *v = agg_of(tgid, probe);
    if (v) v->calls += 1;
}

static __always_inline int on_entry(struct pt_regs *ctx, u32 probe) {
    u64 id = bpf_get_current_pid_tgid();
    if (!traced(id >> 32)) return 0;
    struct up_stack *s = stacks.task_storage_get((struct task_struct *)bpf_get_current_task_btf(), 0,
                                                 BPF_LOCAL_STORAGE_GET_F_CREATE);
    if (!s) return 0;
    u32 d = s->depth;
    s->depth = d + 1;  // counted even past the end, so the matching returns pop the right frames
    if (d >= UP_MAX_DEPTH) { count_lost(UP_LOST_DEPTH, 1); return 0; }
    struct up_frame *f = &s->f[d & (UP_MAX_DEPTH - 1)];
    f->probe = probe;
    f->args[0] = PT_REGS_PARM1(ctx); f->args[1] = PT_REGS_PARM2(ctx); f->args[2] = PT_REGS_PARM3(ctx);
    f->args[3] = PT_REGS_PARM4(ctx); f->args[4] = PT_REGS_PARM5(ctx); f->args[5] = PT_REGS_PARM6(ctx);
    f->args[6] = 0; f->args[7] = 0; f->args[8] = 0;
    struct up_probe *p = probes.lookup(&probe);
    if (p && (p->flags & UPF_STACK_ARGS))  // at entry the stack holds the return address, then arguments 7..
        bpf_probe_read_user(&f->args[UP_REG_ARGS], 3 * sizeof(u64), (void *)(PT_REGS_SP(ctx) + 8));
    f->ts = bpf_ktime_get_ns();
    return 0;
}

static __always_inline int on_return(struct pt_regs *ctx, u32 probe) {
    u64 now = bpf_ktime_get_ns();
    u64 id = bpf_get_current_pid_tgid();
    struct up_stack *s = stacks.task_storage_get((struct task_struct *)bpf_get_current_task_btf(), 0, 0);
    if (!s || s->depth == 0) return 0;
    u32 depth = s->depth;
    if (depth > UP_MAX_DEPTH) { s->depth = depth - 1; return 0; }  // its entry was not recorded
    // The innermost frame of this probe: frames above it lost their return (longjmp, unwinding).
    u32 found = UP_MAX_DEPTH;
#pragma unroll
    for (u32 i = 0; i < UP_MAX_DEPTH; i++) {
        if (i < depth && found == UP_MAX_DEPTH) {
            u32 j = (depth - 1 - i) & (UP_MAX_DEPTH - 1);
            if (s->f[j].probe == probe) found = j;
        }
    }
    if (found >= UP_MAX_DEPTH) return 0;  // a return without our entry (attached mid-call)
    if (found + 1 < depth) count_lost(UP_LOST_UNMATCHED, depth - 1 - found);
    s->depth = found;
    struct up_frame *f = &s->f[found];
    u64 dur = now - f->ts;
    u32 tgid = id >> 32;
    aggregate(tgid, probe, dur);

    struct up_probe *p = probes.lookup(&probe);
    if (!p) return 0;
    u32 cls = p->cls;
    if (cls != UP_CLASS_ALWAYS) {
        u64 *thr = thresholds.lookup(&cls);
        if (!thr || dur < *thr) return 0;
    }
#ifdef SYSWEAVE_CORE
    struct up_rec *r = bpf_ringbuf_reserve(&events, sizeof(struct up_rec), 0);
#else
    struct up_rec *r = events.ringbuf_reserve(sizeof(struct up_rec));
#endif
    if (!r) { count_lost(UP_LOST_RINGBUF, 1); return 0; }
    r->pid = tgid; r->tid = (u32)id; r->probe = probe; r->str_len = 0;
    r->ts = f->ts; r->dur = dur; r->ret = PT_REGS_RC(ctx); r->deref = 0;
#pragma unroll
    for (int i = 0; i < UP_ARGS; i++) r->args[i] = f->args[i];
    if (p->flags & UPF_READ_STR) {
        u32 a = p->str_arg & 15;
        if (a < UP_ARGS) {
            int n = bpf_probe_read_user_str(r->str, UP_STR_CAP, (void *)f->args[a]);
            r->str_len = n > 0 ? n : 0;
        }
    }
    if (p->flags & UPF_DEREF) {
        u32 a = p->deref_arg & 15;
        if (a < UP_ARGS) bpf_probe_read_user(&r->deref, sizeof(r->deref), (void *)f->args[a]);
    }
#ifdef SYSWEAVE_CORE
    bpf_ringbuf_submit(r, BPF_RB_NO_WAKEUP);
#else
    events.ringbuf_submit(r, BPF_RB_NO_WAKEUP);
#endif
    return 0;
}

#ifdef SYSWEAVE_CORE
// The probe id is the attachment's cookie. Two pairs of the same programs: *_multi are loaded for uprobe_multi
// links (kernel 6.6+: one link per library and direction, detached with one RCU grace period where a uprobe
// per function waits ~0.1 s each); up_entry/up_return attach one perf-event uprobe per function elsewhere.
SEC("uprobe") int up_entry(struct pt_regs *ctx) { return on_entry(ctx, (u32)bpf_get_attach_cookie(ctx)); }
SEC("uretprobe") int up_return(struct pt_regs *ctx) { return on_return(ctx, (u32)bpf_get_attach_cookie(ctx)); }
SEC("uprobe") int up_entry_multi(struct pt_regs *ctx) { return on_entry(ctx, (u32)bpf_get_attach_cookie(ctx)); }
SEC("uprobe") int up_return_multi(struct pt_regs *ctx) { return on_return(ctx, (u32)bpf_get_attach_cookie(ctx)); }
// USDT probes (--usdt): every hit of a traced process counted exactly. up_hit_multi is attached at the
// probes' sites by uprobe_multi links (the cookie is the probe id); up_usdt by libbpf's USDT support where
// the kernel has no such links (libbpf keeps the attach cookie for the argument spec: the id is the USDT cookie).
SEC("uprobe") int up_hit_multi(struct pt_regs *ctx) {
    u32 tgid = bpf_get_current_pid_tgid() >> 32;
    if (traced(tgid)) count_hit(tgid, (u32)bpf_get_attach_cookie(ctx));
    return 0;
}
SEC("usdt") int up_usdt(struct pt_regs *ctx) {
    u32 tgid = bpf_get_current_pid_tgid() >> 32;
    if (traced(tgid)) count_hit(tgid, (u32)bpf_usdt_cookie(ctx));
    return 0;
}
#else
#define UP_PAIR(n) \
    int up_entry_##n(struct pt_regs *ctx) { return on_entry(ctx, 0x##n); } \
    int up_return_##n(struct pt_regs *ctx) { return on_return(ctx, 0x##n); }
#define UP_16(h) UP_PAIR(h##0) UP_PAIR(h##1) UP_PAIR(h##2) UP_PAIR(h##3) UP_PAIR(h##4) UP_PAIR(h##5) \
    UP_PAIR(h##6) UP_PAIR(h##7) UP_PAIR(h##8) UP_PAIR(h##9) UP_PAIR(h##a) UP_PAIR(h##b) UP_PAIR(h##c) \
    UP_PAIR(h##d) UP_PAIR(h##e) UP_PAIR(h##f)

UP_16(0)
#if MAX_PROBES > 0x10
UP_16(1)
#endif
#if MAX_PROBES > 0x20
UP_16(2)
#endif
#if MAX_PROBES > 0x30
UP_16(3)
#endif
#if MAX_PROBES > 0x40
UP_16(4)
#endif
#if MAX_PROBES > 0x50
UP_16(5)
#endif
#if MAX_PROBES > 0x60
UP_16(6)
#endif
#if MAX_PROBES > 0x70
UP_16(7)
#endif
#if MAX_PROBES > 0x80
UP_16(8)
#endif
#if MAX_PROBES > 0x90
UP_16(9)
#endif
#if MAX_PROBES > 0xa0
UP_16(a)
#endif
#if MAX_PROBES > 0xb0
UP_16(b)
#endif
#if MAX_PROBES > 0xc0
UP_16(c)
#endif
#if MAX_PROBES > 0xd0
UP_16(d)
#endif
#if MAX_PROBES > 0xe0
UP_16(e)
#endif
#if MAX_PROBES > 0xf0
UP_16(f)
#endif
#endif
