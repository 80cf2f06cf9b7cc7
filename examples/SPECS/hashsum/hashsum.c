#include <stdio.h>
#include <inttypes.h>
#include <hash.h>

int main(void)
{
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf, stdin);
    printf("%016" PRIx64 "\n", hash_fnv1a(buf, n));
    return 0;
}
