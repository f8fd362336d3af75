/* crema time: per-layer forward and backward timings, reported in the
 * wording of `caffe time` so that scripts reading its log read ours. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "cli/cli.h"
#include "cli/common.h"
#include "cli/flags.h"
#include "core/clock.h"
#include "core/log.h"
#include "graph/net.h"
#include "graph/weights.h"

/* now_seconds in microseconds. */
static double now_us(void) { return now_seconds() * 1e6; }

typedef struct time_flags {
  const char *model, *weights, *phase;
  int iterations;
  int forward_only;
} time_flags;

/* --forward-only (the flag of Caffe forks such as Intel's) times
 * inference: a TEST net without gradient storage, whose activations share
 * memory as crema's inference nets do, so the peak memory printed is what
 * deploying the net takes.  A TRAIN net always keeps its gradients. */
static crema_status open_timed_net(const time_flags *f, net **out, crema_error *err) {
  Caffe__Phase phase;
  CREMA_TRY(cli_parse_phase(f->phase ? f->phase : f->forward_only ? "test" : "train", &phase,
                            err));
  if (f->forward_only && phase != CAFFE__PHASE__TEST)
    return crema_fail(err, CREMA_ERR_INVALID,
                      "--forward-only times the inference (TEST) net; --phase %s contradicts it",
                      f->phase);
  net_options opts;
  cli_net_options(&opts, phase);
  /* Like caffe time, backward is timed in either phase. */
  opts.backward = !f->forward_only;
  return net_open(f->model, f->weights, &opts, out, err);
}

static double peak_rss_mb(void) {
  struct rusage ru;
  if (getrusage(RUSAGE_SELF, &ru) != 0)
    return 0;
  return (double)ru.ru_maxrss / 1024.0;
}

/* As caffe time: every layer's backward runs, whatever the analysis says. */
static crema_status time_layer_backward(net *n, int i, crema_error *err) {
  layer *l = n->layers[i];
  if (!l->ops->backward)
    return CREMA_OK;
  return l->ops->backward(l, &n->tops[i], n->bottom_need_backward[i], &n->bottoms[i], err);
}

static crema_status benchmark(net *n, int iterations, int forward_only, double *fwd_layer,
                              double *bwd_layer, double *fwd_total, double *bwd_total,
                              crema_error *err) {
  for (int j = 0; j < iterations; j++) {
    double iter_start = now_us();
    double start = now_us();
    for (int i = 0; i < n->nlayers; i++) {
      double t0 = now_us();
      CREMA_TRY(net_forward_layer(n, i, NULL, err));
      fwd_layer[i] += now_us() - t0;
    }
    *fwd_total += now_us() - start;
    if (forward_only) {
      LOG_INFO("Iteration: %d forward time: %g ms.", j + 1, (now_us() - iter_start) / 1000.0);
      continue;
    }
    start = now_us();
    for (int i = n->nlayers - 1; i >= 0; i--) {
      double t0 = now_us();
      CREMA_TRY(time_layer_backward(n, i, err));
      bwd_layer[i] += now_us() - t0;
    }
    *bwd_total += now_us() - start;
    LOG_INFO("Iteration: %d forward-backward time: %g ms.", j + 1,
             (now_us() - iter_start) / 1000.0);
  }
  return CREMA_OK;
}

static crema_status run_time(const time_flags *f, crema_error *err) {
  net *n = NULL;
  CREMA_TRY(open_timed_net(f, &n, err));
  double *fwd = crema_calloc((size_t)n->nlayers, sizeof(double), err);
  double *bwd = crema_calloc((size_t)n->nlayers, sizeof(double), err);
  crema_status st = (fwd && bwd) ? CREMA_OK : CREMA_ERR_NOMEM;
  float loss = 0;
  if (st == CREMA_OK) {
    LOG_INFO("Performing Forward");
    st = net_forward(n, &loss, err);
  }
  if (st == CREMA_OK && !f->forward_only) {
    LOG_INFO("Initial loss: %g", (double)loss);
    LOG_INFO("Performing Backward");
    st = net_backward(n, err);
  }
  double fwd_total = 0, bwd_total = 0, total_start = now_us();
  if (st == CREMA_OK) {
    LOG_INFO("*** Benchmark begins ***");
    LOG_INFO("Testing for %d iterations.", f->iterations);
    st = benchmark(n, f->iterations, f->forward_only, fwd, bwd, &fwd_total, &bwd_total, err);
  }
  if (st == CREMA_OK) {
    double total_ms = (now_us() - total_start) / 1000.0;
    double it = (double)f->iterations;
    LOG_INFO("Average time per layer: ");
    for (int i = 0; i < n->nlayers; i++) {
      LOG_INFO("%10s\tforward: %g ms.", n->layers[i]->name, fwd[i] / 1000.0 / it);
      if (!f->forward_only)
        LOG_INFO("%10s\tbackward: %g ms.", n->layers[i]->name, bwd[i] / 1000.0 / it);
    }
    LOG_INFO("Average Forward pass: %g ms.", fwd_total / 1000.0 / it);
    if (!f->forward_only) {
      LOG_INFO("Average Backward pass: %g ms.", bwd_total / 1000.0 / it);
      LOG_INFO("Average Forward-Backward: %g ms.", total_ms / it);
    }
    LOG_INFO("Total Time: %g ms.", total_ms);
    LOG_INFO("Peak memory (resident): %.1f MB.", peak_rss_mb());
    LOG_INFO("*** Benchmark ends ***");
  }
  free(fwd);
  free(bwd);
  net_free(n);
  return st;
}

int cmd_time(int argc, char **argv) {
  time_flags f = {.iterations = 50};
  const flag_spec specs[] = {
      {"model", FLAG_STRING, &f.model, "the net definition (.prototxt)"},
      {"weights", FLAG_STRING, &f.weights, "weights (.caffemodel), comma-separated list allowed"},
      {"iterations", FLAG_INT, &f.iterations, "number of timed iterations (default 50)"},
      {"phase", FLAG_STRING, &f.phase,
       "train or test (default train, as caffe time; test with --forward-only)"},
      {"forward-only", FLAG_BOOL, &f.forward_only,
       "time inference only: a TEST net without gradient storage"},
      {"forward_only", FLAG_BOOL, &f.forward_only, "the same (the forks' gflags spelling)"},
  };
  const int nspecs = (int)(sizeof specs / sizeof specs[0]);
  int code;
  if (!cli_parse_flags("time", argc, argv, specs, nspecs,
                       "crema time --model NET.prototxt [--weights W] [--iterations N] "
                       "[--phase train|test] [--forward-only]",
                       "Times the forward and backward pass of every layer, as caffe time, and\n"
                       "prints the peak resident memory.  --forward-only times inference alone,\n"
                       "without allocating gradients, so the memory is what deployment takes.",
                       &code))
    return code;
  crema_error err = {0};
  if (!f.model) {
    crema_fail(&err, CREMA_ERR_INVALID, "--model is required");
    return cli_report("time", &err);
  }
  if (f.iterations < 1) {
    crema_fail(&err, CREMA_ERR_INVALID, "--iterations must be at least 1, got %d", f.iterations);
    return cli_report("time", &err);
  }
  if (run_time(&f, &err) != CREMA_OK)
    return cli_report("time", &err);
  return 0;
}
