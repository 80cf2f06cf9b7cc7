#include <string.h>
#include "cfg.h"
#include "strutil.h"

int cfg_get(const char *text, const char *key, char *out, int size)
{
    size_t klen = strlen(key);
    const char *line = text;
    while (line && *line) {
        if (strncmp(line, key, klen) == 0 && line[klen] == '=') {
            const char *v = line + klen + 1;
            int n = 0;
            while (v[n] && v[n] != '\n' && n < size - 1) { out[n] = v[n]; n++; }
            out[n] = 0;
            return strutil_words(out);
        }
        line = strchr(line, '\n');
        if (line) line++;
    }
    return -1;
}
