/* Translation of records.py. Records are written with pwrite(2) at their offsets in REVERSE order (the file
 * briefly has a hole); the final file is the same, which is all that is observable. -DBROKEN: record
 * numbers start at 1 instead of 0. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
int main(void) {
    char names[64][64]; int n = 0;
    FILE *f = fopen("names.txt", "r");
    char line[256];
    while (n < 64 && fgets(line, sizeof line, f)) {
        char *s = line; while (*s == ' ' || *s == '\t') s++;
        s[strcspn(s, " \t\r\n")] = 0;
        if (*s) snprintf(names[n++], sizeof names[0], "%s", s);
    }
    fclose(f);
    int out = open("table.dat", O_WRONLY | O_CREAT | O_TRUNC, 0666);
    for (int i = n - 1; i >= 0; i--) {
        char rec[17];
#ifdef BROKEN
        snprintf(rec, sizeof rec, "%04d %-10.10s\n", i + 1, names[i]);
#else
        snprintf(rec, sizeof rec, "%04d %-10.10s\n", i, names[i]);
#endif
        pwrite(out, rec, 16, (off_t)i * 16);
    }
    close(out);
    return 0;
}
