/* Synthetic dermoscopy images with lesion masks, for demos, tests and
 * pre-training.  Every image is a pure function of (seed, number): the same
 * pair always gives the same pixels and the same encoded bytes, and image
 * number n of a set does not depend on how many images are generated.
 *
 * An image shows skin of a Fitzpatrick type (I-VI) under dermoscope
 * illumination with its dark circular vignette, one pigmented lesion (a
 * radial Fourier outline with noise and a fuzzy border; browns, black,
 * blue-grey veil, white regression, globules and dots, a reticular
 * network), and artefacts: hair crossing the lesion, ruler marks, ink marks,
 * coloured stickers, air bubbles, sensor noise and JPEG compression.  The
 * mask (0/255, one channel) holds the lesion only, at the half-opacity
 * level of its fuzzy border. */
#ifndef CREMA_LESION_SYNTH_H
#define CREMA_LESION_SYNTH_H

#include "core/error.h"
#include "io/image.h"
#include <stdint.h>

#define SYNTH_MIN_SIZE 16
#define SYNTH_MAX_SIZE 2048
/* ISIC identifiers have seven digits. */
#define SYNTH_MAX_NUMBER 9999999u
/* Bounds of the lesion's share of the image (mask pixels / all pixels). */
#define SYNTH_MIN_FRACTION 0.05
#define SYNTH_MAX_FRACTION 0.60

typedef enum synth_format { SYNTH_JPEG, SYNTH_PNG } synth_format;

typedef struct synth_sample {
  image rgb;        /* size x size x 3, before JPEG compression */
  image mask;       /* size x size x 1, 0 or 255 */
  int jpeg_quality; /* the quality the image is compressed at (artefacts) */
  int fitzpatrick;  /* skin type 1..6 */
} synth_sample;

/* The dermoscopic patterns of a labelled image (1 = drawn). */
typedef struct synth_patterns {
  int network;    /* reticular pigment network */
  int globules;   /* brown-black globules */
  int dots;       /* blue-grey dots (peppering) */
  int streaks;    /* radial streaks at the rim (pseudopods) */
  int veil;       /* blue-white veil */
  int regression; /* white scar-like regression areas */
} synth_patterns;

/* Diagnoses, numbered by their column in ISIC 2018's ground-truth CSV
 * (image,MEL,NV,BCC,AKIEC,BKL,DF,VASC). */
enum { SYNTH_MEL = 0, SYNTH_NV = 1, SYNTH_BKL = 4, SYNTH_NCLASSES = 7 };

/* ISIC's column name of a diagnosis ("MEL", ...). */
const char *synth_class_name(int diagnosis);

/* The diagnosis the patterns imply, after dermoscopy's pattern analysis
 * (simplified): a blue-white veil or streaks make a melanoma (MEL);
 * otherwise regression areas a benign keratosis (BKL); otherwise a nevus
 * (NV) by its network or globules. */
int synth_diagnosis(const synth_patterns *p);

/* Renders image number `number` of the set given by seed. */
crema_status synth_render(uint32_t seed, uint32_t number, int size, synth_sample *out,
                          crema_error *err);
void synth_sample_free(synth_sample *s);

/* Renders image number `number` of a labelled set: a diagnosis is drawn
 * first (MEL, NV and BKL alike often), then patterns that imply it, which
 * are drawn plainly enough to be told apart (*patterns receives them).
 * The lesion covers 35-55% of the image and there are no artefacts (hair,
 * ruler, ink, stickers, bubbles): the label is about the patterns.
 * Images of a labelled set differ from those of an unlabelled one. */
crema_status synth_render_labelled(uint32_t seed, uint32_t number, int size, synth_sample *out,
                                   synth_patterns *patterns, crema_error *err);

/* The image file's bytes: a JPEG at the sample's quality, or a PNG of the
 * image after a JPEG round trip at that quality (so both formats carry the
 * same compression artefacts).  *out is malloc'd. */
crema_status synth_encode(const synth_sample *s, synth_format format, unsigned char **out,
                          size_t *len, crema_error *err);

/* "ISIC_0001234" for number 1234; buf holds at least 13 bytes. */
void synth_id(uint32_t number, char *buf, size_t size);

/* Writes images first .. first+count-1 to dir (which must exist) as
 * ID.jpg or ID.png and ID_segmentation.png. */
crema_status synth_write_set(const char *dir, uint32_t seed, uint32_t first, uint32_t count,
                             int size, synth_format format, crema_error *err);

/* The same for a labelled set, and its labels: DIR/labels.csv in ISIC
 * 2018's ground-truth format (image,MEL,NV,BCC,AKIEC,BKL,DF,VASC, one-hot
 * 0.0/1.0), DIR/patterns.csv (image, the six patterns as 0/1, diagnosis)
 * and DIR/list.txt for convert-imageset ("ID.jpg COLUMN", the diagnosis's
 * column index). */
crema_status synth_write_labelled_set(const char *dir, uint32_t seed, uint32_t first,
                                      uint32_t count, int size, synth_format format,
                                      crema_error *err);

#endif
