#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <lmdb.h>

#include "data/lmdb_source.h"

struct lmdb_source {
  char *path;
  MDB_env *env;
  MDB_txn *txn;
  MDB_dbi dbi;
  MDB_cursor *cursor;
  MDB_val key, value;
  size_t count;
};

static crema_status lmdb_fail(crema_error *err, const char *path, const char *what, int rc) {
  crema_status st = rc == ENOENT ? CREMA_ERR_NOT_FOUND
                    : rc == ENOMEM ? CREMA_ERR_NOMEM
                                   : CREMA_ERR_IO;
  return crema_fail(err, st, "LMDB database '%s': %s: %s", path, what, mdb_strerror(rc));
}

static crema_status check_directory(const char *path, crema_error *err) {
  struct stat st;
  if (stat(path, &st) != 0)
    return crema_fail(err, errno == ENOENT ? CREMA_ERR_NOT_FOUND : CREMA_ERR_IO,
                      "LMDB database '%s': %s", path, strerror(errno));
  if (!S_ISDIR(st.st_mode))
    return crema_fail(err, CREMA_ERR_INVALID,
                      "LMDB database '%s': not a directory (Caffe's databases are directories "
                      "holding data.mdb)",
                      path);
  char data_file[4096];
  snprintf(data_file, sizeof data_file, "%s/data.mdb", path);
  if (stat(data_file, &st) != 0)
    return crema_fail(err, CREMA_ERR_NOT_FOUND, "LMDB database '%s': no data.mdb in the directory",
                      path);
  return CREMA_OK;
}

/* Opens read-only and without LMDB's lock file: a database is complete
 * before anybody reads it (writers build it under a temporary name and
 * rename it, see lmdb_writer_create), so readers need no lock against a
 * writer, and nothing is written into a dataset that is read-only or
 * shared (Caffe's MDB_RDONLY alone creates or rewrites lock.mdb). */
static int open_env(const char *path, MDB_env **out) {
  MDB_env *env = NULL;
  int rc = mdb_env_create(&env);
  if (rc != 0)
    return rc;
  rc = mdb_env_open(env, path, MDB_RDONLY | MDB_NOTLS | MDB_NOLOCK, 0664);
  if (rc != 0) {
    mdb_env_close(env);
    return rc;
  }
  *out = env;
  return 0;
}

crema_status lmdb_source_open(const char *path, lmdb_source **out, crema_error *err) {
  *out = NULL;
  CREMA_TRY(check_directory(path, err));
  lmdb_source *s = crema_calloc(1, sizeof *s, err);
  if (!s)
    return CREMA_ERR_NOMEM;
  crema_status st = CREMA_OK;
  int rc;
  if (!(s->path = crema_strdup(path, err))) {
    st = CREMA_ERR_NOMEM;
  } else if ((rc = open_env(path, &s->env)) != 0) {
    st = lmdb_fail(err, path, "cannot open", rc);
  } else if ((rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &s->txn)) != 0) {
    st = lmdb_fail(err, path, "cannot begin a read transaction", rc);
  } else if ((rc = mdb_dbi_open(s->txn, NULL, 0, &s->dbi)) != 0) {
    st = lmdb_fail(err, path, "cannot open the main database", rc);
  } else if ((rc = mdb_cursor_open(s->txn, s->dbi, &s->cursor)) != 0) {
    st = lmdb_fail(err, path, "cannot open a cursor", rc);
  } else {
    MDB_stat stat;
    if ((rc = mdb_stat(s->txn, s->dbi, &stat)) != 0)
      st = lmdb_fail(err, path, "cannot read its statistics", rc);
    else if ((s->count = stat.ms_entries) == 0)
      st = crema_fail(err, CREMA_ERR_INVALID, "LMDB database '%s' holds no records", path);
    else
      st = lmdb_source_rewind(s, err);
  }
  if (st != CREMA_OK) {
    lmdb_source_close(s);
    return st;
  }
  *out = s;
  return CREMA_OK;
}

void lmdb_source_close(lmdb_source *s) {
  if (!s)
    return;
  if (s->cursor)
    mdb_cursor_close(s->cursor);
  if (s->txn)
    mdb_txn_abort(s->txn);
  if (s->env)
    mdb_env_close(s->env);
  free(s->path);
  free(s);
}

const char *lmdb_source_path(const lmdb_source *s) { return s->path; }
size_t lmdb_source_count(const lmdb_source *s) { return s->count; }

void lmdb_source_key(const lmdb_source *s, const void **key, size_t *len) {
  *key = s->key.mv_data;
  *len = s->key.mv_size;
}

