/* Translation of checksum.py. -DBROKEN: prints the checksum on stderr instead of stdout. */
#include <stdio.h>
#include <stdint.h>
int main(void) {
    FILE *f = fopen("data.bin", "rb");
    if (!f) { fprintf(stderr, "checksum: data.bin: not found\n"); return 3; }
    uint32_t a = 1, b = 0; int c;
    while ((c = fgetc(f)) != EOF) { a = (a + (uint8_t)c) % 65521; b = (b + a) % 65521; }
    fclose(f);
#ifdef BROKEN
    fprintf(stderr, "%08x\n", (b << 16) | a);
#else
    printf("%08x\n", (b << 16) | a);
#endif
    return 0;
}
