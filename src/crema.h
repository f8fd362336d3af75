/* crema: a Caffe-compatible model interpreter.
 *
 * The public C API.  Every call that can fail returns a crema_status (0 on
 * success) and fills the crema_error passed last, whose message names the
 * file, line and column, or the layer and blob, and what was expected.  The
 * library never exits or aborts on bad input.
 */
#ifndef CREMA_H
#define CREMA_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum crema_status {
  CREMA_OK = 0,
  CREMA_ERR_INVALID,     /* bad argument or malformed input */
  CREMA_ERR_PARSE,       /* text format syntax error */
  CREMA_ERR_IO,          /* file cannot be read or written */
  CREMA_ERR_NOMEM,       /* allocation failed or a size overflows */
  CREMA_ERR_SHAPE,       /* blob shapes do not agree */
  CREMA_ERR_UNSUPPORTED, /* valid Caffe input that crema does not run */
  CREMA_ERR_NOT_FOUND,   /* a named layer, blob or file does not exist */
  CREMA_ERR_INTERRUPTED  /* stopped by a signal */
} crema_status;

#define CREMA_ERROR_MAX 1024

typedef struct crema_error {
  crema_status status;
  char message[CREMA_ERROR_MAX];
} crema_error;

/* The library version, e.g. "0.1.0". */
const char *crema_version(void);

/* A short name for a status, e.g. "parse error". */
const char *crema_status_name(crema_status status);

/* Runtime settings: how the library computes, never what.  A value of
 * this type is read once when a net or solver is opened and goes with it
 * (two nets in one process may differ); the library reads no environment
 * variable while it works.  The crema command takes its settings from the
 * environment (crema_options_from_env); a host program chooses its own. */
typedef enum crema_simd {
  CREMA_SIMD_AUTO = 0,   /* the CPU's vector kernels (AVX2+FMA) when it has them */
  CREMA_SIMD_GENERIC = 1 /* the portable kernels on any CPU (CREMA_SIMD=generic) */
} crema_simd;

typedef enum crema_log_level {
  CREMA_LOG_INFO = 0,    /* progress (the solver's iterations, weights skipped) */
  CREMA_LOG_WARNING = 1,
  CREMA_LOG_ERROR = 2,
  CREMA_LOG_NONE = 3
} crema_log_level;

typedef struct crema_options {
  /* Convolution engine (CREMA_CONV): NULL or "auto" picks the fastest per
   * layer; "gemm" (Caffe's im2col + SGEMM), "winograd", "direct" or
   * "depthwise" is preferred where it applies, gemm elsewhere.  An unknown
   * name fails the open, naming the convolution layer.  Copied at open. */
  const char *conv_engine;
  crema_simd simd;           /* CREMA_SIMD */
  /* Threads crema splits its work over (OPENBLAS_NUM_THREADS, else
   * OMP_NUM_THREADS); 0: one per online CPU. */
  int threads;
  /* Least severity the library logs to stderr (GLOG_minloglevel). */
  crema_log_level log_level;
  /* Bytes a net's blobs (activations, parameters, gradients) may take
   * together; 0: no limit.  A net over it fails to open or to reshape with
   * CREMA_ERR_NOMEM.  (Each single allocation is also held to
   * max_allocation and the machine's memory, whatever this says.) */
  size_t memory_limit;
  /* Bytes any single allocation sized from input (a blob, an image, a
   * record) may take (CREMA_MAX_MEMORY: a count of bytes, or with a K, M,
   * G or T suffix, powers of 1024); 0: no cap but the machine's memory and
   * the process's ulimit -v and -d, which hold whatever this says.  Work
   * outside a net or solver (crema_image_read, crema_blob_reshape) has no
   * such cap. */
  size_t max_allocation;
} crema_options;

/* The defaults, whatever the environment: auto engine, vector kernels,
 * a thread per CPU, INFO, no memory limit or allocation cap (all fields
 * zero). */
void crema_options_init(crema_options *opts);
/* The defaults overridden by the environment variables named above, as
 * the crema command reads them; conv_engine points into the environment.
 * Malformed numbers are ignored, as OpenBLAS ignores them. */
void crema_options_from_env(crema_options *opts);

