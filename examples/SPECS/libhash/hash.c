#include "hash.h"

uint64_t hash_fnv1a(const void *data, size_t len)
{
    const unsigned char *p = data;
    uint64_t h = 1469598103934665603ULL;
    while (len--) { h ^= *p++; h *= 1099511628211ULL; }
    return h;
}
