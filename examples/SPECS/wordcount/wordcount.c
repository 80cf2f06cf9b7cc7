#include <stdio.h>
#include <strutil.h>

int main(void)
{
    char line[4096];
    long total = 0;
    while (fgets(line, sizeof line, stdin)) total += strutil_words(line);
    printf("%ld\n", total);
    return 0;
}
