/* LMDB databases of Caffe records: a read-only cursor that walks the
 * records in key order and wraps around at the end (as Caffe's DataLayer),
 * and a writer for the tools that build databases. */
#ifndef CREMA_DATA_LMDB_SOURCE_H
#define CREMA_DATA_LMDB_SOURCE_H

#include <stddef.h>
#include "core/error.h"

typedef struct lmdb_source lmdb_source;

/* Opens the database directory path read-only, positioned at its first
 * record.  Several processes may read one database at once; nothing is
 * written (no lock file), so read-only datasets work.  An empty database
 * is an error. */
crema_status lmdb_source_open(const char *path, lmdb_source **out, crema_error *err);
void lmdb_source_close(lmdb_source *s);

const char *lmdb_source_path(const lmdb_source *s);
size_t lmdb_source_count(const lmdb_source *s);

/* The record under the cursor; the bytes stay valid until the cursor
 * moves or the source is closed. */
void lmdb_source_key(const lmdb_source *s, const void **key, size_t *len);
void lmdb_source_value(const lmdb_source *s, const void **value, size_t *len);
/* The current key as printable text (non-printable bytes escaped). */
const char *lmdb_source_key_string(const lmdb_source *s, char *buf, size_t size);

/* Moves to the next record, back to the first after the last; *wrapped
 * (if not NULL) tells whether it did. */
crema_status lmdb_source_next(lmdb_source *s, int *wrapped, crema_error *err);
crema_status lmdb_source_rewind(lmdb_source *s, crema_error *err);

/* Writing ------------------------------------------------------------- */

typedef struct lmdb_writer lmdb_writer;

/* Starts a new database at path (which must not exist, as Caffe's tools
 * require).  It is written in path.tmp-PID and appears at path only when
 * finished, complete: after a crash, a kill or a write error path is
 * absent, never partial. */
crema_status lmdb_writer_create(const char *path, lmdb_writer **out, crema_error *err);
/* Adds a record; records are committed in transactions of 1000 (the map
 * grows as needed). */
crema_status lmdb_writer_put(lmdb_writer *w, const void *key, size_t key_len, const void *value,
                             size_t value_len, crema_error *err);
/* Commits what remains, syncs, closes and renames the database to its
 * path; w is freed even on failure (and the temporary directory removed). */
crema_status lmdb_writer_finish(lmdb_writer *w, crema_error *err);
/* Discards everything written: the temporary directory is removed. */
void lmdb_writer_abort(lmdb_writer *w);

#endif
