/* Translation of copyfile.py. The routes differ on purpose (not observable): backup/data.bin is copied with
 * read/write in 100-byte chunks where Python uses sendfile, data.copy with copy_file_range where Python
 * reads and writes. -DBROKEN: data.copy misses its last byte (an off-by-one length). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>
int main(void) {
    mkdir("backup", 0777);
    int in = open("data.bin", O_RDONLY);
    int out = open("backup/data.bin", O_WRONLY | O_CREAT | O_TRUNC, 0666);
    char buf[100]; ssize_t r;
    while ((r = read(in, buf, sizeof buf)) > 0) write(out, buf, r);
    close(out);
    struct stat st; fstat(in, &st);
    off_t len = st.st_size;
#ifdef BROKEN
    len -= 1;
#endif
    int copy = open("data.copy", O_WRONLY | O_CREAT | O_TRUNC, 0666);
    off_t off_in = 0;
    while (len > 0) {
        ssize_t n = copy_file_range(in, &off_in, copy, NULL, len, 0);
        if (n <= 0) break;
        len -= n;
    }
    close(copy); close(in);
    puts("copied 2 files");
    return 0;
}
