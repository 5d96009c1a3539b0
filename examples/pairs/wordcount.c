/* Translation of wordcount.py. Build with -DBROKEN for the subtly wrong version (off-by-one words). */
#include <ctype.h>
#include <stdio.h>
int main(void) {
    FILE *f = fopen("input.txt", "rb");
    if (!f) return 1;
    long lines = 0, words = 0, bytes = 0; int c, in = 0;
    while ((c = fgetc(f)) != EOF) {
        bytes++;
        if (c == '\n') lines++;
        if (isspace(c)) in = 0; else if (!in) { in = 1; words++; }
    }
    fclose(f);
#ifdef BROKEN
    words += 1;
#endif
    FILE *o = fopen("counts.txt", "w");
    fprintf(o, "%ld %ld %ld\n", lines, words, bytes);
    fclose(o);
    printf("total words: %ld\n", words);
    return 0;
}
