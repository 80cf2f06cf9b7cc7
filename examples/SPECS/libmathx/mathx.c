#include "mathx.h"

long mathx_gcd(long a, long b)
{
    while (b) { long t = a % b; a = b; b = t; }
    return a < 0 ? -a : a;
}

long mathx_pow(long base, unsigned exp)
{
    long r = 1;
    while (exp--) r *= base;
    return r;
}

int mathx_is_prime(long n)
{
    if (n < 2) return 0;
    for (long d = 2; d * d <= n; d++) if (n % d == 0) return 0;
    return 1;
}
