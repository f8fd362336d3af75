#include "config.h"

#include <limits.h>
#include <math.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h>
#include <png.h>

#include "core/memcap.h"
#include "io/file.h"
#include "io/image.h"

/* Files larger than this are not images crema reads (a 2^28-pixel RGBA PNG
 * compresses far below it). */
#define IMAGE_MAX_FILE_SIZE ((size_t)1 << 31)

image_format image_sniff(const unsigned char *data, size_t len) {
  static const unsigned char png_magic[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (len >= 8 && !memcmp(data, png_magic, 8))
    return IMAGE_FORMAT_PNG;
  if (len >= 3 && data[0] == 0xff && data[1] == 0xd8 && data[2] == 0xff)
    return IMAGE_FORMAT_JPEG;
  return IMAGE_FORMAT_UNKNOWN;
}

const char *image_format_name(image_format f) {
  switch (f) {
    case IMAGE_FORMAT_PNG: return "PNG";
    case IMAGE_FORMAT_JPEG: return "JPEG";
    case IMAGE_FORMAT_UNKNOWN: break;
  }
  return "unknown";
}

static crema_status check_dims(uint64_t width, uint64_t height, const char *what,
                               crema_error *err) {
  if (width == 0 || height == 0)
    return crema_fail(err, CREMA_ERR_INVALID, "%s: image has no pixels (%llux%llu)", what,
                      (unsigned long long)width, (unsigned long long)height);
  if (width > INT32_MAX || height > INT32_MAX || width * height > IMAGE_MAX_PIXELS)
    return crema_fail(err, CREMA_ERR_INVALID,
                      "%s: image of %llux%llu pixels exceeds the limit of %zu pixels", what,
                      (unsigned long long)width, (unsigned long long)height, IMAGE_MAX_PIXELS);
  /* Decoding holds up to 4 bytes a pixel (RGBA); refused before any
   * buffer when that is more than the memory cap or what is free. */
  char desc[512];
  snprintf(desc, sizeof desc, "%s: a %llux%llu image", what, (unsigned long long)width,
           (unsigned long long)height);
  return mem_check((size_t)(width * height * 4), desc, err);
}

crema_status image_alloc(image *img, int width, int height, int channels, crema_error *err) {
  memset(img, 0, sizeof *img);
  if (channels != 1 && channels != 3 && channels != 4)
    return crema_fail(err, CREMA_ERR_INVALID, "images have 1, 3 or 4 channels, not %d",
                      channels);
  if (width < 0 || height < 0)
    return crema_fail(err, CREMA_ERR_INVALID, "negative image size %dx%d", width, height);
  CREMA_TRY(check_dims((uint64_t)width, (uint64_t)height, "image", err));
  size_t n = (size_t)width * (size_t)height * (size_t)channels;
  img->pixels = crema_calloc(n, 1, err);
  if (!img->pixels)
    return CREMA_ERR_NOMEM;
  img->width = width;
  img->height = height;
  img->channels = channels;
  return CREMA_OK;
}

void image_free(image *img) {
  if (!img)
    return;
  free(img->pixels);
  memset(img, 0, sizeof *img);
}

/* ---- PNG decoding ---------------------------------------------------- */

typedef struct png_source {
  const unsigned char *data;
  size_t len, pos;
} png_source;

typedef struct png_errors {
  char message[256];
} png_errors;

static void png_read_memory(png_structp png, png_bytep out, size_t n) {
  png_source *s = png_get_io_ptr(png);
  if (n > s->len - s->pos)
    png_error(png, "truncated PNG data (unexpected end of file)");
  memcpy(out, s->data + s->pos, n);
  s->pos += n;
}

static void png_on_error(png_structp png, png_const_charp msg) {
  png_errors *e = png_get_error_ptr(png);
  snprintf(e->message, sizeof e->message, "%s", msg);
  png_longjmp(png, 1);
}

static void png_on_warning(png_structp png, png_const_charp msg) {
  (void)png;
  (void)msg;
}

/* Channels cv::IMREAD_UNCHANGED gives for a PNG colour type. */
static int png_native_channels(int color_type, int has_trns) {
  switch (color_type) {
    case PNG_COLOR_TYPE_RGB:
    case PNG_COLOR_TYPE_PALETTE: return has_trns ? 4 : 3;
    case PNG_COLOR_TYPE_GRAY_ALPHA:
    case PNG_COLOR_TYPE_RGB_ALPHA: return 4;
    default: return 1;
  }
}

static int target_channels(image_color color, int native) {
  return color == IMAGE_COLOR ? 3 : color == IMAGE_GRAY ? 1 : native;
}

static crema_status png_decode(const unsigned char *data, size_t len, image_color color,
                               const char *what, image *out, crema_error *err) {
  png_errors errors = {{0}};
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &errors, png_on_error,
                                           png_on_warning);
  if (!png)
    return crema_fail(err, CREMA_ERR_NOMEM, "%s: out of memory for the PNG decoder", what);
  png_infop info = png_create_info_struct(png);
  if (!info) {
    png_destroy_read_struct(&png, NULL, NULL);
    return crema_fail(err, CREMA_ERR_NOMEM, "%s: out of memory for the PNG decoder", what);
  }
  unsigned char *volatile pixels = NULL;
  png_bytep *volatile rows = NULL;
  volatile crema_status status = CREMA_ERR_INVALID;
  volatile int reported = 0; /* err already holds the message */
  if (setjmp(png_jmpbuf(png))) {
    free(pixels);
    free(rows);
    png_destroy_read_struct(&png, &info, NULL);
    if (!reported)
      crema_fail(err, CREMA_ERR_INVALID, "%s: corrupt PNG: %s", what, errors.message);
    return status;
  }
  /* IHDR is the first chunk: its size is checked before libpng reads on
   * (a header claiming billions of pixels needs no more data to reject). */
  if (len >= 24) {
    uint64_t w = (uint64_t)data[16] << 24 | (uint64_t)data[17] << 16 | data[18] << 8 | data[19];
    uint64_t h = (uint64_t)data[20] << 24 | (uint64_t)data[21] << 16 | data[22] << 8 | data[23];
    if (w && h && check_dims(w, h, what, err) != CREMA_OK) {
      status = CREMA_ERR_INVALID;
      reported = 1;
      png_longjmp(png, 1);
    }
  }
  /* libpng reads text, ICC profile and similar chunks whole, allocating
   * and clearing their claimed length first: a 57-byte file claiming a
   * 2 GB zTXt took 2 GB and seconds (found by tests/fuzz/fuzz_png).  None
   * of them changes the pixels (cv::imdecode ignores them too): skipped. */
  static const png_byte ignored[] = "zTXt\0iTXt\0tEXt\0iCCP\0sPLT\0eXIf\0pCAL\0sCAL\0";
  png_set_keep_unknown_chunks(png, PNG_HANDLE_CHUNK_NEVER, ignored, 8);
  png_source src = {data, len, 0};
  png_set_read_fn(png, &src, png_read_memory);
  png_read_info(png, info);
  png_uint_32 width, height;
  int depth, color_type, interlace;
  png_get_IHDR(png, info, &width, &height, &depth, &color_type, &interlace, NULL, NULL);
  if (check_dims(width, height, what, err) != CREMA_OK) {
    status = CREMA_ERR_INVALID;
    reported = 1;
    png_longjmp(png, 1);
  }
  int has_trns = png_get_valid(png, info, PNG_INFO_tRNS) != 0;
  int is_color = (color_type & PNG_COLOR_MASK_COLOR) != 0;
  int channels = target_channels(color, png_native_channels(color_type, has_trns));

  /* The transformations OpenCV's PNG decoder asks of libpng. */
  if (depth == 16)
    png_set_strip_16(png);
  if (channels < 4)
    png_set_strip_alpha(png);
  else
    png_set_tRNS_to_alpha(png);
  if (color_type == PNG_COLOR_TYPE_PALETTE)
    png_set_palette_to_rgb(png);
  if (!is_color && depth < 8)
    png_set_expand_gray_1_2_4_to_8(png);
  if (is_color && channels == 1)
    png_set_rgb_to_gray_fixed(png, 1, 29900, 58700);
  else if (!is_color && channels >= 3)
    png_set_gray_to_rgb(png);
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
  size_t row_bytes = (size_t)width * (size_t)channels;
  if (png_get_channels(png, info) != channels || png_get_bit_depth(png, info) != 8 ||
      png_get_rowbytes(png, info) != row_bytes)
    png_error(png, "unsupported PNG pixel layout");

  pixels = malloc(row_bytes * height);
  rows = malloc(sizeof(png_bytep) * height);
  if (!pixels || !rows) {
    status = crema_fail(err, CREMA_ERR_NOMEM, "%s: out of memory for a %ux%u image", what,
                        (unsigned)width, (unsigned)height);
    reported = 1;
    png_longjmp(png, 1);
  }
  for (png_uint_32 y = 0; y < height; y++)
    rows[y] = pixels + y * row_bytes;
  png_read_image(png, rows);
  png_read_end(png, NULL);
  free(rows);
  png_destroy_read_struct(&png, &info, NULL);
  out->width = (int)width;
  out->height = (int)height;
  out->channels = channels;
  out->pixels = pixels;
  return CREMA_OK;
}

