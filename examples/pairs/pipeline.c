/* Translation of pipeline.py: runs sort(1) over pipes. -DBROKEN: sorts in-process with qsort instead,
 * which gives the same bytes but is not the same behaviour seen from outside (no sort child). */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
static int cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }
int main(void) {
    static char buf[1 << 16], *words[4096];
    FILE *f = fopen("input.txt", "r");
    size_t n = fread(buf, 1, sizeof buf - 1, f); fclose(f); buf[n] = 0;
    int count = 0;
    for (char *w = strtok(buf, " \t\n"); w && count < 4096; w = strtok(NULL, " \t\n")) words[count++] = w;
    FILE *out = fopen("sorted.txt", "w");
#ifdef BROKEN
    qsort(words, count, sizeof *words, cmp);
    for (int i = 0; i < count; i++) fprintf(out, "%s\n", words[i]);
#else
    int in[2], back[2];
    pipe(in); pipe(back);
    pid_t c = fork();
    if (c == 0) {
        dup2(in[0], 0); dup2(back[1], 1);
        close(in[0]); close(in[1]); close(back[0]); close(back[1]);
        execlp("sort", "sort", (char *)NULL); _exit(127);
    }
    close(in[0]); close(back[1]);
    FILE *w = fdopen(in[1], "w");
    for (int i = 0; i < count; i++) fprintf(w, "%s\n", words[i]);
    fclose(w);
    char chunk[4096]; ssize_t r;
    while ((r = read(back[0], chunk, sizeof chunk)) > 0) fwrite(chunk, 1, r, out);
    close(back[0]);
    waitpid(c, NULL, 0);
    (void)cmp;
#endif
    fclose(out);
    printf("%d\n", count);
    return 0;
}
