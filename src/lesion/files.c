/* Folders of ISIC-style files (see files.h). */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "io/file.h"
#include "lesion/files.h"

void lesion_names_free(lesion_names *names) {
  for (size_t i = 0; i < names->n; i++)
    free(names->v[i]);
  free(names->v);
  names->v = NULL;
  names->n = 0;
}

static int compare_names(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static int is_regular_file(const char *dir, const char *name) {
  crema_error ignored;
  char *path = lesion_path_join(dir, name, &ignored);
  if (!path)
    return 0;
  struct stat st;
  int ok = stat(path, &st) == 0 && S_ISREG(st.st_mode);
  free(path);
  return ok;
}

crema_status lesion_list_dir(const char *dir, lesion_names *out, crema_error *err) {
  out->v = NULL;
  out->n = 0;
  DIR *d = opendir(dir);
  if (!d)
    return crema_fail(err, CREMA_ERR_IO, "cannot open folder '%s': %s", dir, strerror(errno));
  size_t cap = 0;
  crema_status st = CREMA_OK;
  for (struct dirent *e; st == CREMA_OK && (e = readdir(d));) {
    if (e->d_name[0] == '.' || !is_regular_file(dir, e->d_name))
      continue;
    if (out->n == cap) {
      size_t ncap = cap ? 2 * cap : 64;
      char **v = realloc(out->v, ncap * sizeof *v);
      if (!v) {
        st = crema_fail(err, CREMA_ERR_NOMEM, "out of memory listing '%s'", dir);
        break;
      }
      out->v = v;
      cap = ncap;
    }
    if (!(out->v[out->n] = crema_strdup(e->d_name, err)))
      st = CREMA_ERR_NOMEM;
    else
      out->n++;
  }
  closedir(d);
  if (st != CREMA_OK) {
    lesion_names_free(out);
    return st;
  }
  if (out->n > 1)
    qsort(out->v, out->n, sizeof *out->v, compare_names);
  return CREMA_OK;
}

int lesion_has_image_extension(const char *name) {
  return path_has_suffix(name, ".jpg") || path_has_suffix(name, ".jpeg") ||
         path_has_suffix(name, ".png");
}

int lesion_is_companion_name(const char *name) {
  static const char *const suffixes[] = {"_segmentation", "_superpixels", "_border", "_lesion",
                                         "_overlay"};
  const char *dot = strrchr(name, '.');
  size_t stem = dot ? (size_t)(dot - name) : strlen(name);
  for (size_t i = 0; i < sizeof suffixes / sizeof *suffixes; i++) {
    size_t m = strlen(suffixes[i]);
    if (stem >= m && !strncasecmp(name + stem - m, suffixes[i], m))
      return 1;
  }
  return 0;
}

char *lesion_image_id(const char *path, crema_error *err) {
  const char *slash = strrchr(path, '/');
  const char *base = slash ? slash + 1 : path;
  const char *dot = strrchr(base, '.');
  size_t n = dot && dot != base ? (size_t)(dot - base) : strlen(base);
  char *id = crema_malloc(n + 1, err);
  if (!id)
    return NULL;
  memcpy(id, base, n);
  id[n] = '\0';
  return id;
}

char *lesion_path_join(const char *dir, const char *name, crema_error *err) {
  if (!dir || !dir[0])
    return crema_strdup(name, err);
  size_t a = strlen(dir), b = strlen(name);
  int slash = dir[a - 1] != '/';
  size_t len;
  if (!size_add(a, b + 1 + (size_t)slash, &len)) {
    crema_fail(err, CREMA_ERR_NOMEM, "path too long");
    return NULL;
  }
  char *p = crema_malloc(len, err);
  if (!p)
    return NULL;
  memcpy(p, dir, a);
  if (slash)
    p[a] = '/';
  memcpy(p + a + slash, name, b + 1);
  return p;
}

crema_status lesion_make_dir(const char *dir, crema_error *err) {
  struct stat st;
  if (stat(dir, &st) == 0) {
    if (S_ISDIR(st.st_mode))
      return CREMA_OK;
    return crema_fail(err, CREMA_ERR_IO, "'%s' exists and is not a folder", dir);
  }
  if (mkdir(dir, 0777) != 0 && errno != EEXIST)
    return crema_fail(err, CREMA_ERR_IO, "cannot create folder '%s': %s", dir, strerror(errno));
  return CREMA_OK;
}