/* ---- JPEG decoding --------------------------------------------------- */

typedef struct jpeg_errors {
  struct jpeg_error_mgr mgr;
  jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
  int truncated;
} jpeg_errors;

static void jpeg_on_error(j_common_ptr cinfo) {
  jpeg_errors *e = (jpeg_errors *)cinfo->err;
  cinfo->err->format_message(cinfo, e->message);
  longjmp(e->jump, 1);
}

/* Warnings are silent, except that a premature end of data (libjpeg pads
 * the image with gray) makes the decode fail. */
static void jpeg_on_message(j_common_ptr cinfo, int level) {
  jpeg_errors *e = (jpeg_errors *)cinfo->err;
  if (level < 0 && cinfo->err->msg_code == JWRN_JPEG_EOF)
    e->truncated = 1;
}

static void jpeg_silent(j_common_ptr cinfo) { (void)cinfo; }

/* OpenCV's CMYK (as stored by Adobe, inverted) to RGB. */
static void cmyk_to_rgb(const unsigned char *cmyk, int n, unsigned char *rgb) {
  for (int i = 0; i < n; i++, cmyk += 4, rgb += 3) {
    int k = cmyk[3];
    rgb[0] = (unsigned char)(k - (((255 - cmyk[0]) * k) >> 8));
    rgb[1] = (unsigned char)(k - (((255 - cmyk[1]) * k) >> 8));
    rgb[2] = (unsigned char)(k - (((255 - cmyk[2]) * k) >> 8));
  }
}

