/* crema convert-imageset: Caffe's convert_imageset tool.  Builds an LMDB
 * of Datum records from a list of images and labels; with --label-map,
 * from a list of segmentation masks (1 channel, values 0/1). */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/flags.h"
#include "core/log.h"
#include "core/rng.h"
#include "data/datum.h"
#include "data/lmdb_source.h"
#include "io/file.h"
#include "io/image.h"

static const char usage[] = "crema convert-imageset [flags] ROOTFOLDER/ LISTFILE DB_NAME";
static const char description[] =
    "Converts a set of images to the LMDB format used as input for Caffe.  LISTFILE\n"
    "holds one image per line, a path relative to ROOTFOLDER, a space and an integer\n"
    "label (ROOTFOLDER is prepended as given, so end it with '/').  Record keys are\n"
    "%08d_<path>, in list order (after --shuffle).  With --label-map the images are\n"
    "segmentation masks, stored as 1-channel records of 0 and 1 (any nonzero pixel is 1);\n"
    "their labels may be omitted.  Images that cannot be read are skipped (and counted);\n"
    "when none could be read, no database is written and the exit status is 1.";

/* Files larger than this are not images. */
#define LIST_MAX_SIZE ((size_t)1 << 30)
#define IMAGE_FILE_MAX_SIZE ((size_t)1 << 31)

typedef struct convert_flags {
  int gray, shuffle, check_size, encoded, label_map, allow_empty;
  const char *backend;
  const char *encode_type;
  int resize_width, resize_height;
  int seed;
} convert_flags;

typedef struct list_entry {
  char *name;
  int label;
} list_entry;

typedef struct image_list {
  list_entry *v;
  size_t n, cap;
} image_list;

static void list_free(image_list *l) {
  for (size_t i = 0; i < l->n; i++)
    free(l->v[i].name);
  free(l->v);
}

static crema_status list_add(image_list *l, const char *line, size_t len, crema_error *err) {
  if (l->n == l->cap) {
    size_t cap = l->cap ? l->cap * 2 : 256;
    list_entry *v = realloc(l->v, cap * sizeof *v);
    if (!v)
      return crema_fail(err, CREMA_ERR_NOMEM, "out of memory reading the list");
    l->v = v;
    l->cap = cap;
  }
  /* As Caffe: the label follows the last space; a line without one is all
   * name (and its label is whatever atoi makes of it). */
  size_t name_len = len;
  const char *label = line;
  for (size_t i = len; i-- > 0;)
    if (line[i] == ' ') {
      name_len = i;
      label = line + i + 1;
      break;
    }
  char *name = crema_malloc(name_len + 1, err);
  if (!name)
    return CREMA_ERR_NOMEM;
  memcpy(name, line, name_len);
  name[name_len] = '\0';
  l->v[l->n].name = name;
  l->v[l->n].label = atoi(label);
  l->n++;
  return CREMA_OK;
}

static crema_status read_list(const char *path, image_list *out, crema_error *err) {
  file_view v;
  CREMA_TRY(file_view_open(path, LIST_MAX_SIZE, &v, err));
  crema_status st = CREMA_OK;
  const char *text = (const char *)v.data;
  size_t pos = 0;
  while (st == CREMA_OK && pos < v.size) {
    size_t end = pos;
    while (end < v.size && text[end] != '\n')
      end++;
    size_t len = end - pos;
    if (len > 0 && text[pos + len - 1] == '\r')
      len--;
    st = list_add(out, text + pos, len, err);
    pos = end + 1;
  }
  file_view_close(&v);
  return st;
}

/* Fisher-Yates with a seeded generator, so a shuffled database can be
 * rebuilt exactly. */
static void shuffle_list(image_list *l, uint32_t seed) {
  crema_rng rng;
  rng_seed(&rng, seed);
  for (size_t i = l->n; i > 1; i--) {
    size_t j = rng_below(&rng, (uint32_t)i);
    list_entry t = l->v[i - 1];
    l->v[i - 1] = l->v[j];
    l->v[j] = t;
  }
}

static void lowercase(char *s) {
  for (; *s; s++)
    *s = (char)tolower((unsigned char)*s);
}

/* Does the file's extension name the encoding?  (Caffe's matchExt.) */
static int extension_matches(const char *name, const char *encoding) {
  const char *dot = strrchr(name, '.');
  const char *ext = dot ? dot + 1 : name;
  if (!strcasecmp(ext, encoding))
    return 1;
  return !strcasecmp(encoding, "jpg") && !strcasecmp(ext, "jpeg");
}

/* Masks become 0/1; a resize interpolates the 0/255 mask and keeps pixels
 * that come out at least half on. */
static crema_status make_label_map(image *img, const convert_flags *f, crema_error *err) {
  size_t n = (size_t)img->width * img->height;
  for (size_t i = 0; i < n; i++)
    img->pixels[i] = img->pixels[i] ? 255 : 0;
  if (f->resize_width > 0 && f->resize_height > 0) {
    image resized;
    CREMA_TRY(image_resize(img, f->resize_width, f->resize_height, &resized, err));
    image_free(img);
    *img = resized;
    n = (size_t)img->width * img->height;
  }
  for (size_t i = 0; i < n; i++)
    img->pixels[i] = img->pixels[i] >= 128;
  return CREMA_OK;
}

