/* shout.py in C: toupper() and strlen() work on bytes, so they agree with Python only on ASCII input. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

int main(void) {
    char line[4096];
    while (fgets(line, sizeof line, stdin)) {
        size_t n = strlen(line);
        if (n && line[n - 1] == '\n')
            line[--n] = '\0';
        for (size_t i = 0; i < n; i++)
            line[i] = (char)toupper((unsigned char)line[i]);
        printf("%3zu %s\n", n, line);
    }
    return 0;
}
