/* A seeded Mersenne Twister (mt19937, as Caffe's boost generator), owned by
 * whoever needs random numbers: no global state. */
#ifndef CREMA_CORE_RNG_H
#define CREMA_CORE_RNG_H

#include <stdint.h>

typedef struct crema_rng {
  uint32_t mt[624];
  int index;
  int have_spare;     /* Box-Muller produces normals in pairs */
  double spare;
} crema_rng;

void rng_seed(crema_rng *r, uint32_t seed);
uint32_t rng_u32(crema_rng *r);
/* Uniform in [a, b). */
float rng_uniform(crema_rng *r, float a, float b);
float rng_gaussian(crema_rng *r, float mean, float stddev);
/* 1 with probability p. */
int rng_bernoulli(crema_rng *r, float p);
/* Uniform integer in [0, n). */
uint32_t rng_below(crema_rng *r, uint32_t n);

#endif
