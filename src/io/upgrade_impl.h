/* What io/upgrade.c (the entry points and the dispatch), upgrade_v0.c,
 * upgrade_v1.c and upgrade_solver.c share; private to them.
 *
 * The upgrades edit protobuf-c structs in place.  Pieces move between the old
 * and the new layout by pointer (the old slot is cleared), so a message stays
 * freeable with protobuf_c_message_free_unpacked at every step.  A string
 * field with a proto default points at a static string while unset; such
 * pointers are never moved or freed. */
#ifndef CREMA_IO_UPGRADE_IMPL_H
#define CREMA_IO_UPGRADE_IMPL_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "caffe.pb-c.h"
#include "core/error.h"

/* The file being upgraded, for messages, and the caller's log level
 * (crema_options.log_level), under which Caffe's notices are printed. */
typedef struct upgrade_src {
  const char *path;
  crema_log_level level;
} upgrade_src;

static inline void *msg_new(const ProtobufCMessageDescriptor *desc, crema_error *err) {
  void *m = crema_malloc(desc->sizeof_message, err);
  if (m)
    protobuf_c_message_init(desc, m);
  return m;
}

#define ENSURE_SUB(slot, desc)                  \
  do {                                          \
    if (!(slot)) {                              \
      (slot) = msg_new(&(desc), err);           \
      if (!(slot))                              \
        return CREMA_ERR_NOMEM;                 \
    }                                           \
  } while (0)

#define MOVE(dst, src) \
  do {                 \
    (dst) = (src);     \
    (src) = NULL;      \
  } while (0)

#define MOVE_ARRAY(dst, src, count_dst, count_src) \
  do {                                             \
    MOVE(dst, src);                                \
    (count_dst) = (count_src);                     \
    (count_src) = 0;                               \
  } while (0)

static inline void free_msg(void *msg) {
  if (msg)
    protobuf_c_message_free_unpacked((ProtobufCMessage *)msg, NULL);
}

static inline crema_status append_u32(size_t *n, uint32_t **arr, uint32_t v, crema_error *err) {
  uint32_t *grown = realloc(*arr, (*n + 1) * sizeof **arr);
  if (!grown)
    return crema_fail(err, CREMA_ERR_NOMEM, "out of memory upgrading a net");
  grown[*n] = v;
  *arr = grown;
  (*n)++;
  return CREMA_OK;
}

static inline int str_present(const char *s, const char *default_value) {
  return s != NULL && s != default_value;
}

static inline const char *name_or_unnamed(const char *name) { return name ? name : "(unnamed)"; }

/* upgrade_v0.c: whether net has V0 layers, and their upgrade to V1 (*ok
 * cleared when a setting had no place in V1). */
int net_needs_v0_upgrade(const Caffe__NetParameter *net);
crema_status upgrade_v0_net(Caffe__NetParameter *net, const upgrade_src *src, int *ok,
                            crema_error *err);

/* upgrade_v1.c: whether V1 layers carry the legacy data transformation
 * fields, and their move into transform_param. */
int net_needs_data_upgrade(const Caffe__NetParameter *net);
crema_status upgrade_data_transformation(Caffe__NetParameter *net, crema_error *err);

#endif
