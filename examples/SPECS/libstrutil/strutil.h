#ifndef STRUTIL_H
#define STRUTIL_H
#define STRUTIL_VERSION_MAJOR 2
/* Number of whitespace-separated words in s. */
int strutil_words(const char *s);
/* Upper-cases s in place and returns it. */
char *strutil_upper(char *s);
#endif