void lmdb_source_value(const lmdb_source *s, const void **value, size_t *len) {
  *value = s->value.mv_data;
  *len = s->value.mv_size;
}

const char *lmdb_source_key_string(const lmdb_source *s, char *buf, size_t size) {
  const unsigned char *k = s->key.mv_data;
  size_t n = 0;
  for (size_t i = 0; i < s->key.mv_size && n + 5 < size; i++) {
    if (k[i] >= 0x20 && k[i] < 0x7f)
      buf[n++] = (char)k[i];
    else
      n += (size_t)snprintf(buf + n, size - n, "\\x%02x", k[i]);
  }
  if (size)
    buf[n < size ? n : size - 1] = '\0';
  return buf;
}

static crema_status cursor_get(lmdb_source *s, MDB_cursor_op op, int *found, crema_error *err) {
  int rc = mdb_cursor_get(s->cursor, &s->key, &s->value, op);
  *found = rc == 0;
  if (rc == 0 || rc == MDB_NOTFOUND)
    return CREMA_OK;
  return lmdb_fail(err, s->path, "cannot read a record", rc);
}

crema_status lmdb_source_rewind(lmdb_source *s, crema_error *err) {
  int found;
  CREMA_TRY(cursor_get(s, MDB_FIRST, &found, err));
  if (!found)
    return crema_fail(err, CREMA_ERR_INVALID, "LMDB database '%s' holds no records", s->path);
  return CREMA_OK;
}

crema_status lmdb_source_next(lmdb_source *s, int *wrapped, crema_error *err) {
  int found;
  CREMA_TRY(cursor_get(s, MDB_NEXT, &found, err));
  if (wrapped)
    *wrapped = !found;
  return found ? CREMA_OK : lmdb_source_rewind(s, err);
}

/* ---- Writing --------------------------------------------------------- */

#define WRITER_BATCH_RECORDS 1000
/* Pending records are also committed when they hold this many bytes, so
 * that databases of large raw images do not sit in memory. */
#define WRITER_BATCH_BYTES ((size_t)256 << 20)
#define WRITER_INITIAL_MAP ((size_t)64 << 20)

typedef struct pending_record {
  unsigned char *key, *value;
  size_t key_len, value_len;
} pending_record;

struct lmdb_writer {
  char *path; /* the database's name */
  char *tmp;  /* where it is written until finished: path.tmp-PID */
  MDB_env *env;
  size_t map_size;
  pending_record pending[WRITER_BATCH_RECORDS];
  int npending;
  size_t pending_bytes;
};

static void writer_clear_pending(lmdb_writer *w) {
  for (int i = 0; i < w->npending; i++) {
    free(w->pending[i].key);
    free(w->pending[i].value);
  }
  w->npending = 0;
  w->pending_bytes = 0;
}

/* Removes the temporary directory of an unfinished database (LMDB keeps
 * only data.mdb and lock.mdb there). */
static void remove_tmp_dir(const char *dir) {
  char file[4096];
  snprintf(file, sizeof file, "%s/data.mdb", dir);
  unlink(file);
  snprintf(file, sizeof file, "%s/lock.mdb", dir);
  unlink(file);
  rmdir(dir);
}

/* Closes; the temporary directory goes unless keep_tmp (it was renamed). */
static void writer_free(lmdb_writer *w, int keep_tmp) {
  writer_clear_pending(w);
  if (w->env)
    mdb_env_close(w->env);
  if (w->tmp && !keep_tmp)
    remove_tmp_dir(w->tmp);
  free(w->tmp);
  free(w->path);
  free(w);
}

/* The database is built under a temporary name beside path and renamed
 * when finished, so that a crash, a kill or a full disk never leaves a
 * database that looks complete and is not: path is absent or whole. */
crema_status lmdb_writer_create(const char *path, lmdb_writer **out, crema_error *err) {
  *out = NULL;
  struct stat sb;
  if (lstat(path, &sb) == 0)
    return crema_fail(err, CREMA_ERR_INVALID,
                      "LMDB database '%s' already exists (remove it or choose another name)",
                      path);
  lmdb_writer *w = crema_calloc(1, sizeof *w, err);
  if (!w)
    return CREMA_ERR_NOMEM;
  w->map_size = WRITER_INITIAL_MAP;
  size_t tmp_len = strlen(path) + 32;
  if (!(w->path = crema_strdup(path, err)) || !(w->tmp = crema_malloc(tmp_len, err))) {
    writer_free(w, 1);
    return CREMA_ERR_NOMEM;
  }
  snprintf(w->tmp, tmp_len, "%s.tmp-%ld", path, (long)getpid());
  if (mkdir(w->tmp, 0755) != 0) {
    crema_status st = crema_fail(err, CREMA_ERR_IO, "cannot create the LMDB directory '%s': %s",
                                 w->tmp, strerror(errno));
    free(w->tmp);
    w->tmp = NULL;
    writer_free(w, 1);
    return st;
  }
  int rc;
  crema_status st = CREMA_OK;
  if ((rc = mdb_env_create(&w->env)) != 0)
    st = lmdb_fail(err, path, "cannot create the environment", rc);
  else if ((rc = mdb_env_set_mapsize(w->env, w->map_size)) != 0)
    st = lmdb_fail(err, path, "cannot set the map size", rc);
  else if ((rc = mdb_env_open(w->env, w->tmp, 0, 0664)) != 0)
    st = lmdb_fail(err, path, "cannot open for writing", rc);
  if (st != CREMA_OK) {
    writer_free(w, 0);
    return st;
  }
  *out = w;
  return CREMA_OK;
}

