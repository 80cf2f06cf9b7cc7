#include <stdio.h>
#include <cfg.h>

int main(int argc, char **argv)
{
    static char text[1 << 16];
    char value[1024];
    if (argc < 2) { fprintf(stderr, "usage: cfgget KEY < FILE\n"); return 2; }
    text[fread(text, 1, sizeof text - 1, stdin)] = 0;
    if (cfg_get(text, argv[1], value, sizeof value) < 0) return 1;
    puts(value);
    return 0;
}
