#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli/flags.h"

static const flag_spec *find_flag(const flag_spec *specs, int n, const char *name, size_t len) {
  for (int i = 0; i < n; i++)
    if (strlen(specs[i].name) == len && strncmp(specs[i].name, name, len) == 0)
      return &specs[i];
  return NULL;
}

static crema_status parse_bool(const char *s, int *out) {
  if (!strcasecmp(s, "true") || !strcmp(s, "1") || !strcasecmp(s, "yes") || !strcmp(s, "t"))
    *out = 1;
  else if (!strcasecmp(s, "false") || !strcmp(s, "0") || !strcasecmp(s, "no") || !strcmp(s, "f"))
    *out = 0;
  else
    return CREMA_ERR_INVALID;
  return CREMA_OK;
}

static crema_status store_value(const flag_spec *f, const char *v, crema_error *err) {
  char *end;
  switch (f->kind) {
    case FLAG_STRING:
      *(const char **)f->value = v;
      return CREMA_OK;
    case FLAG_INT: {
      errno = 0;
      long x = strtol(v, &end, 10);
      if (errno || end == v || *end || x < INT_MIN || x > INT_MAX)
        return crema_fail(err, CREMA_ERR_INVALID, "flag --%s expects an integer, got '%s'",
                          f->name, v);
      *(int *)f->value = (int)x;
      return CREMA_OK;
    }
    case FLAG_DOUBLE: {
      errno = 0;
      double x = strtod(v, &end);
      if (errno || end == v || *end)
        return crema_fail(err, CREMA_ERR_INVALID, "flag --%s expects a number, got '%s'",
                          f->name, v);
      *(double *)f->value = x;
      return CREMA_OK;
    }
    case FLAG_BOOL:
      if (parse_bool(v, (int *)f->value) != CREMA_OK)
        return crema_fail(err, CREMA_ERR_INVALID, "flag --%s expects true or false, got '%s'",
                          f->name, v);
      return CREMA_OK;
  }
  return CREMA_ERR_INVALID;
}

crema_status flags_parse(int argc, char **argv, const flag_spec *specs, int nspecs,
                         flag_result *res, crema_error *err) {
  memset(res, 0, sizeof *res);
  res->positional = crema_calloc((size_t)(argc > 0 ? argc : 1), sizeof(char *), err);
  if (!res->positional)
    return CREMA_ERR_NOMEM;
  int only_positional = 0;
  for (int i = 1; i < argc; i++) {
    char *arg = argv[i];
    if (only_positional || arg[0] != '-' || arg[1] == '\0') {
      res->positional[res->npositional++] = arg;
      continue;
    }
    if (!strcmp(arg, "--")) {
      only_positional = 1;
      continue;
    }
    const char *name = arg + (arg[1] == '-' ? 2 : 1);
    if (!strcmp(name, "help") || !strcmp(name, "h")) {
      res->help = 1;
      continue;
    }
    const char *eq = strchr(name, '=');
    size_t len = eq ? (size_t)(eq - name) : strlen(name);
    const flag_spec *f = find_flag(specs, nspecs, name, len);
    if (!f && !eq && len > 2 && !strncmp(name, "no", 2)) {
      const flag_spec *neg = find_flag(specs, nspecs, name + 2, len - 2);
      if (neg && neg->kind == FLAG_BOOL) {
        *(int *)neg->value = 0;
        continue;
      }
    }
    if (!f) {
      flags_result_free(res);
      return crema_fail(err, CREMA_ERR_INVALID, "unknown flag '%.*s' (see --help)",
                        (int)(len + (size_t)(name - arg)), arg);
    }
    const char *value;
    if (eq) {
      value = eq + 1;
    } else if (f->kind == FLAG_BOOL) {
      value = "true";
    } else if (i + 1 < argc) {
      value = argv[++i];
    } else {
      flags_result_free(res);
      return crema_fail(err, CREMA_ERR_INVALID, "flag --%s needs a value", f->name);
    }
    if (store_value(f, value, err) != CREMA_OK) {
      flags_result_free(res);
      return CREMA_ERR_INVALID;
    }
  }
  return CREMA_OK;
}

void flags_result_free(flag_result *res) {
  free(res->positional);
  res->positional = NULL;
  res->npositional = 0;
}

void flags_print_usage(FILE *f, const char *usage, const char *description,
                       const flag_spec *specs, int nspecs) {
  fprintf(f, "usage: %s\n", usage);
  if (description)
    fprintf(f, "\n%s\n", description);
  if (nspecs > 0)
    fprintf(f, "\nflags:\n");
  for (int i = 0; i < nspecs; i++) {
    const char *arg = specs[i].kind == FLAG_BOOL ? "" : "=VALUE";
    fprintf(f, "  --%s%s\n      %s\n", specs[i].name, arg, specs[i].help);
  }
}
