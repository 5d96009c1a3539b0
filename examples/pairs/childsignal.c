/* Translation of childsignal.py with posix_spawnp(3) (which, like subprocess.Popen, returns after the exec)
 * and kill(2). -DBROKEN: stops the worker with SIGKILL: same stdout, but the child dies by another signal. */
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <sys/wait.h>
extern char **environ;
int main(void) {
    char *argv[] = {"sleep", "30", NULL};
    pid_t pid;
    if (posix_spawnp(&pid, "sleep", NULL, NULL, argv, environ)) return 1;
#ifdef BROKEN
    kill(pid, SIGKILL);
#else
    kill(pid, SIGTERM);
#endif
    waitpid(pid, NULL, 0);
    puts("worker stopped");
    return 0;
}
