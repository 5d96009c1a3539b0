/* Translation of releases.py in another order: both directories first, the symlink next (dangling for a
 * moment), the VERSION files last, v2 before v1 (order of independent resources is not observable).
 * -DBROKEN: current points to releases/v1. */
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>
static void put(const char *path, const char *text) { FILE *f = fopen(path, "w"); fputs(text, f); fclose(f); }
int main(void) {
    mkdir("releases", 0777);
    mkdir("releases/v2", 0777);
    mkdir("releases/v1", 0777);
#ifdef BROKEN
    symlink("releases/v1", "current");
#else
    symlink("releases/v2", "current");
#endif
    put("releases/v2/VERSION", "version two\n");
    put("releases/v1/VERSION", "version one\n");
    return 0;
}
