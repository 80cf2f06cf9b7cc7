#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    const char *text = argc > 1 ? argv[1] : "dbuild";
    size_t n = strlen(text) + 4;
    for (size_t i = 0; i < n; i++) putchar('*');
    printf("\n* %s *\n", text);
    for (size_t i = 0; i < n; i++) putchar('*');
    putchar('\n');
    return 0;
}
