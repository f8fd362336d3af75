/* Caffe's im2col/col2im for 2-D images with padding, stride and dilation.
 *
 * The column matrix has (channels * kernel_h * kernel_w) rows, ordered
 * channel-major then kernel row then kernel column, and out_h * out_w
 * columns, where out = (in + 2 * pad - (dilation * (kernel - 1) + 1)) /
 * stride + 1.  Positions in the padding read as zero. */
#ifndef CREMA_MATH_IM2COL_H
#define CREMA_MATH_IM2COL_H

/* Geometry of one image as the column transform sees it. */
typedef struct im2col_shape {
  int channels, height, width;
  int kernel_h, kernel_w;
  int pad_h, pad_w;
  int stride_h, stride_w;
  int dilation_h, dilation_w;
  int out_h, out_w;
} im2col_shape;

/* Fills out_h and out_w from the other fields (may be <= 0 when the kernel
 * does not fit). */
void im2col_out_size(im2col_shape *s);

/* col = im2col(im); col holds channels*kernel_h*kernel_w x out_h*out_w. */
void math_im2col(const im2col_shape *s, const float *restrict im, float *restrict col);
/* im = sum of the columns back at their image positions (im is
 * overwritten, not accumulated into). */
void math_col2im(const im2col_shape *s, const float *restrict col, float *restrict im);

/* The same for the output rows [oh0, oh1) only, so a bounded buffer can
 * cover a large image in bands: col holds channels*kernel_h*kernel_w x
 * (oh1 - oh0)*out_w.  col2im_rows_add accumulates into im. */
void math_im2col_rows(const im2col_shape *s, const float *restrict im, int oh0, int oh1,
                      float *restrict col);
void math_col2im_rows_add(const im2col_shape *s, const float *restrict col, int oh0, int oh1,
                          float *restrict im);

#endif
