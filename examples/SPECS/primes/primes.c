#include <stdio.h>
#include <stdlib.h>
#include <mathx.h>

int main(int argc, char **argv)
{
    long limit = argc > 1 ? atol(argv[1]) : 50;
    for (long n = 2; n <= limit; n++) if (mathx_is_prime(n)) printf("%ld\n", n);
    return 0;
}
