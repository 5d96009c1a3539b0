/* Translation of abspath.py by ABSOLUTE paths built from getcwd(3) (the same file, so not observable).
 * -DBROKEN: reopens the report with "w" instead of "a", so the header is lost. */
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
int main(void) {
    char cwd[PATH_MAX], dir[PATH_MAX + 8], path[PATH_MAX + 32];
    getcwd(cwd, sizeof cwd);
    snprintf(dir, sizeof dir, "%s/out", cwd);
    snprintf(path, sizeof path, "%s/out/report.txt", cwd);
    mkdir(dir, 0777);
    FILE *f = fopen(path, "w"); fputs("report of input.txt\n", f); fclose(f);
#ifdef BROKEN
    f = fopen(path, "w");
#else
    f = fopen(path, "a");
#endif
    FILE *in = fopen("input.txt", "r");
    char line[4096]; int no = 0;
    while (fgets(line, sizeof line, in)) {
        int words = 0, inword = 0;
        for (char *p = line; *p; p++) {
            if (strchr(" \t\n\r\v\f", *p)) inword = 0; else if (!inword) { inword = 1; words++; }
        }
        fprintf(f, "%d: %d words\n", ++no, words);
    }
    fclose(in); fclose(f);
    return 0;
}
