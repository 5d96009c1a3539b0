/* Translation of inputs.py. -DBROKEN: reads names.old, a stale copy that happens to hold the same bytes
 * today: stdout is identical, but the program reads a different input file. */
#include <stdio.h>
#include <string.h>
int main(void) {
#ifdef BROKEN
    FILE *f = fopen("names.old", "r");
#else
    FILE *f = fopen("names.txt", "r");
#endif
    char line[256]; int n = 0;
    while (fgets(line, sizeof line, f)) {
        char *s = line; while (*s == ' ' || *s == '\t') s++;
        s[strcspn(s, " \t\r\n")] = 0;
        if (*s) printf(n++ ? ", %s" : "%s", s);
    }
    fclose(f);
    putchar('\n');
    return 0;
}
