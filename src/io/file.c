#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/file.h"

static crema_status fail_errno(crema_error *err, const char *what, const char *path, int e) {
  crema_status st = (e == ENOENT || e == ENOTDIR) ? CREMA_ERR_NOT_FOUND : CREMA_ERR_IO;
  return crema_fail(err, st, "%s: %s: %s", path, what, strerror(e));
}

static void file_view_reset(file_view *v) {
  v->data = NULL;
  v->size = 0;
  v->map_base = NULL;
  v->map_size = 0;
  v->heap = NULL;
}

/* Pipes, character devices and files mmap refuses are read into memory,
 * never beyond max_size. */
static crema_status read_stream(int fd, const char *path, size_t max_size, file_view *v,
                                crema_error *err) {
  size_t cap = 0, len = 0;
  unsigned char *buf = NULL;
  for (;;) {
    if (len == cap) {
      size_t grow = cap ? cap : 65536;
      size_t next;
      if (!size_add(cap, grow, &next))
        next = SIZE_MAX;
      if (max_size < SIZE_MAX && next > max_size + 1)
        next = max_size + 1;
      if (next <= len) {
        free(buf);
        return crema_fail(err, CREMA_ERR_INVALID, "%s: file is larger than %zu bytes", path,
                          max_size);
      }
      unsigned char *nb = realloc(buf, next);
      if (!nb) {
        free(buf);
        return crema_fail(err, CREMA_ERR_NOMEM, "%s: out of memory reading the file", path);
      }
      buf = nb;
      cap = next;
    }
    ssize_t n = read(fd, buf + len, cap - len);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      int e = errno;
      free(buf);
      return fail_errno(err, "cannot read", path, e);
    }
    if (n == 0)
      break;
    len += (size_t)n;
    if (len > max_size) {
      free(buf);
      return crema_fail(err, CREMA_ERR_INVALID, "%s: file is larger than %zu bytes", path,
                        max_size);
    }
  }
  if (len == 0) {
    free(buf);
    return CREMA_OK;
  }
  v->heap = buf;
  v->data = buf;
  v->size = len;
  return CREMA_OK;
}

crema_status file_view_open(const char *path, size_t max_size, file_view *v, crema_error *err) {
  file_view_reset(v);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return fail_errno(err, "cannot open", path, errno);
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int e = errno;
    close(fd);
    return fail_errno(err, "cannot stat", path, e);
  }
  if (S_ISDIR(st.st_mode)) {
    close(fd);
    return crema_fail(err, CREMA_ERR_IO, "%s: is a directory, expected a file", path);
  }
  crema_status status = CREMA_OK;
  if (S_ISREG(st.st_mode)) {
    if ((unsigned long long)st.st_size > (unsigned long long)max_size) {
      close(fd);
      return crema_fail(err, CREMA_ERR_INVALID, "%s: file is %lld bytes, more than the %zu allowed",
                        path, (long long)st.st_size, max_size);
    }
    size_t size = (size_t)st.st_size;
    if (size > 0) {
      void *base = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
      if (base != MAP_FAILED) {
        v->map_base = base;
        v->map_size = size;
        v->data = base;
        v->size = size;
      } else {
        status = read_stream(fd, path, max_size, v, err);
      }
    }
  } else {
    status = read_stream(fd, path, max_size, v, err);
  }
  close(fd);
  return status;
}

void file_view_close(file_view *v) {
  if (!v)
    return;
  if (v->map_base)
    munmap(v->map_base, v->map_size);
  free(v->heap);
  file_view_reset(v);
}

void file_view_release(const file_view *v, size_t offset, size_t len) {
  if (!v->map_base || offset >= v->map_size)
    return;
  if (len > v->map_size - offset)
    len = v->map_size - offset;
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  size_t first = (offset + page - 1) / page * page;
  size_t last = (offset + len) / page * page;
  if (last > first)
    madvise((unsigned char *)v->map_base + first, last - first, MADV_DONTNEED);
}

