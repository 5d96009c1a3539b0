/* Translation of scratch.py: the named scratch file is ./.scratch.XXXXXX (another name, unlinked right after
 * it is opened instead of at close), the anonymous one is tmpfile(3). -DBROKEN: forgets to drop duplicate
 * words, so words.txt lists "the" twice. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
static int cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }
int main(void) {
    static char text[1 << 16], back[1 << 16];
    char *words[4096]; int n = 0;
    FILE *in = fopen("input.txt", "r");
    size_t len = fread(text, 1, sizeof text - 1, in); fclose(in); text[len] = 0;
    for (char *w = strtok(text, " \t\r\n\v\f"); w && n < 4096; w = strtok(NULL, " \t\r\n\v\f")) words[n++] = w;
    char name[] = "./.scratch.XXXXXX";
    FILE *spill = fdopen(mkstemp(name), "w+");
    unlink(name);
    for (int i = n - 1; i >= 0; i--) fprintf(spill, "%s\n", words[i]);
    rewind(spill);
    FILE *anon = tmpfile();
    char w[256]; int first = 1;
    while (fscanf(spill, "%255s", w) == 1) { fprintf(anon, first ? "%s" : " %s", w); first = 0; }
    fclose(spill);
    rewind(anon);
    len = fread(back, 1, sizeof back - 1, anon); back[len] = 0; fclose(anon);
    n = 0;
    for (char *t = strtok(back, " "); t && n < 4096; t = strtok(NULL, " ")) words[n++] = t;
    qsort(words, n, sizeof *words, cmp);
    FILE *out = fopen("words.txt", "w");
    for (int i = 0; i < n; i++) {
#ifndef BROKEN
        if (i && strcmp(words[i], words[i - 1]) == 0) continue;
#endif
        fprintf(out, "%s\n", words[i]);
    }
    fclose(out);
    return 0;
}
