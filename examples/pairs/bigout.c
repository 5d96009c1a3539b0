/* Translation of bigout.py: the whole table is built in memory and written with one write(2) (Python writes
 * it in 8 KiB blocks). -DBROKEN: line 9,000 (byte offset 99,000) has its value one too high. */
#include <stdio.h>
#include <unistd.h>
int main(void) {
    static char buf[12000 * 11 + 1];
    size_t len = 0;
    for (long i = 0; i < 12000; i++) {
        long v = i * i % 9973;
#ifdef BROKEN
        if (i == 9000) v += 1;
#endif
        len += snprintf(buf + len, sizeof buf - len, "%05ld %04ld\n", i, v);
    }
    for (size_t off = 0; off < len;) { ssize_t w = write(1, buf + off, len - off); if (w <= 0) return 1; off += w; }
    return 0;
}
