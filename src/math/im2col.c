#include "config.h"

#include <stddef.h>
#include <string.h>

#include "math/im2col.h"

void im2col_out_size(im2col_shape *s) {
  long long ext_h = (long long)s->dilation_h * (s->kernel_h - 1) + 1;
  long long ext_w = (long long)s->dilation_w * (s->kernel_w - 1) + 1;
  /* C division truncates toward zero, as in Caffe's formula. */
  long long oh = ((long long)s->height + 2LL * s->pad_h - ext_h) / s->stride_h + 1;
  long long ow = ((long long)s->width + 2LL * s->pad_w - ext_w) / s->stride_w + 1;
  s->out_h = oh > 0 && oh <= 0x7fffffff ? (int)oh : 0;
  s->out_w = ow > 0 && ow <= 0x7fffffff ? (int)ow : 0;
}

/* Output columns [*lo, *hi) whose input column off + ow * stride lies inside
 * [0, width); every other output column reads padding. */
static void valid_columns(int off, int stride, int width, int out_w, int *lo, int *hi) {
  int a = 0, b = out_w;
  if (off < 0)
    a = (-off + stride - 1) / stride;
  /* Last ow with off + ow * stride <= width - 1. */
  long long last = width - 1 - (long long)off;
  if (last < 0)
    b = 0;
  else if (last / stride + 1 < b)
    b = (int)(last / stride + 1);
  if (a > b)
    a = b;
  *lo = a;
  *hi = b;
}

void math_im2col(const im2col_shape *s, const float *restrict im, float *restrict col) {
  math_im2col_rows(s, im, 0, s->out_h, col);
}

void math_im2col_rows(const im2col_shape *s, const float *restrict im, int oh0, int oh1,
                      float *restrict col) {
  const int out_w = s->out_w, height = s->height, width = s->width;
  const int sh = s->stride_h, sw = s->stride_w;
  const size_t plane = (size_t)height * width;
  for (int c = 0; c < s->channels; c++) {
    const float *restrict src = im + (size_t)c * plane;
    for (int kh = 0; kh < s->kernel_h; kh++) {
      for (int kw = 0; kw < s->kernel_w; kw++) {
        const int off_w = kw * s->dilation_w - s->pad_w;
        int lo, hi;
        valid_columns(off_w, sw, width, out_w, &lo, &hi);
        int ih = kh * s->dilation_h - s->pad_h + oh0 * sh;
        for (int oh = oh0; oh < oh1; oh++, ih += sh, col += out_w) {
          if ((unsigned)ih >= (unsigned)height) {
            memset(col, 0, (size_t)out_w * sizeof(float));
            continue;
          }
          const float *restrict row = src + (size_t)ih * width;
          for (int ow = 0; ow < lo; ow++)
            col[ow] = 0.0f;
          if (sw == 1 && hi > lo)
            memcpy(col + lo, row + off_w + lo, (size_t)(hi - lo) * sizeof(float));
          else
            for (int ow = lo; ow < hi; ow++)
              col[ow] = row[off_w + ow * sw];
          for (int ow = hi; ow < out_w; ow++)
            col[ow] = 0.0f;
        }
      }
    }
  }
}

void math_col2im(const im2col_shape *s, const float *restrict col, float *restrict im) {
  memset(im, 0, (size_t)s->height * s->width * (size_t)s->channels * sizeof(float));
  math_col2im_rows_add(s, col, 0, s->out_h, im);
}

void math_col2im_rows_add(const im2col_shape *s, const float *restrict col, int oh0, int oh1,
                          float *restrict im) {
  const int out_w = s->out_w, height = s->height, width = s->width;
  const int sh = s->stride_h, sw = s->stride_w;
  const size_t plane = (size_t)height * width;
  for (int c = 0; c < s->channels; c++) {
    float *restrict dst = im + (size_t)c * plane;
    for (int kh = 0; kh < s->kernel_h; kh++) {
      for (int kw = 0; kw < s->kernel_w; kw++) {
        const int off_w = kw * s->dilation_w - s->pad_w;
        int lo, hi;
        valid_columns(off_w, sw, width, out_w, &lo, &hi);
        int ih = kh * s->dilation_h - s->pad_h + oh0 * sh;
        for (int oh = oh0; oh < oh1; oh++, ih += sh, col += out_w) {
          if ((unsigned)ih >= (unsigned)height || hi <= lo)
            continue;
          float *restrict row = dst + (size_t)ih * width + off_w + (ptrdiff_t)lo * sw;
          const float *restrict src = col + lo;
          if (sw == 1)
            for (int i = 0; i < hi - lo; i++)
              row[i] += src[i];
          else
            for (int i = 0; i < hi - lo; i++)
              row[(ptrdiff_t)i * sw] += src[i];
        }
      }
    }
  }
}
