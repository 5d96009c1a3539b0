/* Translation of bigfile.py, written in 4 KiB fwrite blocks. -DBROKEN: byte 250,000 is one too high (far
 * beyond the first 64 KiB). */
#include <stdio.h>
int main(void) {
    static unsigned char data[3000], out[300000];
    FILE *in = fopen("data.bin", "rb");
    size_t n = fread(data, 1, sizeof data, in); fclose(in);
    for (size_t i = 0; i < sizeof out; i++) out[i] = (unsigned char)(data[i % n] + i / n);
#ifdef BROKEN
    out[250000] += 1;
#endif
    FILE *f = fopen("big.bin", "wb");
    for (size_t off = 0; off < sizeof out; off += 4096) fwrite(out + off, 1, sizeof out - off < 4096 ? sizeof out - off : 4096, f);
    fclose(f);
    return 0;
}
