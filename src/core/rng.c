#include "config.h"

#include <math.h>

#include "core/rng.h"

void rng_seed(crema_rng *r, uint32_t seed) {
  r->mt[0] = seed;
  for (int i = 1; i < 624; i++)
    r->mt[i] = 1812433253u * (r->mt[i - 1] ^ (r->mt[i - 1] >> 30)) + (uint32_t)i;
  r->index = 624;
  r->have_spare = 0;
}

static void regenerate(crema_rng *r) {
  for (int i = 0; i < 624; i++) {
    uint32_t y = (r->mt[i] & 0x80000000u) | (r->mt[(i + 1) % 624] & 0x7fffffffu);
    uint32_t v = r->mt[(i + 397) % 624] ^ (y >> 1);
    if (y & 1u)
      v ^= 0x9908b0dfu;
    r->mt[i] = v;
  }
  r->index = 0;
}

uint32_t rng_u32(crema_rng *r) {
  if (r->index >= 624)
    regenerate(r);
  uint32_t y = r->mt[r->index++];
  y ^= y >> 11;
  y ^= (y << 7) & 0x9d2c5680u;
  y ^= (y << 15) & 0xefc60000u;
  y ^= y >> 18;
  return y;
}

float rng_uniform(crema_rng *r, float a, float b) {
  double u = rng_u32(r) / 4294967296.0;
  float v = (float)(a + (b - a) * u);
  return v < b ? v : a; /* rounding to float may reach b */
}

float rng_gaussian(crema_rng *r, float mean, float stddev) {
  if (r->have_spare) {
    r->have_spare = 0;
    return (float)(mean + stddev * r->spare);
  }
  double u1, u2;
  do
    u1 = rng_u32(r) / 4294967296.0;
  while (u1 <= 0.0);
  u2 = rng_u32(r) / 4294967296.0;
  double mag = sqrt(-2.0 * log(u1));
  r->spare = mag * sin(2.0 * M_PI * u2);
  r->have_spare = 1;
  return (float)(mean + stddev * mag * cos(2.0 * M_PI * u2));
}

int rng_bernoulli(crema_rng *r, float p) {
  return rng_u32(r) / 4294967296.0 < p;
}

uint32_t rng_below(crema_rng *r, uint32_t n) {
  if (n <= 1)
    return 0;
  /* Rejection keeps the draw unbiased. */
  uint32_t limit = UINT32_MAX - UINT32_MAX % n;
  uint32_t v;
  do
    v = rng_u32(r);
  while (v >= limit);
  return v % n;
}