/* What the file becomes in the database, as Caffe's ReadImageToDatum;
 * *skip is set for files that cannot be read (Caffe logs and goes on). */
static crema_status build_datum(const char *path, const list_entry *e, const char *encoding,
                                const convert_flags *f, Caffe__Datum *d, int *skip,
                                crema_error *err) {
  file_view v;
  crema_error local = {0};
  *skip = 0;
  if (file_view_open(path, IMAGE_FILE_MAX_SIZE, &v, &local) != CREMA_OK) {
    LOG_ERROR("Could not open or find file %s: %s", path, local.message);
    *skip = 1;
    return CREMA_OK;
  }
  image img;
  image_color color = f->gray || f->label_map ? IMAGE_GRAY : IMAGE_COLOR;
  if (image_decode(v.data, v.size, color, path, &img, &local) != CREMA_OK) {
    LOG_ERROR("Could not decode %s", local.message);
    file_view_close(&v);
    *skip = 1;
    return CREMA_OK;
  }
  int resize = f->resize_width > 0 && f->resize_height > 0;
  crema_status st = CREMA_OK;
  if (f->label_map) {
    st = make_label_map(&img, f, err);
  } else if (resize) {
    image resized;
    st = image_resize(&img, f->resize_width, f->resize_height, &resized, err);
    if (st == CREMA_OK) {
      image_free(&img);
      img = resized;
    }
  }
  d->has_label = 1;
  d->label = e->label;
  if (st == CREMA_OK && encoding[0]) {
    unsigned char *bytes = NULL;
    size_t len = 0;
    d->has_encoded = d->encoded = 1;
    d->has_data = 1;
    if (!resize && !f->label_map && extension_matches(e->name, encoding)) {
      /* The file as it is (Caffe's ReadFileToDatum). */
      if ((bytes = crema_malloc(v.size ? v.size : 1, err))) {
        memcpy(bytes, v.data, v.size);
        len = v.size;
      } else {
        st = CREMA_ERR_NOMEM;
      }
    } else if (!strcmp(encoding, "png")) {
      st = image_encode_png(&img, &bytes, &len, err);
    } else if (!strcmp(encoding, "jpg") || !strcmp(encoding, "jpeg")) {
      st = image_encode_jpeg(&img, 95, &bytes, &len, err);
    } else {
      st = crema_fail(err, CREMA_ERR_UNSUPPORTED,
                      "%s: cannot encode as '%s' (crema encodes png and jpg)", path, encoding);
    }
    d->data.data = bytes;
    d->data.len = len;
  } else if (st == CREMA_OK) {
    st = datum_from_image(&img, e->label, d, err);
  }
  image_free(&img);
  file_view_close(&v);
  return st;
}

static crema_status store_record(lmdb_writer *w, int line_id, const list_entry *e,
                                 const Caffe__Datum *d, crema_error *err) {
  size_t key_len = strlen(e->name) + 16;
  char *key = crema_malloc(key_len, err);
  if (!key)
    return CREMA_ERR_NOMEM;
  snprintf(key, key_len, "%08d_%s", line_id, e->name);
  unsigned char *value;
  size_t value_len;
  crema_status st = datum_pack(d, &value, &value_len, err);
  if (st == CREMA_OK) {
    st = lmdb_writer_put(w, key, strlen(key), value, value_len, err);
    free(value);
  }
  free(key);
  return st;
}

