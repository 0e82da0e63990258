/* SPDX-License-Identifier: MIT */
#include "helptext.h"

#include <string.h>

void help_line(FILE *f, int width, const char *head, const char *text, const char *tail) {
    if ((int)strlen(head) > width)
        fprintf(f, "  %s\n  %-*s ", head, width, "");
    else
        fprintf(f, "  %-*s ", width, head);
    for (const char *t = text; *t; t++) {
        fputc(*t, f);
        if (*t == '\n') fprintf(f, "  %-*s ", width, "");
    }
    if (tail) fputs(tail, f);
    fputc('\n', f);
}
