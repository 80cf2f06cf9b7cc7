#ifndef CFG_H
#define CFG_H
/* Looks key up in text made of "key=value" lines; copies its value to out. */
int cfg_get(const char *text, const char *key, char *out, int size);
#endif