/* OpenCV's fixed-point RGB to gray (cvtColor, 14-bit coefficients). */
static unsigned char rgb_to_gray(int r, int g, int b) {
  return (unsigned char)((r * 4899 + g * 9617 + b * 1868 + (1 << 13)) >> 14);
}

static crema_status jpeg_decode(const unsigned char *data, size_t len, image_color color,
                                const char *what, image *out, crema_error *err) {
  struct jpeg_decompress_struct cinfo;
  jpeg_errors errors;
  memset(&errors, 0, sizeof errors);
  cinfo.err = jpeg_std_error(&errors.mgr);
  errors.mgr.error_exit = jpeg_on_error;
  errors.mgr.emit_message = jpeg_on_message;
  errors.mgr.output_message = jpeg_silent;
  unsigned char *volatile pixels = NULL;
  unsigned char *volatile cmyk_row = NULL;
  volatile crema_status status = CREMA_ERR_INVALID;
  volatile int reported = 0; /* err already holds the message */
  if (setjmp(errors.jump)) {
    jpeg_destroy_decompress(&cinfo);
    free(pixels);
    free(cmyk_row);
    if (!reported)
      crema_fail(err, CREMA_ERR_INVALID, "%s: corrupt JPEG: %s", what, errors.message);
    return status;
  }
  jpeg_create_decompress(&cinfo);
  jpeg_mem_src(&cinfo, data, (unsigned long)len);
  jpeg_read_header(&cinfo, TRUE);
  if (check_dims(cinfo.image_width, cinfo.image_height, what, err) != CREMA_OK) {
    status = CREMA_ERR_INVALID;
    reported = 1;
    longjmp(errors.jump, 1);
  }
  int channels = target_channels(color, cinfo.num_components > 1 ? 3 : 1);
  int cmyk = cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK;
  cinfo.out_color_space = cmyk ? JCS_CMYK : channels == 3 ? JCS_RGB : JCS_GRAYSCALE;
  jpeg_start_decompress(&cinfo);
  int expected = cmyk ? 4 : channels;
  if (cinfo.output_components != expected) {
    snprintf(errors.message, sizeof errors.message, "unexpected %d output components",
             cinfo.output_components);
    longjmp(errors.jump, 1);
  }
  size_t w = cinfo.output_width, h = cinfo.output_height;
  pixels = malloc(w * h * (size_t)channels);
  if (cmyk)
    cmyk_row = malloc(w * 4);
  if (!pixels || (cmyk && !cmyk_row)) {
    status = crema_fail(err, CREMA_ERR_NOMEM, "%s: out of memory for a %zux%zu image", what, w,
                        h);
    reported = 1;
    longjmp(errors.jump, 1);
  }
  while (cinfo.output_scanline < cinfo.output_height) {
    unsigned char *dst = pixels + (size_t)cinfo.output_scanline * w * (size_t)channels;
    JSAMPROW row = cmyk ? cmyk_row : dst;
    if (jpeg_read_scanlines(&cinfo, &row, 1) != 1)
      break;
    if (!cmyk)
      continue;
    if (channels == 3) {
      cmyk_to_rgb(cmyk_row, (int)w, dst);
    } else {
      unsigned char rgb[3];
      for (size_t x = 0; x < w; x++) {
        cmyk_to_rgb(cmyk_row + 4 * x, 1, rgb);
        dst[x] = rgb_to_gray(rgb[0], rgb[1], rgb[2]);
      }
    }
  }
  if (!errors.truncated)
    jpeg_finish_decompress(&cinfo);
  jpeg_destroy_decompress(&cinfo);
  free(cmyk_row);
  if (errors.truncated) {
    free(pixels);
    return crema_fail(err, CREMA_ERR_INVALID,
                      "%s: corrupt JPEG: truncated data (premature end of file)", what);
  }
  out->width = (int)w;
  out->height = (int)h;
  out->channels = channels;
  out->pixels = pixels;
  return CREMA_OK;
}

