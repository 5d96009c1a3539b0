/* Translation of files.py (one buffered write instead of 50 is not observable). -DBROKEN: never renames. */
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>
int main(void) {
    mkdir("out", 0777);
    FILE *t = fopen("scratch.tmp", "w"); fputs("scratch\n", t); fclose(t);
    FILE *f = fopen("out/data.txt", "w");
    for (int i = 0; i < 50; i++) fprintf(f, "record %d\n", i);
    fclose(f);
#ifndef BROKEN
    rename("out/data.txt", "out/final.txt");
#endif
    unlink("scratch.tmp");
    return 0;
}
