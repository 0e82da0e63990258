/* SPDX-License-Identifier: MIT */
/* --help lines for the programs in tools/, each printed from its one table
 * of options. */
#ifndef BULLC_TOOLS_HELPTEXT_H
#define BULLC_TOOLS_HELPTEXT_H
#include <stdio.h>

/* Prints "  HEAD  TEXT": HEAD padded to `width` (on a line of its own when
 * longer), TEXT's continuation lines ('\n') lined up under its first, then
 * `tail` when not NULL, then a newline. */
void help_line(FILE *f, int width, const char *head, const char *text, const char *tail);

#endif
