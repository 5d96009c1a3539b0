/* Translation of catbin.py with sendfile(2) straight to fd 1 (stdout written without write(2)).
 * -DBROKEN: sends 2,999 bytes. */
#include <fcntl.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>
int main(void) {
    int fd = open("data.bin", O_RDONLY);
    struct stat st; fstat(fd, &st);
    size_t left = st.st_size;
#ifdef BROKEN
    left -= 1;
#endif
    while (left > 0) { ssize_t n = sendfile(1, fd, NULL, left); if (n <= 0) return 1; left -= n; }
    close(fd);
    return 0;
}
