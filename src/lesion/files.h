/* Folders of ISIC-style files: ID.jpg (or .jpeg, .png) images beside
 * ID_segmentation.png masks. */
#ifndef CREMA_LESION_FILES_H
#define CREMA_LESION_FILES_H

#include <stddef.h>

#include "core/error.h"

typedef struct lesion_names {
  char **v;
  size_t n;
} lesion_names;

/* The regular files of dir (not hidden ones, not subfolders), by name in
 * byte order, as names relative to dir. */
crema_status lesion_list_dir(const char *dir, lesion_names *out, crema_error *err);
void lesion_names_free(lesion_names *names);

/* 1 if the name ends in .jpg, .jpeg or .png (any case). */
int lesion_has_image_extension(const char *name);
/* 1 for names of files that accompany images rather than being ones:
 * ISIC masks and superpixels (ID_segmentation.png, ID_superpixels.png) and
 * what crema segment writes (ID_border.png, ID_lesion.png, ID_overlay.png). */
int lesion_is_companion_name(const char *name);

/* The image's ID: its file name without folders and extension (malloc'd). */
char *lesion_image_id(const char *path, crema_error *err);
/* dir + "/" + name, or name alone when dir is NULL or empty (malloc'd). */
char *lesion_path_join(const char *dir, const char *name, crema_error *err);
/* Creates dir unless it already is a folder. */
crema_status lesion_make_dir(const char *dir, crema_error *err);

#endif