/* Inference and training on a network. */
typedef struct crema_net crema_net;

typedef enum crema_phase { CREMA_TRAIN = 0, CREMA_TEST = 1 } crema_phase;

/* Builds the network described by a .prototxt (legacy layouts are upgraded)
 * for the given phase and, if weights_path is not NULL, copies the weights
 * of a .caffemodel into it by Caffe's rules (layers matched by name).  The
 * runtime options are the environment's (crema_net_open_config chooses). */
crema_status crema_net_open(const char *model_path, const char *weights_path,
                            crema_phase phase, crema_net **out, crema_error *err);
void crema_net_close(crema_net *net);

/* Blobs are float32 arrays in Caffe's layout (N x C x H x W for images). */
int crema_net_num_inputs(const crema_net *net);
int crema_net_num_outputs(const crema_net *net);
const char *crema_net_input_name(const crema_net *net, int i);
const char *crema_net_output_name(const crema_net *net, int i);

/* Shape of a blob by name; *num_axes receives the number of axes (at most
 * max_axes are written to dims). */
crema_status crema_net_blob_shape(const crema_net *net, const char *blob, int *num_axes,
                                  int *dims, int max_axes, crema_error *err);
/* Pointer to a blob's data (count floats), valid until the next reshape. */
crema_status crema_net_blob_data(crema_net *net, const char *blob, float **data,
                                 size_t *count, crema_error *err);
/* Changes an input blob's shape and propagates shapes through the net. */
crema_status crema_net_reshape_input(crema_net *net, const char *blob, int num_axes,
                                     const int *dims, crema_error *err);

/* The factor by which the net's pooling and strided convolutions reduce
 * its input (the least common multiple over its blobs; 1 when it has no
 * strided layer).  Image inputs whose height and width are multiples of it
 * are taken by every layer; others may fail where side outputs are cropped
 * or concatenated back. */
int crema_net_size_multiple(const crema_net *net);

/* Runs the net forward; *loss receives the weighted sum of the losses
 * (0 for nets without loss).  loss may be NULL. */
crema_status crema_net_forward(crema_net *net, float *loss, crema_error *err);
/* Runs the net backward from its losses (and any seeded output diffs). */
crema_status crema_net_backward(crema_net *net, crema_error *err);

/* Writes the net's parameters as a binary .caffemodel (atomically). */
crema_status crema_net_save(const crema_net *net, const char *path, crema_error *err);

/* ---- Hosts that drive a net layer by layer (the Python module) -----------
 *
 * pycaffe's Net, Blob, Layer and Solver over libcrema.  A net opened
 * "observable" behaves as a Caffe net towards its host: every blob keeps
 * its own storage and has a diff (also in the TEST phase), layers run one
 * by one (no layer does the work of the next), and a range of layers can
 * run forward or backward. */

typedef struct crema_net_config {
  crema_phase phase;
  int level;                 /* NetState level (default 0) */
  const char *const *stages; /* NetState stages; when nstages > 0 they
                                replace those of the prototxt's state */
  int nstages;
  int has_seed;              /* seed the fillers and random layers with seed */
  unsigned seed;
  int observable;            /* see above (default 0: inference nets share
                                activation storage and keep no diffs) */
  const crema_options *options; /* NULL: crema_options_from_env at open */
} crema_net_config;

/* phase, level 0, no stages, the default seed, not observable, the
 * environment's options. */
void crema_net_config_init(crema_net_config *cfg, crema_phase phase);
/* crema_net_open with the settings of cfg. */
crema_status crema_net_open_config(const char *model_path, const char *weights_path,
                                   const crema_net_config *cfg, crema_net **out,
                                   crema_error *err);

/* A blob of a net: an activation or a layer's parameter.  It lives as long
 * as its net; its data and diff pointers change when it grows. */
typedef struct crema_blob crema_blob;

/* Blobs in Caffe's order (Net::blobs(): inputs first, then each layer's new
 * tops, including the Split blobs Caffe inserts).  NULL when out of range. */
