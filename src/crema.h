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

/* Inference and training on a network. */
typedef struct crema_net crema_net;

typedef enum crema_phase { CREMA_TRAIN = 0, CREMA_TEST = 1 } crema_phase;

/* Builds the network described by a .prototxt (legacy layouts are upgraded)
 * for the given phase and, if weights_path is not NULL, copies the weights
 * of a .caffemodel into it by Caffe's rules (layers matched by name). */
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

/* Runs the net forward; *loss receives the weighted sum of the losses
 * (0 for nets without loss).  loss may be NULL. */
crema_status crema_net_forward(crema_net *net, float *loss, crema_error *err);
/* Runs the net backward from its losses (and any seeded output diffs). */
crema_status crema_net_backward(crema_net *net, crema_error *err);

/* Writes the net's parameters as a binary .caffemodel (atomically). */
crema_status crema_net_save(const crema_net *net, const char *path, crema_error *err);

#ifdef __cplusplus
}
#endif

#endif /* CREMA_H */
