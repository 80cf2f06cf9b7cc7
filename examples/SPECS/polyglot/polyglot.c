#include <stdio.h>
#include <string.h>
#include <greet.h>
#include "table.h"

int main(int argc, char **argv)
{
    const char *lang = argc > 1 ? argv[1] : "en";
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        if (strcmp(table[i][0], lang) == 0) {
            char buf[256];
            greet_format(buf, sizeof buf, "world");
            printf("%s (%s)\n", table[i][1], buf);
            return 0;
        }
    }
    fprintf(stderr, "polyglot: unknown language %s\n", lang);
    return 1;
}
