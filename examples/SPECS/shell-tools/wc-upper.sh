#!/bin/sh
# Prints the word count of its arguments, then the arguments shouted.
echo "$*" | wordcount
shout "$@"
