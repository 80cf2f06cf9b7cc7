#include <stdio.h>
#include <mathx.h>

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "failed: %s\n", #c); return 1; } } while (0)

int main(void)
{
    CHECK(mathx_gcd(12, 18) == 6);
    CHECK(mathx_gcd(-4, 6) == 2);
    CHECK(mathx_pow(2, 10) == 1024);
    CHECK(mathx_is_prime(97));
    CHECK(!mathx_is_prime(91));
    puts("mathx: all tests passed");
    return 0;
}
