/* Translation of system.py with system(3), which runs the command through `sh -c` (a launcher: not
 * observable). -DBROKEN: returns system()'s raw wait status (256) as the exit code, which the kernel
 * truncates to 0. */
#include <stdlib.h>
#include <sys/wait.h>
int main(void) {
    int st = system("grep -q zebra input.txt");
#ifdef BROKEN
    return st;
#else
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
#endif
}
