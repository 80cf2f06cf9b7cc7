#ifndef VEC_H
#define VEC_H
#define VEC_VERSION_MINOR 1
static inline double vec_sum(const double *v, int n)
{
    double s = 0;
    for (int i = 0; i < n; i++) s += v[i];
    return s;
}
static inline double vec_dot(const double *a, const double *b, int n)
{
    double s = 0;
    for (int i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}
#endif
