/* Translation of abort.py. -DBROKEN: forgets fflush(stdout) before abort(3), so the buffered "checked"
 * line never reaches stdout. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
int main(void) {
    struct rlimit no = {0, 0};
    setrlimit(RLIMIT_CORE, &no);
    FILE *f = fopen("data.bin", "rb");
    long size = 0; while (fgetc(f) != EOF) size++;
    fclose(f);
    printf("checked %ld bytes\n", size);
#ifndef BROKEN
    fflush(stdout);
#endif
    if (size % 7) {
        fprintf(stderr, "invariant violated: %ld %% 7 == %ld\n", size, size % 7);
        abort();
    }
    puts("ok");
    return 0;
}