int crema_net_num_blobs(const crema_net *net);
crema_blob *crema_net_blob(crema_net *net, int i);
const char *crema_net_blob_name(const crema_net *net, int i);
/* The loss weight of blob i (0 for blobs that are not losses). */
float crema_net_blob_loss_weight(const crema_net *net, int i);
/* Index of the named blob or layer, -1 when there is none. */
int crema_net_blob_index(const crema_net *net, const char *name);
int crema_net_layer_index(const crema_net *net, const char *name);

/* Layers in order; type is Caffe's type string ("Convolution"). */
int crema_net_num_layers(const crema_net *net);
const char *crema_net_layer_name(const crema_net *net, int layer);
const char *crema_net_layer_type(const crema_net *net, int layer);
/* Bottom and top blob indices of a layer (-1 when out of range). */
int crema_net_layer_num_bottoms(const crema_net *net, int layer);
int crema_net_layer_bottom(const crema_net *net, int layer, int j);
int crema_net_layer_num_tops(const crema_net *net, int layer);
int crema_net_layer_top(const crema_net *net, int layer, int j);
/* Parameter blobs of a layer (weights, bias, ...); parameters shared by
 * name appear under every layer that uses them. */
int crema_net_layer_num_params(const crema_net *net, int layer);
crema_blob *crema_net_layer_param(crema_net *net, int layer, int k);

/* The blob's axes (at most max_axes of them are written to dims); returns
 * the number of axes. */
int crema_blob_shape(const crema_blob *blob, int *dims, int max_axes);
size_t crema_blob_count(const crema_blob *blob);
/* count floats, or NULL while the blob has no storage. */
float *crema_blob_data(crema_blob *blob);
/* The gradient (count floats), allocated (zeroed) on first use. */
crema_status crema_blob_diff(crema_blob *blob, float **diff, crema_error *err);
/* Caffe's Blob::Reshape: new storage only when the count grows beyond what
 * the blob holds (old values are then lost).  The net follows at its next
 * forward (crema_net_forward_range) or crema_net_reshape. */
crema_status crema_blob_reshape(crema_blob *blob, int num_axes, const int *dims,
                                crema_error *err);

/* Caffe's Net::Reshape: every layer's tops from its bottoms. */
crema_status crema_net_reshape(crema_net *net, crema_error *err);
/* Caffe's ForwardFromTo: layers start..end (inclusive), each reshaped
 * first; *loss (may be NULL) receives their weighted losses.  Needs an
 * observable net unless the range is the whole net. */
crema_status crema_net_forward_range(crema_net *net, int start, int end, float *loss,
                                     crema_error *err);
/* Caffe's BackwardFromTo: loss blobs' diffs are set to their loss weights,
 * then layers start down to end (start >= end) run backward.  Unlike
 * crema_net_backward, parameter diffs accumulate until
 * crema_net_clear_param_diffs, as in Caffe. */
crema_status crema_net_backward_range(crema_net *net, int start, int end, crema_error *err);
void crema_net_clear_param_diffs(crema_net *net);
/* Copies the parameters of a .caffemodel into the net (Caffe's
 * CopyTrainedLayersFrom: layers matched by name). */
crema_status crema_net_copy_from(crema_net *net, const char *weights_path, crema_error *err);

/* Training (Caffe's Solver).  Nets named in the solver file are read
 * relative to the working directory, as Caffe does. */
typedef struct crema_solver crema_solver;

typedef struct crema_solver_config {
  const char *type;  /* "SGD", "Nesterov", "AdaGrad", "RMSProp", "AdaDelta",
                        "Adam"; NULL: the solver file's type */
  int has_seed;      /* random_seed when the file sets none */
  unsigned seed;
  int observable;    /* build the nets observable */
  const crema_options *options; /* NULL: crema_options_from_env at open */
} crema_solver_config;

void crema_solver_config_init(crema_solver_config *cfg);
crema_status crema_solver_open(const char *solver_path, const crema_solver_config *cfg,
                               crema_solver **out, crema_error *err);
void crema_solver_close(crema_solver *solver);
/* The solver's type name ("SGD", ...). */
const char *crema_solver_type(const crema_solver *solver);
/* The train net and the test nets, owned by the solver. */
crema_net *crema_solver_net(crema_solver *solver);
int crema_solver_num_test_nets(const crema_solver *solver);
crema_net *crema_solver_test_net(crema_solver *solver, int i);
/* Updates done so far. */
int crema_solver_iter(const crema_solver *solver);
/* Caffe's Step(iters): test, forward/backward, update, snapshot as the
 * solver file says.  The parameter diffs hold the last update's steps
 * afterwards, as Caffe leaves them. */
