/* Translation of cleanbuild.py: rmtree becomes unlink + rmdir by hand. -DBROKEN: forgets rmdir("build"),
 * so an empty build/ directory is left behind. */
#include <ctype.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>
int main(void) {
    mkdir("build", 0777); mkdir("build/obj", 0777);
    FILE *in = fopen("input.txt", "r");
    char line[4096], path[64]; int n = 0;
    while (fgets(line, sizeof line, in)) {
        for (char *p = line; *p; p++) *p = toupper((unsigned char)*p);
        snprintf(path, sizeof path, "build/obj/part%d.o", n++);
        FILE *o = fopen(path, "w"); fputs(line, o); fclose(o);
    }
    fclose(in);
    mkdir("dist", 0777);
    FILE *out = fopen("dist/app.txt", "w");
    for (int i = 0; i < n; i++) {
        snprintf(path, sizeof path, "build/obj/part%d.o", i);
        FILE *o = fopen(path, "r");
        size_t r; while ((r = fread(line, 1, sizeof line, o)) > 0) fwrite(line, 1, r, out);
        fclose(o);
    }
    fclose(out);
    for (int i = 0; i < n; i++) { snprintf(path, sizeof path, "build/obj/part%d.o", i); unlink(path); }
    rmdir("build/obj");
#ifndef BROKEN
    rmdir("build");
#endif
    return 0;
}
