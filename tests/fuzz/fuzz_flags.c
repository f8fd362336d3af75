/* libFuzzer harness for the command-line flag parser (gflags' forms): the
 * input is argv, arguments separated by NUL bytes, parsed against one flag
 * of each kind. */
#include "config.h"

#include "fuzz.h"

#include "cli/flags.h"

#define MAX_ARGS 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *copy = malloc(size + 1);
  if (!copy)
    return 0;
  memcpy(copy, data, size);
  copy[size] = '\0';
  char *argv[MAX_ARGS + 1];
  int argc = 0;
  argv[argc++] = "crema";
  for (size_t i = 0; i <= size && argc < MAX_ARGS; i += strlen(copy + i) + 1)
    argv[argc++] = copy + i;
  argv[argc] = NULL;
  const char *model = NULL, *weights = "default";
  int iterations = 50, gpu = 0;
  double scale = 1.0;
  const flag_spec specs[] = {
      {"model", FLAG_STRING, &model, "the net"},
      {"weights", FLAG_STRING, &weights, "the weights"},
      {"iterations", FLAG_INT, &iterations, "how many"},
      {"scale", FLAG_DOUBLE, &scale, "a factor"},
      {"gpu", FLAG_BOOL, &gpu, "a switch"},
  };
  flag_result res;
  crema_error err;
  crema_status st = flags_parse(argc, argv, specs, (int)(sizeof specs / sizeof specs[0]), &res,
                                &err);
  fuzz_expect_message(st, &err);
  if (st == CREMA_OK) {
    for (int i = 0; i < res.npositional; i++)
      if (res.positional[i] == NULL)
        abort();
    flags_result_free(&res);
  }
  free(copy);
  return 0;
}