crema_status image_decode(const unsigned char *data, size_t len, image_color color,
                          const char *what, image *out, crema_error *err) {
  memset(out, 0, sizeof *out);
  switch (image_sniff(data, len)) {
    case IMAGE_FORMAT_PNG: return png_decode(data, len, color, what, out, err);
    case IMAGE_FORMAT_JPEG: return jpeg_decode(data, len, color, what, out, err);
    case IMAGE_FORMAT_UNKNOWN: break;
  }
  if (len == 0)
    return crema_fail(err, CREMA_ERR_INVALID, "%s: empty image data", what);
  return crema_fail(err, CREMA_ERR_INVALID,
                    "%s: not a PNG or JPEG image (first bytes %02x %02x %02x %02x)", what,
                    data[0], len > 1 ? data[1] : 0, len > 2 ? data[2] : 0,
                    len > 3 ? data[3] : 0);
}

crema_status image_read_file(const char *path, image_color color, image *out, crema_error *err) {
  file_view v;
  memset(out, 0, sizeof *out);
  CREMA_TRY(file_view_open(path, IMAGE_MAX_FILE_SIZE, &v, err));
  crema_status st = image_decode(v.data, v.size, color, path, out, err);
  file_view_close(&v);
  return st;
}

/* ---- Colour conversion ----------------------------------------------- */

crema_status image_convert(const image *src, image_color color, image *dst, crema_error *err) {
  int channels = target_channels(color, src->channels);
  CREMA_TRY(image_alloc(dst, src->width, src->height, channels, err));
  size_t n = (size_t)src->width * (size_t)src->height;
  const unsigned char *s = src->pixels;
  unsigned char *d = dst->pixels;
  for (size_t i = 0; i < n; i++, s += src->channels, d += channels) {
    if (src->channels == 1) {
      for (int c = 0; c < channels; c++)
        d[c] = s[0];
    } else if (channels == 1) {
      d[0] = rgb_to_gray(s[0], s[1], s[2]);
    } else {
      for (int c = 0; c < channels; c++)
        d[c] = c < 3 ? s[c] : 255;
    }
  }
  return CREMA_OK;
}

/* ---- Bilinear resize (cv::resize, INTER_LINEAR, 8-bit) --------------- */

/* OpenCV's fixed-point interpolation: weights are scaled by 2^11 and the
 * two passes together by 2^22. */
#define RESIZE_COEF_BITS 11
#define RESIZE_COEF_SCALE (1 << RESIZE_COEF_BITS)

