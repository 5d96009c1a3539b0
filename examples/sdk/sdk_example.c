/* sysweave SDK from C: one compute block and one transpiler decision over the SDK socket.
 *
 *   cc -O2 -o sdk_example examples/sdk/sdk_example.c
 *   sysweave trace -f -- ./sdk_example            # the block and the decision land in the stored trace
 *   ./sdk_example                                 # untraced: SYSWEAVE_SDK_SOCKET is unset, nothing is sent
 *
 * Each datagram is [1, event] in msgpack (docs/sdk.md, "The datagram, byte by byte"): the tracer takes the
 * pid from the kernel and fills the ids and the wall clock; we send the thread id, the CLOCK_MONOTONIC start
 * and the duration, then the event's own fields. A send that fails is dropped: tracing must never stop the
 * program.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

struct buf { uint8_t b[4096]; size_t n; };

static void put(struct buf *o, const void *p, size_t n) { if (o->n + n <= sizeof o->b) { memcpy(o->b + o->n, p, n); } o->n += n; }
static void u8(struct buf *o, uint8_t v) { put(o, &v, 1); }
static void be(struct buf *o, uint64_t v, int bytes) { for (int i = bytes - 1; i >= 0; i--) u8(o, (uint8_t)(v >> (8 * i))); }
static void str(struct buf *o, const char *s) {  /* fixstr / str8 / str16 */
    size_t n = strlen(s);
    if (n < 32) u8(o, 0xa0 | (uint8_t)n); else if (n < 256) { u8(o, 0xd9); u8(o, (uint8_t)n); } else { u8(o, 0xda); be(o, n, 2); }
    put(o, s, n);
}

static uint64_t mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* [1, [kind, event_id, host_id, pid, tid, mono_ns, wall_ns, duration_ns, lamport, hlc, <nfields fields>]] */
static void header(struct buf *o, uint8_t kind, int nfields, uint64_t start, uint64_t dur) {
    o->n = 0;
    u8(o, 0x92); u8(o, 0x01);                       /* [version 1, event]                        */
    u8(o, 0xdc); be(o, 10 + nfields, 2);            /* array16: 10 header elements + the fields  */
    u8(o, kind);                                    /* 5 ComputeBlock, 6 TranspilerDecision      */
    u8(o, 0xc4); u8(o, 16); for (int i = 0; i < 16; i++) u8(o, 0);  /* event_id: filled by the tracer */
    u8(o, 0xa0);                                    /* host_id "": filled by the tracer          */
    u8(o, 0x00);                                    /* pid 0: the kernel's SCM_CREDENTIALS       */
    u8(o, 0xce); be(o, (uint64_t)syscall(SYS_gettid), 4);  /* tid                                */
    u8(o, 0xcf); be(o, start, 8);                   /* mono_ns: CLOCK_MONOTONIC start            */
    u8(o, 0x00);                                    /* wall_ns 0: filled by the tracer           */
    u8(o, 0xcf); be(o, dur, 8);                     /* duration_ns                               */
    u8(o, 0x00); u8(o, 0x00);                       /* lamport, hlc: filled by the tracer        */
}

static int sdk_fd = -1;

static void sdk_send(const struct buf *o) {
    if (sdk_fd >= 0 && o->n <= sizeof o->b) (void)send(sdk_fd, o->b, o->n, MSG_DONTWAIT);
}

static void sdk_open(void) {
    const char *path = getenv("SYSWEAVE_SDK_SOCKET");
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (!path || strlen(path) >= sizeof addr.sun_path) return;
    strcpy(addr.sun_path, path);
    sdk_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (sdk_fd >= 0 && connect(sdk_fd, (struct sockaddr *)&addr, sizeof addr) != 0) { close(sdk_fd); sdk_fd = -1; }
}

/* ComputeBlock fields: name, op, elements, symbol, source, decision_id, attrs */
static void compute_block(const char *name, const char *op, uint64_t elements, const char *symbol,
                          const char *decision_id, uint64_t start, uint64_t dur) {
    struct buf o;
    header(&o, 5, 7, start, dur);
    str(&o, name); str(&o, op); u8(&o, 0xcf); be(&o, elements, 8); str(&o, symbol); str(&o, "sdk");
    str(&o, decision_id);
    u8(&o, 0x81); str(&o, "lang"); str(&o, "c");    /* attrs: {"lang": "c"} */
    sdk_send(&o);
}

/* TranspilerDecision fields: decision_id, source_location, target_symbol, kind, chosen, alternatives, reason,
   source, attrs */
static void transpiler_decision(const char *id, const char *loc, const char *target, const char *kind,
                                const char *chosen, const char *alternative, const char *reason) {
    struct buf o;
    header(&o, 6, 9, mono_ns(), 0);
    str(&o, id); str(&o, loc); str(&o, target); str(&o, kind); str(&o, chosen);
    u8(&o, 0x91); str(&o, alternative);             /* alternatives: [alternative] */
    str(&o, reason); str(&o, "sdk");
    u8(&o, 0x81); str(&o, "width"); u8(&o, 8);      /* attrs: {"width": 8} */
    sdk_send(&o);
}

static double vector_sum(const double *v, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += v[i] * v[i];
    return s;
}

int main(void) {
    enum { N = 1 << 20 };
    sdk_open();
    transpiler_decision("C1", "sum.py:4", "vector_sum", "loop-vectorised", "simd x4", "scalar",
                        "no loop-carried dependency besides the reduction");
    double *v = malloc(N * sizeof *v);
    if (!v) return 1;
    for (size_t i = 0; i < N; i++) v[i] = (double)i / N;
    uint64_t t0 = mono_ns();
    double s = vector_sum(v, N);
    int fd = open("/dev/null", O_WRONLY);           /* a syscall inside the block: nests under it */
    char line[64];
    int len = snprintf(line, sizeof line, "%f\n", s);
    if (fd >= 0) { (void)!write(fd, line, (size_t)len); close(fd); }
    compute_block("vector sum", "simd", N, "vector_sum", "C1", t0, mono_ns() - t0);
    free(v);
    printf("sum %f\n", s);
    return 0;
}
