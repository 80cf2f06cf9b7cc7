#include <stdio.h>
#include "greet.h"

int greet_format(char *buf, int size, const char *who)
{
    return snprintf(buf, (size_t)size, "Hello, %s!", who ? who : "world");
}
