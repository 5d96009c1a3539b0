/* Translation of shcount.py without sh -c: the child opens input.txt as its stdin and execs "wc -l"
 * (the same program with the same argv the shell would run). -DBROKEN: runs "wc -l input.txt" and parses
 * the number before the file name; stdout is identical but the child program's argv is not. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
int main(void) {
    int p[2]; pipe(p);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(p[1], 1); close(p[0]); close(p[1]);
#ifdef BROKEN
        execlp("wc", "wc", "-l", "input.txt", (char *)NULL);
#else
        int fd = open("input.txt", O_RDONLY); dup2(fd, 0); close(fd);
        execlp("wc", "wc", "-l", (char *)NULL);
#endif
        _exit(127);
    }
    close(p[1]);
    char buf[256]; ssize_t n = read(p[0], buf, sizeof buf - 1); close(p[0]);
    buf[n > 0 ? n : 0] = 0;
    int st; waitpid(pid, &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st)) return 1;
    printf("lines: %d\n", atoi(buf));
    return 0;
}
