#ifndef GREET_H
#define GREET_H
#define GREET_VERSION "1.2.0"
/* Writes "Hello, <who>!" into buf (at most size bytes); returns its length. */
int greet_format(char *buf, int size, const char *who);
#endif
