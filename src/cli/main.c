/* crema: entry point and subcommand dispatch. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "core/options.h"
#include "math/blas.h"

/* One line per subcommand; the run functions live in cmd_<name>.c. */

static const cli_command commands[] = {
    /* {"name", "summary", cmd_name}, */
    {"upgrade-net", "upgrade a legacy Caffe net definition or model", cmd_upgrade_net},
    {"upgrade-solver", "upgrade a legacy Caffe solver definition", cmd_upgrade_solver},
    {"info", "list the layers and parameter shapes of a net or model", cmd_info},
    {"train", "train or finetune a model (as caffe train)", cmd_train},
    {"test", "score a model over a number of batches (as caffe test)", cmd_test},
    {"verify", "compare a net's blobs with reference values (e.g. from Caffe)", cmd_verify},
    {"time", "benchmark forward and backward per layer, as caffe time", cmd_time},
    {"init", "write filler-initialised weights of a net as a .caffemodel", cmd_init},
    {"convert-imageset", "convert a set of images to an LMDB of Datum records",
     cmd_convert_imageset},
    {"compute-image-mean", "compute the mean image of an LMDB (a mean_file)",
     cmd_compute_image_mean},
    {"lesion-db", "build lesion training databases from ISIC-style image/mask pairs",
     cmd_lesion_db},
    {"segment", "segment skin lesions in dermoscopic images with a lesion network",
     cmd_segment},
    {"synth", "write synthetic dermoscopy images with lesion masks (ISIC names)", cmd_synth},
    {"evaluate", "score lesion masks with the ISIC challenge metrics", cmd_evaluate},
    {"extract-features", "write blobs of a net to feature LMDBs (as extract_features)",
     cmd_extract_features},
    {"retrieve", "find the nearest neighbours of query features in a feature LMDB",
     cmd_retrieve},
    {NULL, NULL, NULL}};

/* Caffe's tool names (the programs of its tools folder), so that scripts written for Caffe
 * find their command; other underscores read as hyphens. */
static const struct {
  const char *caffe, *crema;
} aliases[] = {{"upgrade_net_proto_text", "upgrade-net"},
               {"upgrade_net_proto_binary", "upgrade-net"},
               {"upgrade_solver_proto_text", "upgrade-solver"},
               {NULL, NULL}};

static const cli_command *find_command(const char *name) {
  for (int i = 0; aliases[i].caffe; i++)
    if (!strcmp(name, aliases[i].caffe))
      name = aliases[i].crema;
  for (const cli_command *c = commands; c->name; c++) {
    size_t k = 0;
    while (c->name[k] && (name[k] == c->name[k] || (name[k] == '_' && c->name[k] == '-')))
      k++;
    if (!c->name[k] && !name[k])
      return c;
  }
  return NULL;
}

int cli_report(const char *command, const crema_error *err) {
  fprintf(stderr, "crema %s: %s\n", command, err->message[0] ? err->message : "failed");
  return 1;
}

static void print_usage(FILE *f) {
  fprintf(f,
          "crema %s: run and train Caffe models\n\n"
          "usage: crema COMMAND [flags] [args]\n\ncommands:\n",
          crema_version());
  for (const cli_command *c = commands; c->name; c++)
    fprintf(f, "  %-20s %s\n", c->name, c->summary);
  fprintf(f, "\n'crema help COMMAND' or 'crema COMMAND --help' describes a command.  Caffe's\n"
             "tool names are accepted too (convert_imageset, compute_image_mean,\n"
             "extract_features, upgrade_net_proto_text, upgrade_net_proto_binary,\n"
             "upgrade_solver_proto_text).\n");
}

int main(int argc, char **argv) {
  /* This program is OpenBLAS's only user (math/blas.h says why). */
  blas_stop_workers();
  /* Work outside a net (retrieval, image tools) uses the environment's
   * thread count and allocation cap too; nets and solvers set theirs from
   * their options. */
  crema_options env;
  crema_options_from_env(&env);
  options_enter(&env);
  if (argc < 2) {
    print_usage(stderr);
    return 2;
  }
  const char *name = argv[1];
  if (!strcmp(name, "help") && argc > 2) {
    /* crema help CMD: the command's own --help. */
    const cli_command *c = find_command(argv[2]);
    if (!c) {
      fprintf(stderr, "crema help: unknown command '%s' (see 'crema --help')\n", argv[2]);
      return 2;
    }
    char *help_argv[] = {argv[2], "--help", NULL};
    return c->run(2, help_argv);
  }
  if (!strcmp(name, "--help") || !strcmp(name, "-h") || !strcmp(name, "help") ||
      !strcmp(name, "-help")) {
    print_usage(stdout);
    return 0;
  }
  if (!strcmp(name, "--version") || !strcmp(name, "-version") || !strcmp(name, "version")) {
    printf("crema %s\n", crema_version());
    return 0;
  }
  const cli_command *c = find_command(name);
  if (c)
    return c->run(argc - 1, argv + 1);
  fprintf(stderr, "crema: unknown command '%s' (see 'crema --help')\n", name);
  return 2;
}
