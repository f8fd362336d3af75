/* Whole-file reading and atomic writing. */
#ifndef CREMA_IO_FILE_H
#define CREMA_IO_FILE_H

#include <stddef.h>
#include "core/error.h"

/* A read-only view of a whole file (mmap'd where possible). */
typedef struct file_view {
  const unsigned char *data;
  size_t size;
  void *map_base;   /* internal */
  size_t map_size;  /* internal */
  unsigned char *heap; /* internal: used when mmap is not possible */
} file_view;

/* Opens path for reading; fails with a clear message for directories,
 * missing files and files larger than max_size bytes. */
crema_status file_view_open(const char *path, size_t max_size, file_view *v, crema_error *err);
void file_view_close(file_view *v);
/* Tells the kernel that bytes [offset, offset + len) of a mapped view will
 * not be read again, so their pages leave the process's resident set (a
 * file of weights then never counts twice in peak memory).  Only a hint:
 * reading them again still works. */
void file_view_release(const file_view *v, size_t offset, size_t len);

/* Maps in the whole pages inside [p, p + len) ahead of use, for reading or
 * for writing, with one system call instead of one page fault per page
 * (Linux 5.14's MADV_POPULATE_*; a no-op where the kernel lacks it).
 * Only a hint: the memory works the same either way. */
void mem_prefault(const void *p, size_t len, int for_write);

/* Writes data to path through a temporary file in the same directory,
 * fsync'd and renamed over path, so readers never see a partial file. */
crema_status file_write_atomic(const char *path, const void *data, size_t len, crema_error *err);

/* 1 if something exists at path (stat succeeds). */
int file_exists(const char *path);

/* 1 if path ends with suffix (case-insensitive). */
int path_has_suffix(const char *path, const char *suffix);

/* 1 if path names a text-format protobuf file (.prototxt or .pbtxt).  Caffe
 * reads weights, mean files and solver states as binary whatever they are
 * called; crema reads such a file as text only when its name says so. */
int path_is_text_proto(const char *path);

#endif
