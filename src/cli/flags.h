/* Command-line flags in the forms gflags (and so Caffe's tools) accept:
 * -name=value, --name=value, -name value, --name value; booleans also as
 * -name, --name, --noname, --name=true|false|1|0. */
#ifndef CREMA_CLI_FLAGS_H
#define CREMA_CLI_FLAGS_H

#include <stdio.h>
#include "core/error.h"

typedef enum flag_kind { FLAG_STRING, FLAG_INT, FLAG_DOUBLE, FLAG_BOOL } flag_kind;

typedef struct flag_spec {
  const char *name;
  flag_kind kind;
  void *value; /* const char **, int *, double *, int * (bool) */
  const char *help;
} flag_spec;

typedef struct flag_result {
  int help;          /* --help, -help or -h was given */
  char **positional; /* borrowed from argv; malloc'd array */
  int npositional;
} flag_result;

/* Parses argv[1..argc-1] (argv[0] is the command name).  "--" ends flags. */
crema_status flags_parse(int argc, char **argv, const flag_spec *specs, int nspecs,
                         flag_result *res, crema_error *err);
void flags_result_free(flag_result *res);
void flags_print_usage(FILE *f, const char *usage, const char *description,
                       const flag_spec *specs, int nspecs);

#endif