static crema_status convert(const char *root, const char *list_path, const char *db_path,
                            convert_flags *f, crema_error *err) {
  if (!strcasecmp(f->backend, "leveldb"))
    return crema_fail(err, CREMA_ERR_UNSUPPORTED,
                      "LEVELDB is not supported: crema reads and writes LMDB only "
                      "(use --backend=lmdb and backend: LMDB in the net)");
  if (strcasecmp(f->backend, "lmdb"))
    return crema_fail(err, CREMA_ERR_INVALID, "unknown backend '%s' (use lmdb)", f->backend);
  image_list list = {0};
  crema_status st = read_list(list_path, &list, err);
  if (st != CREMA_OK) {
    list_free(&list);
    return st;
  }
  if (f->shuffle) {
    LOG_INFO("Shuffling data");
    shuffle_list(&list, (uint32_t)f->seed);
  }
  LOG_INFO("A total of %zu images.", list.n);
  if (f->encode_type[0] && !f->encoded) {
    LOG_INFO("encode_type specified, assuming encoded=true.");
    f->encoded = 1;
  }
  if (f->resize_width < 0)
    f->resize_width = 0;
  if (f->resize_height < 0)
    f->resize_height = 0;

  lmdb_writer *w;
  if ((st = lmdb_writer_create(db_path, &w, err)) != CREMA_OK) {
    list_free(&list);
    return st;
  }
  LOG_INFO("Opened lmdb %s", db_path);
  size_t root_len = strlen(root);
  size_t count = 0, skipped = 0, data_size = 0;
  int data_size_known = 0;
  for (size_t i = 0; st == CREMA_OK && i < list.n; i++) {
    const list_entry *e = &list.v[i];
    char encoding[32] = "";
    if (f->encoded) {
      const char *guess = f->encode_type;
      if (!guess[0]) {
        const char *dot = strrchr(e->name, '.');
        if (!dot)
          LOG_WARN("Failed to guess the encoding of '%s'", e->name);
        guess = dot ? dot + 1 : e->name;
      }
      snprintf(encoding, sizeof encoding, "%s", guess);
      lowercase(encoding);
    }
    size_t path_len = root_len + strlen(e->name) + 1;
    char *path = crema_malloc(path_len, err);
    if (!path) {
      st = CREMA_ERR_NOMEM;
      break;
    }
    snprintf(path, path_len, "%s%s", root, e->name);
    Caffe__Datum d;
    caffe__datum__init(&d);
    int skip;
    st = build_datum(path, e, encoding, f, &d, &skip, err);
    if (st == CREMA_OK && !skip && f->check_size && !d.encoded) {
      size_t size = (size_t)d.channels * d.height * d.width;
      if (!data_size_known) {
        data_size = size;
        data_size_known = 1;
      } else if (d.data.len != data_size) {
        st = crema_fail(err, CREMA_ERR_SHAPE,
                        "%s: incorrect data field size %zu (the first image has %zu; "
                        "--check_size)",
                        path, d.data.len, data_size);
      }
    }
    if (st == CREMA_OK && skip)
      skipped++;
    if (st == CREMA_OK && !skip)
      st = store_record(w, (int)i, e, &d, err);
    free(d.data.data);
    free(path);
    if (st == CREMA_OK && !skip && ++count % 1000 == 0)
      LOG_INFO("Processed %zu files.", count);
  }
  /* Caffe writes an empty database when no image could be read, which
   * only fails later, in training; that is kept behind --allow_empty. */
  if (st == CREMA_OK && count == 0 && !f->allow_empty)
    st = crema_fail(err, CREMA_ERR_INVALID,
                    "no record written: %s; no database created (--allow_empty writes an "
                    "empty one)",
                    list.n ? "every image of the list was skipped (unreadable or undecodable, "
                             "see above)"
                           : "the list names no image");
  if (st == CREMA_OK) {
    st = lmdb_writer_finish(w, err);
    if (st == CREMA_OK && count % 1000 != 0)
      LOG_INFO("Processed %zu files.", count);
    if (st == CREMA_OK && skipped)
      LOG_WARN("Skipped %zu of %zu images (unreadable or undecodable, see above).", skipped,
               list.n);
  } else {
    lmdb_writer_abort(w);
  }
  list_free(&list);
  return st;
}

int cmd_convert_imageset(int argc, char **argv) {
  convert_flags f = {0};
  f.backend = "lmdb";
  f.encode_type = "";
  const flag_spec specs[] = {
      {"gray", FLAG_BOOL, &f.gray, "treat images as grayscale ones"},
      {"shuffle", FLAG_BOOL, &f.shuffle,
       "randomly shuffle the order of images and their labels (seeded by --seed)"},
      {"seed", FLAG_INT, &f.seed, "seed of the shuffle (default 0)"},
      {"backend", FLAG_STRING, &f.backend, "the backend for storing the result (lmdb)"},
      {"resize_width", FLAG_INT, &f.resize_width, "width images are resized to"},
      {"resize_height", FLAG_INT, &f.resize_height, "height images are resized to"},
      {"check_size", FLAG_BOOL, &f.check_size, "check that all the datum have the same size"},
      {"encoded", FLAG_BOOL, &f.encoded, "store the encoded image in the datum"},
      {"encode_type", FLAG_STRING, &f.encode_type,
       "what type to encode the image as ('png', 'jpg'); implies --encoded"},
      {"label-map", FLAG_BOOL, &f.label_map,
       "the images are segmentation masks: store 1-channel 0/1 records"},
      {"allow_empty", FLAG_BOOL, &f.allow_empty,
       "write an empty database (exit 0, as Caffe) when no image could be read"},
  };
  const int nspecs = (int)(sizeof specs / sizeof specs[0]);
  crema_error err = {CREMA_OK, ""};
  flag_result res;
  if (flags_parse(argc, argv, specs, nspecs, &res, &err) != CREMA_OK)
    return cli_report("convert-imageset", &err);
  int rc = 0;
  if (res.help) {
    flags_print_usage(stdout, usage, description, specs, nspecs);
  } else if (res.npositional != 3) {
    fprintf(stderr,
            "crema convert-imageset: expected 3 arguments (ROOTFOLDER/ LISTFILE DB_NAME), got "
            "%d; see --help\n",
            res.npositional);
    rc = 2;
  } else if (convert(res.positional[0], res.positional[1], res.positional[2], &f, &err) !=
             CREMA_OK) {
    rc = cli_report("convert-imageset", &err);
  }
  flags_result_free(&res);
  return rc;
}
