/* Translation of append.py with lseek(SEEK_END) + write instead of O_APPEND. -DBROKEN: forgets the seek, so
 * the line overwrites the start of input.txt (the file keeps its size). */
#include <fcntl.h>
#include <string.h>
#include <unistd.h>
int main(void) {
    const char *line = "appended by append.py\n";
    int fd = open("input.txt", O_WRONLY);
#ifndef BROKEN
    lseek(fd, 0, SEEK_END);
#endif
    write(fd, line, strlen(line));
    close(fd);
    return 0;
}
