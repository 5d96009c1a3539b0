/* Translation of atomic.py: a temp file with a different random name pattern (settings.json.XXXXXX),
 * fchmod instead of chmod, rename(2). -DBROKEN: publishes with link(2) and forgets to unlink the temp file,
 * so a settings.json.XXXXXX is left behind. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
int main(void) {
    char names[64][64]; int n = 0; char line[256];
    FILE *in = fopen("names.txt", "r");
    while (n < 64 && fgets(line, sizeof line, in)) {
        char *s = line; while (*s == ' ' || *s == '\t') s++;
        s[strcspn(s, " \t\r\n")] = 0;
        if (*s) snprintf(names[n++], sizeof names[0], "%s", s);
    }
    fclose(in);
    char tmp[] = "settings.json.XXXXXX";
    int fd = mkstemp(tmp);
    FILE *f = fdopen(fd, "w");
    fputs("{\n  \"users\": [", f);
    for (int i = 0; i < n; i++) fprintf(f, "%s\n    \"%s\"", i ? "," : "", names[i]);
    fprintf(f, "%s],\n  \"count\": %d\n}\n", n ? "\n  " : "", n);
    fflush(f);
    fchmod(fd, 0644);
    fclose(f);
#ifdef BROKEN
    link(tmp, "settings.json");
#else
    rename(tmp, "settings.json");
#endif
    return 0;
}
