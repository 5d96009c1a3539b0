/* average.py in C: `/` on ints truncates toward zero where Python's `//` rounds down (negative averages),
   and an empty input divides by zero. */
#include <stdio.h>
#include <stdlib.h>

int main(void) {
    long long total = 0, count = 0, n;
    while (scanf("%lld", &n) == 1) {
        total += n;
        count++;
    }
    printf("average: %lld\n", total / count);
    return 0;
}
