/* Translation of xorfile.py through memory maps: data.bin is mapped read-only, data.xor is sized with
 * ftruncate and written through a shared mapping (no write(2) at all; not observable). -DBROKEN: the loop
 * stops one byte early, so the last byte of data.xor stays 0x00. */
#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
int main(void) {
    int in = open("data.bin", O_RDONLY);
    struct stat st; fstat(in, &st);
    size_t n = st.st_size;
    unsigned char *src = mmap(NULL, n, PROT_READ, MAP_PRIVATE, in, 0);
    int out = open("data.xor", O_RDWR | O_CREAT | O_TRUNC, 0666);
    ftruncate(out, n);
    unsigned char *dst = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_SHARED, out, 0);
#ifdef BROKEN
    size_t end = n - 1;
#else
    size_t end = n;
#endif
    for (size_t i = 0; i < end; i++) dst[i] = src[i] ^ 0x5A;
    msync(dst, n, MS_SYNC);
    munmap(dst, n); munmap(src, n);
    close(out); close(in);
    printf("%zu bytes\n", n);
    return 0;
}
