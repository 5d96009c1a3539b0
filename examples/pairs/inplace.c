/* Translation of inplace.py that rewrites names.txt in place (O_TRUNC) instead of renaming a new file over
 * it: the same final names.txt, no temp file left (not observable). -DBROKEN: writes the string's terminating
 * NUL too: names.txt is one byte longer. */
#include <ctype.h>
#include <fcntl.h>
#include <unistd.h>
int main(void) {
    char buf[1 << 16];
    int fd = open("names.txt", O_RDONLY);
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    for (ssize_t i = 0; i < n; i++) buf[i] = toupper((unsigned char)buf[i]);
    buf[n] = 0;
    fd = open("names.txt", O_WRONLY | O_TRUNC);
#ifdef BROKEN
    write(fd, buf, n + 1);
#else
    write(fd, buf, n);
#endif
    close(fd);
    return 0;
}
