/* largest.py in C: agrees on every non-empty input; on an empty one Python fails (max() of nothing) where
   this prints its starting value. */
#include <limits.h>
#include <stdio.h>

int main(void) {
    long long best = LLONG_MIN, n;
    while (scanf("%lld", &n) == 1)
        if (n > best)
            best = n;
    printf("largest: %lld\n", best);
    return 0;
}