static short saturate_short(float v) {
  long r = lrintf(v);
  return (short)(r < SHRT_MIN ? SHRT_MIN : r > SHRT_MAX ? SHRT_MAX : r);
}

static unsigned char saturate_u8(int v) {
  return (unsigned char)(v < 0 ? 0 : v > 255 ? 255 : v);
}

static short saturate_s16(int v) {
  return (short)(v < SHRT_MIN ? SHRT_MIN : v > SHRT_MAX ? SHRT_MAX : v);
}

/* The horizontal pass for one source row: out[dx*cn + k] in units of
 * 2^11. */
static void resize_row(const unsigned char *row, int sw, int cn, int dw, const int *xofs,
                       const short *alpha, int *out) {
  for (int dx = 0; dx < dw; dx++) {
    int sx = xofs[dx];
    const unsigned char *p = row + (size_t)sx * cn;
    for (int k = 0; k < cn; k++) {
      int v = p[k] * alpha[2 * dx];
      if (sx + 1 < sw)
        v += p[cn + k] * alpha[2 * dx + 1];
      out[dx * cn + k] = v;
    }
  }
}

/* OpenCV's SIMD vertical pass (which covers most of each row on x86 and
 * ARM) drops 4 low bits and uses 16-bit high multiplies; its scalar tail
 * rounds the exact sum.  Both are reproduced so the bytes match. */
static unsigned char vresize_simd(int s0, int s1, short b0, short b1) {
  int a = (saturate_s16(s0 >> 4) * b0) >> 16;
  int b = (saturate_s16(s1 >> 4) * b1) >> 16;
  return saturate_u8((saturate_s16(a + b) + 2) >> 2);
}

static unsigned char vresize_exact(int s0, int s1, short b0, short b1) {
  return saturate_u8((s0 * b0 + s1 * b1 + (1 << (2 * RESIZE_COEF_BITS - 1))) >>
                     (2 * RESIZE_COEF_BITS));
}

static void resize_vertical(const int *r0, const int *r1, short b0, short b1, int width,
                            unsigned char *dst) {
  int x = 0;
  for (; x <= width - 16; x += 16)
    for (int i = x; i < x + 16; i++)
      dst[i] = vresize_simd(r0[i], r1[i], b0, b1);
  for (; x < width - 8; x += 8)
    for (int i = x; i < x + 8; i++)
      dst[i] = vresize_simd(r0[i], r1[i], b0, b1);
  for (; x < width; x++)
    dst[x] = vresize_exact(r0[x], r1[x], b0, b1);
}

static int clip_row(int y, int h) { return y < 0 ? 0 : y >= h ? h - 1 : y; }

crema_status image_resize(const image *src, int width, int height, image *dst,
                          crema_error *err) {
  memset(dst, 0, sizeof *dst);
  if (!src->pixels || src->width <= 0 || src->height <= 0)
    return crema_fail(err, CREMA_ERR_INVALID, "cannot resize an empty image");
  if (width <= 0 || height <= 0)
    return crema_fail(err, CREMA_ERR_INVALID, "cannot resize to %dx%d", width, height);
  int sw = src->width, sh = src->height, cn = src->channels;
  CREMA_TRY(image_alloc(dst, width, height, cn, err));
  int *xofs = crema_malloc(sizeof(int) * (size_t)width, err);
  short *alpha = crema_malloc(sizeof(short) * 2 * (size_t)width, err);
  int *rows = crema_malloc(sizeof(int) * 2 * (size_t)width * (size_t)cn, err);
  if (!xofs || !alpha || !rows) {
    free(xofs);
    free(alpha);
    free(rows);
    image_free(dst);
    return CREMA_ERR_NOMEM;
  }
  /* The scale is formed as OpenCV forms it (the inverse of dst/src) so the
   * source coordinates round identically. */
  double scale_x = 1.0 / ((double)width / sw), scale_y = 1.0 / ((double)height / sh);
  for (int dx = 0; dx < width; dx++) {
    float fx = (float)((dx + 0.5) * scale_x - 0.5);
    int sx = (int)floorf(fx);
    fx -= (float)sx;
    if (sx < 0)
      fx = 0, sx = 0;
    if (sx >= sw - 1)
      fx = 0, sx = sw - 1;
    xofs[dx] = sx;
    alpha[2 * dx] = saturate_short((1.f - fx) * RESIZE_COEF_SCALE);
    alpha[2 * dx + 1] = saturate_short(fx * RESIZE_COEF_SCALE);
  }
  int *row0 = rows, *row1 = rows + (size_t)width * cn;
  int have0 = -1, have1 = -1;
  size_t src_stride = (size_t)sw * cn, dst_stride = (size_t)width * cn;
  for (int dy = 0; dy < height; dy++) {
    float fy = (float)((dy + 0.5) * scale_y - 0.5);
    int sy = (int)floorf(fy);
    fy -= (float)sy;
    short b0 = saturate_short((1.f - fy) * RESIZE_COEF_SCALE);
    short b1 = saturate_short(fy * RESIZE_COEF_SCALE);
    int y0 = clip_row(sy, sh), y1 = clip_row(sy + 1, sh);
    if (have0 != y0) {
      if (have1 == y0) {
        int *t = row0;
        row0 = row1;
        row1 = t;
        have0 = y0;
        have1 = -1;
      } else {
        resize_row(src->pixels + (size_t)y0 * src_stride, sw, cn, width, xofs, alpha, row0);
        have0 = y0;
      }
    }
    if (have1 != y1) {
      resize_row(src->pixels + (size_t)y1 * src_stride, sw, cn, width, xofs, alpha, row1);
      have1 = y1;
    }
    resize_vertical(row0, row1, b0, b1, width * cn, dst->pixels + (size_t)dy * dst_stride);
  }
  free(xofs);
  free(alpha);
  free(rows);
  return CREMA_OK;
}

