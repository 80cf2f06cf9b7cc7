#ifndef MATHX_H
#define MATHX_H
long mathx_gcd(long a, long b);
long mathx_pow(long base, unsigned exp);
int mathx_is_prime(long n);
#endif
