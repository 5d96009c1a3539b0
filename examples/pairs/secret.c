/* Translation of secret.py. Another route to the same mode: umask(077) and fopen(..., "wx") (O_EXCL, mode
 * 0666 & ~077 = 0600) instead of an explicit 0600. -DBROKEN: the key file is created 0644. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>
static uint32_t crc32(const unsigned char *p, size_t n) {
    uint32_t c = 0xFFFFFFFFu;
    while (n--) { c ^= *p++; for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xEDB88320u & -(c & 1)); }
    return ~c;
}
int main(void) {
    static unsigned char buf[1 << 20];
    FILE *in = fopen("data.bin", "rb");
    size_t n = fread(buf, 1, sizeof buf, in);
    fclose(in);
#ifdef BROKEN
    int fd = open("secret.key", O_WRONLY | O_CREAT | O_EXCL, 0644);
    dprintf(fd, "%08x\n", crc32(buf, n));
    close(fd);
#else
    umask(077);
    FILE *out = fopen("secret.key", "wx");
    fprintf(out, "%08x\n", crc32(buf, n));
    fclose(out);
#endif
    puts("key written");
    return 0;
}
