/* Translation of progress.py: stderr is written as it goes, stdout is fully buffered and comes out at exit,
 * so the two streams interleave differently (each stream's bytes are the same: not observable).
 * -DBROKEN: "done" goes to stdout instead of stderr. */
#include <stdio.h>
#include <string.h>
int main(void) {
    FILE *in = fopen("input.txt", "r");
    char line[4096]; int no = 0;
    while (fgets(line, sizeof line, in)) {
        int words = 0, inword = 0;
        for (char *p = line; *p; p++) {
            if (strchr(" \t\n\r\v\f", *p)) inword = 0; else if (!inword) { inword = 1; words++; }
        }
        printf("%d\n", words);
        fprintf(stderr, "progress: line %d\n", ++no);
    }
    fclose(in);
#ifdef BROKEN
    puts("done");
#else
    fputs("done\n", stderr);
#endif
    return 0;
}
