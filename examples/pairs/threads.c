/* Translation of threads.py without threads, part-b.txt first (order of independent resources is not
 * observable). -DBROKEN: part-a.txt keeps the lines in their original order. */
#include <ctype.h>
#include <stdio.h>
int main(void) {
    char text[1 << 16];
    FILE *in = fopen("names.txt", "r");
    size_t n = fread(text, 1, sizeof text, in); fclose(in);
    for (size_t i = 0; i < n; i++) text[i] = toupper((unsigned char)text[i]);
    FILE *b = fopen("part-b.txt", "w"); fwrite(text, 1, n, b); fclose(b);
    static char lines[256][1024]; int count = 0;
    in = fopen("input.txt", "r");
    while (count < 256 && fgets(lines[count], sizeof lines[0], in)) count++;
    fclose(in);
    FILE *a = fopen("part-a.txt", "w");
#ifdef BROKEN
    for (int i = 0; i < count; i++) fputs(lines[i], a);
#else
    for (int i = count - 1; i >= 0; i--) fputs(lines[i], a);
#endif
    fclose(a);
    return 0;
}
