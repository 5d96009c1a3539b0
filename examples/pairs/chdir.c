/* Translation of chdir.py without chdir: a directory fd with openat(2)/symlinkat(2) (paths relative to a
 * directory fd; not observable). -DBROKEN: the symlink is made in work/ instead of work/sub/. */
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
int main(void) {
    mkdir("work", 0777); mkdir("work/sub", 0777);
    int dir = open("work/sub", O_RDONLY | O_DIRECTORY);
    int fd = openat(dir, "result.txt", O_WRONLY | O_CREAT | O_TRUNC, 0666);
    const char *text = "computed in work/sub\n";
    write(fd, text, strlen(text)); close(fd);
#ifdef BROKEN
    symlinkat("result.txt", AT_FDCWD, "work/latest");
#else
    symlinkat("result.txt", dir, "latest");
#endif
    close(dir);
    fd = open("done.txt", O_WRONLY | O_CREAT | O_TRUNC, 0666);
    write(fd, "ok\n", 3); close(fd);
    return 0;
}
