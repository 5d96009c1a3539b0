/* Translation of logger.py: the 500 lines are built in memory and written with ONE write(2) (buffering is
 * not observable). -DBROKEN: the last line lacks its newline. */
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>
int main(void) {
    static char buf[500 * 9 + 1];
    size_t len = 0;
    for (int i = 1; i <= 500; i++) len += snprintf(buf + len, sizeof buf - len, "%03d tick\n", i);
#ifdef BROKEN
    len -= 1;
#endif
    int fd = open("app.log", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    write(fd, buf, len);
    close(fd);
    return 0;
}
