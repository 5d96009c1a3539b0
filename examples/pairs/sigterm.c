/* Translation of sigterm.py with raise(3). -DBROKEN: exit(143) instead: a shell shows the same $?, but the
 * process exited normally rather than being killed by SIGTERM. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
int main(void) {
    FILE *f = fopen("state.txt", "w"); fputs("phase=shutdown\n", f); fclose(f);
    puts("terminating"); fflush(stdout);
#ifdef BROKEN
    exit(128 + SIGTERM);
#else
    raise(SIGTERM);
#endif
    puts("unreachable");
    return 0;
}