crema_status crema_solver_step(crema_solver *solver, int iters, crema_error *err);
/* Caffe's Solve: optionally restores resume_path (.solverstate; may be
 * NULL), then trains up to max_iter. */
crema_status crema_solver_solve(crema_solver *solver, const char *resume_path,
                                crema_error *err);
crema_status crema_solver_restore(crema_solver *solver, const char *state_path,
                                  crema_error *err);
/* Writes PREFIX_iter_N.caffemodel and .solverstate. */
crema_status crema_solver_snapshot(crema_solver *solver, crema_error *err);

/* Reads a PNG or JPEG as 8-bit pixels, rows top to bottom, channels
 * interleaved in R,G,B(,A) order: channels 0 keeps the file's (1, 3 or 4),
 * 1 or 3 converts.  *pixels is malloc'd (free with crema_free). */
crema_status crema_image_read(const char *path, int channels, int *height, int *width,
                              int *out_channels, unsigned char **pixels, crema_error *err);
/* Frees memory the library returned. */
void crema_free(void *p);

/* ---- Lesion segmentation (what `crema segment` does) ---------------------
 *
 * A side-output lesion network (models/lesion/deploy.prototxt and its
 * weights; `make install` puts the bundled model in $(datadir)/crema/lesion,
 * see `pkg-config --variable=modeldir crema`) applied to one image: the
 * image is resized to S x S, its B,G,R values less the means (and times the
 * scale) that the input layer's transform_param gives (else VGG's means),
 * the net run at each scale, the probability maps averaged and resampled
 * to the image's own size, and the mask thresholded. */
typedef struct crema_segmenter crema_segmenter;

typedef struct crema_segment_config {
  int size;             /* S; 0: the model's input size.  A size the net's
                           pooling cannot take is refused (crema_net_size_multiple) */
  const float *scales;  /* nscales factors of S whose maps are averaged, each in */
  int nscales;          /* (0, 8]; 0: one scale, 1 */
  float threshold;      /* mask: lesion where the fused probability >= it (0.5) */
  int flips;            /* test-time flips averaged: 0 none, 1 left-right,
                           2 left-right and upside down */
  int keep;             /* mask components kept: 0 all, 1 the largest, 2 the
                           one nearest the image centre */
  int fill_holes;       /* non-zero: holes in the mask filled */
} crema_segment_config;

/* Size 0, scale 1, threshold 0.5, no flips, every component, no filling. */
void crema_segment_config_init(crema_segment_config *cfg);
/* cfg may be NULL for the defaults. */
crema_status crema_segmenter_open(const char *model_path, const char *weights_path,
                                  const crema_segment_config *cfg, crema_segmenter **out,
                                  crema_error *err);
void crema_segmenter_close(crema_segmenter *s);
/* The side S images are resized to. */
int crema_segmenter_size(const crema_segmenter *s);

/* At the image's size, rows top to bottom (width * height values each),
 * malloc'd: free with crema_segmentation_free. */
typedef struct crema_segmentation {
  int width, height;
  float *fuse;          /* lesion probability (the fused output) */
  float *border;        /* border and lesion side maps; NULL when the */
  float *lesion;        /* net lacks them */
  unsigned char *mask;  /* 255 lesion, 0 background (ISIC's format) */
} crema_segmentation;

/* Segments 8-bit pixels, channels interleaved R,G,B(,A) or gray (channels
 * 3, 4 or 1), as crema_image_read returns them. */
crema_status crema_segment_pixels(crema_segmenter *s, const unsigned char *pixels, int width,
                                  int height, int channels, crema_segmentation *out,
                                  crema_error *err);
/* Reads a PNG or JPEG and segments it. */
crema_status crema_segment_file(crema_segmenter *s, const char *path, crema_segmentation *out,
                                crema_error *err);
void crema_segmentation_free(crema_segmentation *seg);

#ifdef __cplusplus
}
#endif

#endif /* CREMA_H */
