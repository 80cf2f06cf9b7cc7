#!/bin/sh
# Turns "code word" lines into a C table; fails when the data is missing.
set -e
test -s "$1"
echo 'static const char *table[][2] = {'
while read -r code word; do
    [ -n "$code" ] && printf '    {"%s", "%s"},\n' "$code" "$word"
done < "$1"
echo '};'
