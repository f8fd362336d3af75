/* Caffe's weight fillers: constant, uniform, gaussian (with sparse), xavier,
 * msra, positive_unitball, bilinear. */
#ifndef CREMA_MATH_FILLER_H
#define CREMA_MATH_FILLER_H

#include "caffe.pb-c.h"
#include "core/blob.h"
#include "core/rng.h"

/* Fills b->data as the FillerParameter says (NULL means Caffe's default,
 * constant 0).  An unknown type is an error naming it. */
crema_status filler_fill(const Caffe__FillerParameter *fp, blob *b, crema_rng *rng,
                         crema_error *err);

/* Whether fp (NULL: the default) fills with zeros and cannot fail. */
int filler_is_zero(const Caffe__FillerParameter *fp);

#endif