/* ---- Encoding -------------------------------------------------------- */

typedef struct byte_buffer {
  unsigned char *data;
  size_t len, cap;
  int failed;
} byte_buffer;

static void png_write_memory(png_structp png, png_bytep data, size_t n) {
  byte_buffer *b = png_get_io_ptr(png);
  if (b->len + n > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + n)
      cap *= 2;
    unsigned char *p = realloc(b->data, cap);
    if (!p) {
      b->failed = 1;
      png_error(png, "out of memory");
    }
    b->data = p;
    b->cap = cap;
  }
  memcpy(b->data + b->len, data, n);
  b->len += n;
}

static void png_flush_memory(png_structp png) { (void)png; }

static crema_status check_encodable(const image *img, int max_channels, const char *format,
                                    crema_error *err) {
  if (!img->pixels || img->width <= 0 || img->height <= 0)
    return crema_fail(err, CREMA_ERR_INVALID, "cannot encode an empty image as %s", format);
  if (img->channels != 1 && img->channels != 3 && !(img->channels == 4 && max_channels == 4))
    return crema_fail(err, CREMA_ERR_INVALID, "cannot encode a %d-channel image as %s",
                      img->channels, format);
  return CREMA_OK;
}

crema_status image_encode_png(const image *img, unsigned char **out, size_t *len,
                              crema_error *err) {
  CREMA_TRY(check_encodable(img, 4, "PNG", err));
  png_errors errors = {{0}};
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &errors, png_on_error,
                                            png_on_warning);
  png_infop info = png ? png_create_info_struct(png) : NULL;
  if (!info) {
    png_destroy_write_struct(&png, NULL);
    return crema_fail(err, CREMA_ERR_NOMEM, "out of memory for the PNG encoder");
  }
  byte_buffer buf = {0};
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    free(buf.data);
    return crema_fail(err, buf.failed ? CREMA_ERR_NOMEM : CREMA_ERR_INVALID,
                      "PNG encoding failed: %s", errors.message);
  }
  int type = img->channels == 1   ? PNG_COLOR_TYPE_GRAY
             : img->channels == 3 ? PNG_COLOR_TYPE_RGB
                                  : PNG_COLOR_TYPE_RGB_ALPHA;
  png_set_write_fn(png, &buf, png_write_memory, png_flush_memory);
  png_set_compression_level(png, 3);
  png_set_IHDR(png, info, (png_uint_32)img->width, (png_uint_32)img->height, 8, type,
               PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  size_t stride = (size_t)img->width * img->channels;
  for (int y = 0; y < img->height; y++)
    png_write_row(png, img->pixels + (size_t)y * stride);
  png_write_end(png, NULL);
  png_destroy_write_struct(&png, &info);
  *out = buf.data;
  *len = buf.len;
  return CREMA_OK;
}

