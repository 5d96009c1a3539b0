/* Translation of shellpipe.py with pipe/fork/exec; the children are started in the other order (sort
 * first) and each opens its own end file (not observable). -DBROKEN: runs "sort -u", which drops the
 * repeated "the". */
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>
int main(void) {
    int p[2]; pipe(p);
    pid_t s = fork();
    if (s == 0) {
        int out = open("vocab.txt", O_WRONLY | O_CREAT | O_TRUNC, 0666);
        dup2(p[0], 0); dup2(out, 1); close(p[0]); close(p[1]); close(out);
#ifdef BROKEN
        execlp("sort", "sort", "-u", (char *)NULL);
#else
        execlp("sort", "sort", (char *)NULL);
#endif
        _exit(127);
    }
    pid_t t = fork();
    if (t == 0) {
        int in = open("input.txt", O_RDONLY);
        dup2(in, 0); dup2(p[1], 1); close(p[0]); close(p[1]); close(in);
        execlp("tr", "tr", "-s", " \n", "\n", (char *)NULL);
        _exit(127);
    }
    close(p[0]); close(p[1]);
    waitpid(s, NULL, 0); waitpid(t, NULL, 0);
    return 0;
}
