#include <stdio.h>
#include <vec.h>

#if VEC_VERSION_MINOR < 1
#error "vecsum needs vec.h 1.1 or newer"
#endif

int main(void)
{
    double v[1024];
    int n = 0;
    while (n < 1024 && scanf("%lf", &v[n]) == 1) n++;
    printf("%g\n", vec_sum(v, n));
    return 0;
}