crema_status image_encode_jpeg(const image *img, int quality, unsigned char **out, size_t *len,
                               crema_error *err) {
  CREMA_TRY(check_encodable(img, 3, "JPEG", err));
  if (quality < 1 || quality > 100)
    return crema_fail(err, CREMA_ERR_INVALID, "JPEG quality must be 1..100, not %d", quality);
  struct jpeg_compress_struct cinfo;
  jpeg_errors errors;
  memset(&errors, 0, sizeof errors);
  cinfo.err = jpeg_std_error(&errors.mgr);
  errors.mgr.error_exit = jpeg_on_error;
  errors.mgr.output_message = jpeg_silent;
  unsigned char *volatile mem = NULL;
  unsigned long mem_len = 0;
  if (setjmp(errors.jump)) {
    jpeg_destroy_compress(&cinfo);
    free(mem);
    return crema_fail(err, CREMA_ERR_INVALID, "JPEG encoding failed: %s", errors.message);
  }
  jpeg_create_compress(&cinfo);
  unsigned char *dest = NULL;
  jpeg_mem_dest(&cinfo, &dest, &mem_len);
  cinfo.image_width = (JDIMENSION)img->width;
  cinfo.image_height = (JDIMENSION)img->height;
  cinfo.input_components = img->channels;
  cinfo.in_color_space = img->channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_set_defaults(&cinfo);
  jpeg_set_quality(&cinfo, quality, TRUE);
  jpeg_start_compress(&cinfo, TRUE);
  size_t stride = (size_t)img->width * img->channels;
  while (cinfo.next_scanline < cinfo.image_height) {
    JSAMPROW row = img->pixels + (size_t)cinfo.next_scanline * stride;
    jpeg_write_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_compress(&cinfo);
  mem = dest;
  jpeg_destroy_compress(&cinfo);
  *out = mem;
  *len = mem_len;
  return CREMA_OK;
}

crema_status image_write_file(const char *path, const image *img, crema_error *err) {
  unsigned char *data = NULL;
  size_t len = 0;
  crema_status st;
  if (path_has_suffix(path, ".png"))
    st = image_encode_png(img, &data, &len, err);
  else if (path_has_suffix(path, ".jpg") || path_has_suffix(path, ".jpeg"))
    st = image_encode_jpeg(img, 95, &data, &len, err);
  else
    return crema_fail(err, CREMA_ERR_INVALID,
                      "%s: cannot tell the image format (use .png, .jpg or .jpeg)", path);
  if (st != CREMA_OK) {
    crema_error_prefix(err, "%s: ", path);
    return st;
  }
  st = file_write_atomic(path, data, len, err);
  free(data);
  return st;
}

/* ---- Caffe layout ---------------------------------------------------- */

/* OpenCV keeps colour as B,G,R(,A): plane c of Caffe's layout is file
 * channel 2 - c for the three colour planes. */
static int opencv_channel(int channels, int c) { return channels >= 3 && c < 3 ? 2 - c : c; }

void image_to_chw_bgr(const image *img, unsigned char *out) {
  size_t plane = (size_t)img->width * (size_t)img->height;
  for (int c = 0; c < img->channels; c++) {
    const unsigned char *s = img->pixels + opencv_channel(img->channels, c);
    unsigned char *d = out + (size_t)c * plane;
    for (size_t i = 0; i < plane; i++, s += img->channels)
      d[i] = *s;
  }
}

crema_status image_to_caffe(const image *img, const float *mean, int nmean, float scale,
                            float *out, crema_error *err) {
  if (mean && nmean != 1 && nmean != img->channels)
    return crema_fail(err, CREMA_ERR_INVALID,
                      "%d mean values for a %d-channel image: give 1 or one per channel",
                      nmean, img->channels);
  size_t plane = (size_t)img->width * (size_t)img->height;
  for (int c = 0; c < img->channels; c++) {
    const unsigned char *s = img->pixels + opencv_channel(img->channels, c);
    float m = mean ? mean[nmean == 1 ? 0 : c] : 0.f;
    float *d = out + (size_t)c * plane;
    for (size_t i = 0; i < plane; i++, s += img->channels)
      d[i] = mean ? ((float)*s - m) * scale : (float)*s * scale;
  }
  return CREMA_OK;
}
