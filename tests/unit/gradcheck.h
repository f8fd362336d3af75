/* Numeric gradient checks for layers, as Caffe's GradientChecker: central
 * differences of an objective against the layer's backward pass.
 *
 * Use: #include "tests/unit/gradcheck.h" and in tests/local.mk
 *   tests_unit_check_foo_LDADD = $(GRADCHECK_LIBS) $(TEST_LIBS) */
#ifndef CREMA_TESTS_GRADCHECK_H
#define CREMA_TESTS_GRADCHECK_H

#include "caffe.pb-c.h"
#include "core/blob.h"
#include "layers/layer.h"

typedef struct gc_options {
  float step;          /* finite-difference step (Caffe's tests: 1e-2 or 1e-3) */
  float threshold;     /* relative tolerance (Caffe's tests: 1e-2 or 1e-3) */
  float kink;          /* skip points within kink_range of a non-differentiable kink */
  float kink_range;    /* < 0: no kink */
  unsigned seed;       /* for the bottoms' values and the top weights */
  unsigned check_bottoms; /* bit i: check bottom i (0 = all) */
  int check_params;    /* also check parameter blobs */
  float min_value, max_value; /* bottoms uniform in [min,max) (defaults -1, 1 when equal) */
  Caffe__Phase phase;  /* default TRAIN (0) */
} gc_options;

/* Sensible defaults: step 1e-2, threshold 1e-2, no kink, seed 1701, all
 * bottoms and params, values in [-1, 1). */
gc_options gc_default_options(void);

/* Creates the layer, bottoms of the given shapes (shapes[i] holds
 * num_axes[i] dims) with random values, runs setup + reshape + forward, then
 * checks every element of the checked bottoms (and params) by central
 * differences of the objective sum_k w_k * top_k (random weights w seeded
 * from opts->seed; for loss layers the objective is the loss).  Fails the
 * current Check test (ck_assert) with the first mismatch.
 * prepare (may be NULL) can overwrite bottoms after creation, e.g. to set
 * integer labels; it receives the bottoms and user data. */
typedef void (*gc_prepare_fn)(blob **bottoms, int nbottoms, void *user);
void gc_check_layer(const Caffe__LayerParameter *param, int nbottoms, const int *num_axes,
                    const int (*shapes)[6], int ntops, const gc_options *opts,
                    gc_prepare_fn prepare, void *user);

/* Convenience: parses a LayerParameter from prototxt text (needs the text
 * parser); ck_assert on failure.  Free with protobuf_c_message_free_unpacked. */
Caffe__LayerParameter *gc_parse_layer(const char *text);

/* A layer run by hand: the parsed parameter, the layer, up to 4 bottoms and
 * tops, and the lists handed to its operations.  Each test fills the
 * bottoms its own way; these do the rest. */
typedef struct gc_run {
  Caffe__LayerParameter *param;
  layer_ctx ctx;
  layer *l;
  blob *bottom[4], *top[4];
  blob_list b, t;
  crema_error err;
} gc_run;

/* Zeroes r, parses text and creates its layer in phase (ck_assert on failure). */
void gc_run_open(gc_run *r, const char *text, Caffe__Phase phase);
/* setup then reshape; returns the first failure (tests of bad input expect one). */
crema_status gc_run_setup(gc_run *r);
/* setup, reshape and forward; ck_assert on failure. */
void gc_run_forward(gc_run *r);
void gc_run_free(gc_run *r);

#endif
