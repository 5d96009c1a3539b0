/* sum.py in C: the same tokens, added up in an int (agrees until the total leaves 32 bits). */
#include <stdio.h>
#include <stdlib.h>

/* the next integer token (-?[0-9]+) on stdin into buf; 0 at the end of input */
static int next_token(char *buf, size_t cap) {
    int c, prev = EOF;
    size_t n = 0;
    while ((c = getchar()) != EOF) {
        if (c >= '0' && c <= '9') {
            if (prev == '-')
                buf[n++] = '-';
            do {
                if (n < cap - 1)
                    buf[n++] = (char)c;
            } while ((c = getchar()) >= '0' && c <= '9');
            if (c != EOF)
                ungetc(c, stdin);
            buf[n] = '\0';
            return 1;
        }
        prev = c;
    }
    return 0;
}

int main(void) {
    char token[128];
    int count = 0, total = 0;
    while (next_token(token, sizeof token)) {
        total += atoi(token);
        count++;
    }
    printf("count: %d\n", count);
    printf("total: %d\n", total);
    return 0;
}
