/* Translation of forkexec.py with the hard ways to start a process: vfork + execv with string-literal argv,
 * then fork + execv from a second thread. -DBROKEN: echo gets "-n", so its newline is missing. */
#include <pthread.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
static void *second(void *arg) {
    (void)arg;
    pid_t pid = fork();
    if (pid == 0) {
        execv("/usr/bin/printf", (char *const[]){"/usr/bin/printf", "%s=%s\\n", "answer", "42", NULL});
        _exit(127);
    }
    int st; waitpid(pid, &st, 0);
    return NULL;
}
int main(void) {
    pid_t pid = vfork();
    if (pid == 0) {
#ifdef BROKEN
        execv("/bin/echo", (char *const[]){"/bin/echo", "-n", "build", "ok", NULL});
#else
        execv("/bin/echo", (char *const[]){"/bin/echo", "build", "ok", NULL});
#endif
        _exit(127);
    }
    int st; waitpid(pid, &st, 0);
    pthread_t t;
    pthread_create(&t, NULL, second, NULL);
    pthread_join(t, NULL);
    return 0;
}
