/* Translation of envlaunch.py without the env(1) launcher: the child sets LC_ALL=C itself and execs sort
 * directly, writing straight to the inherited stdout (launchers and local pipes are not observable).
 * -DBROKEN: first checks that sort works by running "sort --version" (output to /dev/null): an extra child
 * program. */
#include <fcntl.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
static int run(char *const argv[], int quiet) {
    pid_t pid = fork();
    if (pid == 0) {
        if (quiet) { int fd = open("/dev/null", O_WRONLY); dup2(fd, 1); close(fd); }
        setenv("LC_ALL", "C", 1);
        execvp(argv[0], argv);
        _exit(127);
    }
    int st; waitpid(pid, &st, 0);
    return st;
}
int main(void) {
#ifdef BROKEN
    run((char *const[]){"sort", "--version", NULL}, 1);
#endif
    return run((char *const[]){"sort", "-r", "names.txt", NULL}, 0) ? 1 : 0;
}