void mem_prefault(const void *p, size_t len, int for_write) {
#if defined(MADV_POPULATE_READ) && defined(MADV_POPULATE_WRITE)
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  uintptr_t first = ((uintptr_t)p + page - 1) / page * page;
  uintptr_t last = ((uintptr_t)p + len) / page * page;
  if (last > first)
    madvise((void *)first, last - first, for_write ? MADV_POPULATE_WRITE : MADV_POPULATE_READ);
#else
  (void)p, (void)len, (void)for_write;
#endif
}

static int write_all(int fd, const unsigned char *p, size_t len) {
  while (len > 0) {
    size_t chunk = len > (1u << 30) ? (1u << 30) : len;
    ssize_t n = write(fd, p, chunk);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return -1;
    }
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

/* The umask is read from /proc rather than with umask(2), which would briefly
 * change it for every thread of the process. */
static mode_t current_umask(void) {
  mode_t mask = 022;
  FILE *f = fopen("/proc/self/status", "r");
  if (!f)
    return mask;
  char line[256];
  while (fgets(line, sizeof line, f)) {
    unsigned m;
    if (sscanf(line, "Umask: %o", &m) == 1) {
      mask = (mode_t)m;
      break;
    }
  }
  fclose(f);
  return mask;
}

/* A replaced file keeps its permissions; a new one gets 0666 & ~umask like
 * any file created with fopen. */
static mode_t target_mode(const char *path) {
  struct stat st;
  if (stat(path, &st) == 0 && S_ISREG(st.st_mode))
    return st.st_mode & 07777;
  return 0666 & ~current_umask();
}

static void sync_directory(const char *dir) {
  int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    fsync(dfd);
    close(dfd);
  }
}

crema_status file_write_atomic(const char *path, const void *data, size_t len, crema_error *err) {
  const char *slash = strrchr(path, '/');
  const char *base = slash ? slash + 1 : path;
  if (*base == '\0')
    return crema_fail(err, CREMA_ERR_INVALID, "%s: not a file name", path);
  size_t dir_len = slash ? (size_t)(slash - path) + 1 : 0;
  size_t tmp_len = dir_len + strlen(base) + sizeof "/..tmp.XXXXXX" + 1;
  char *tmp = crema_malloc(tmp_len, err);
  if (!tmp)
    return CREMA_ERR_NOMEM;
  snprintf(tmp, tmp_len, "%.*s.%s.tmp.XXXXXX", (int)dir_len, path, base);
  int fd = mkstemp(tmp);
  if (fd < 0) {
    int e = errno;
    free(tmp);
    return crema_fail(err, CREMA_ERR_IO, "%s: cannot create a temporary file next to it: %s",
                      path, strerror(e));
  }
  const char *what = NULL;
  if (write_all(fd, data, len) != 0)
    what = "cannot write";
  else if (fchmod(fd, target_mode(path)) != 0)
    what = "cannot set permissions";
  else if (fsync(fd) != 0)
    what = "cannot sync";
  int e = errno;
  if (close(fd) != 0 && !what) {
    what = "cannot close";
    e = errno;
  }
  if (!what && rename(tmp, path) != 0) {
    what = "cannot rename the temporary file into place";
    e = errno;
  }
  if (what) {
    unlink(tmp);
    free(tmp);
    return crema_fail(err, CREMA_ERR_IO, "%s: %s: %s", path, what, strerror(e));
  }
  if (dir_len > 0) {
    tmp[dir_len] = '\0';
    sync_directory(tmp);
  } else {
    sync_directory(".");
  }
  free(tmp);
  return CREMA_OK;
}

int path_has_suffix(const char *path, const char *suffix) {
  size_t n = strlen(path), m = strlen(suffix);
  if (m > n)
    return 0;
  const char *tail = path + n - m;
  for (size_t i = 0; i < m; i++)
    if (tolower((unsigned char)tail[i]) != tolower((unsigned char)suffix[i]))
      return 0;
  return 1;
}

int file_exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0;
}

int path_is_text_proto(const char *path) {
  return path_has_suffix(path, ".prototxt") || path_has_suffix(path, ".pbtxt");
}
