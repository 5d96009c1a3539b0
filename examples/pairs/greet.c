/* Translation of greet.py. -DBROKEN: forgets the exit code. */
#include <stdio.h>
#include <string.h>
int main(void) {
    FILE *f = fopen("names.txt", "r");
    char line[256]; int n = 0;
    while (f && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = 0;
        if (!*line) continue;
        printf("hello, %s!\n", line);
        n++;
    }
    if (f) fclose(f);
#ifdef BROKEN
    return 0;
#else
    return n;
#endif
}
