/* Translation of umasktree.py with explicit modes under umask 0 instead of umask 027 (same final modes:
 * directories 0750, app.log 0640, run.sh 0750 from open(2), no chmod). -DBROKEN: shared/logs is 0755. */
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
static void put(const char *path, mode_t mode, const char *text) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    write(fd, text, strlen(text));
    close(fd);
}
int main(void) {
    umask(0);
    mkdir("shared", 0750);
#ifdef BROKEN
    mkdir("shared/logs", 0755);
#else
    mkdir("shared/logs", 0750);
#endif
    put("shared/logs/app.log", 0640, "started\n");
    put("shared/run.sh", 0750, "#!/bin/sh\necho run\n");
    return 0;
}
