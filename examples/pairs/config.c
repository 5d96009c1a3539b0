/* Translation of config.py; stderr is written with dprintf(2, ...) in pieces, stdout through stdio
 * (not observable). -DBROKEN: the warning for an unknown key is never printed (one stderr line missing). */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
static char *trim(char *s) {
    while (isspace((unsigned char)*s)) s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1])) *--e = 0;
    return s;
}
static int digits(const char *s) {
    if (!*s) return 0;
    for (; *s; s++) if (!isdigit((unsigned char)*s)) return 0;
    return 1;
}
int main(void) {
    FILE *f = fopen("config.ini", "r");
    char buf[1024]; int no = 0, errors = 0;
    while (fgets(buf, sizeof buf, f)) {
        no++;
        char *line = trim(buf);
        if (!*line || *line == '#' || *line == '[') continue;
        char *eq = strchr(line, '='), *value = "";
        if (eq) { *eq = 0; value = trim(eq + 1); }
        char *key = trim(line);
        if (strcmp(key, "host") && strcmp(key, "port") && strcmp(key, "timeout") && strcmp(key, "retries")) {
#ifndef BROKEN
            dprintf(2, "config.ini:%d: ", no);
            dprintf(2, "warning: unknown key '%s'\n", key);
#endif
        } else if (strcmp(key, "host") && !digits(value)) {
            dprintf(2, "config.ini:%d: ", no);
            dprintf(2, "error: %s must be an integer, got '%s'\n", key, value);
            errors++;
        } else {
            printf("%s=%s\n", key, value);
        }
    }
    fclose(f);
    return errors ? 3 : 0;
}