/* Writes all pending records in one transaction; when the map is full,
 * doubles it and starts the transaction again. */
static crema_status writer_commit(lmdb_writer *w, crema_error *err) {
  if (w->npending == 0)
    return CREMA_OK;
  for (;;) {
    MDB_txn *txn;
    MDB_dbi dbi;
    int rc = mdb_txn_begin(w->env, NULL, 0, &txn);
    if (rc != 0)
      return lmdb_fail(err, w->path, "cannot begin a write transaction", rc);
    rc = mdb_dbi_open(txn, NULL, 0, &dbi);
    for (int i = 0; rc == 0 && i < w->npending; i++) {
      MDB_val k = {w->pending[i].key_len, w->pending[i].key};
      MDB_val v = {w->pending[i].value_len, w->pending[i].value};
      rc = mdb_put(txn, dbi, &k, &v, 0);
    }
    if (rc == 0)
      rc = mdb_txn_commit(txn);
    else
      mdb_txn_abort(txn);
    if (rc == 0)
      break;
    if (rc != MDB_MAP_FULL)
      return lmdb_fail(err, w->path, "cannot write records", rc);
    w->map_size *= 2;
    if ((rc = mdb_env_set_mapsize(w->env, w->map_size)) != 0)
      return lmdb_fail(err, w->path, "cannot grow the map", rc);
  }
  writer_clear_pending(w);
  return CREMA_OK;
}

crema_status lmdb_writer_put(lmdb_writer *w, const void *key, size_t key_len, const void *value,
                             size_t value_len, crema_error *err) {
  size_t max_key = (size_t)mdb_env_get_maxkeysize(w->env);
  if (key_len == 0 || key_len > max_key)
    return crema_fail(err, CREMA_ERR_INVALID,
                      "LMDB database '%s': key of %zu bytes (keys have 1..%zu bytes)", w->path,
                      key_len, max_key);
  pending_record *r = &w->pending[w->npending];
  r->key = crema_malloc(key_len, err);
  r->value = crema_malloc(value_len ? value_len : 1, err);
  if (!r->key || !r->value) {
    free(r->key);
    free(r->value);
    return CREMA_ERR_NOMEM;
  }
  memcpy(r->key, key, key_len);
  if (value_len)
    memcpy(r->value, value, value_len);
  r->key_len = key_len;
  r->value_len = value_len;
  w->npending++;
  w->pending_bytes += key_len + value_len;
  if (w->npending == WRITER_BATCH_RECORDS || w->pending_bytes >= WRITER_BATCH_BYTES)
    return writer_commit(w, err);
  return CREMA_OK;
}

crema_status lmdb_writer_finish(lmdb_writer *w, crema_error *err) {
  crema_status st = writer_commit(w, err);
  int rc;
  if (st == CREMA_OK && (rc = mdb_env_sync(w->env, 1)) != 0)
    st = lmdb_fail(err, w->path, "cannot write to disk", rc);
  if (st != CREMA_OK) {
    writer_free(w, 0);
    return st;
  }
  mdb_env_close(w->env);
  w->env = NULL;
  /* Readers open without locking (lmdb_source_open): no lock file. */
  char lock[4096];
  snprintf(lock, sizeof lock, "%s/lock.mdb", w->tmp);
  unlink(lock);
  if (rename(w->tmp, w->path) != 0) {
    st = crema_fail(err, CREMA_ERR_IO, "cannot rename '%s' to '%s': %s", w->tmp, w->path,
                    strerror(errno));
    writer_free(w, 0);
    return st;
  }
  writer_free(w, 1);
  return CREMA_OK;
}

void lmdb_writer_abort(lmdb_writer *w) {
  if (w)
    writer_free(w, 0);
}
