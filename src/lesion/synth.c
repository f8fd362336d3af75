/* Synthetic dermoscopy images.  The picture is built in float RGB (sRGB
 * values in [0, 1]) in the order light travels backwards: skin, pigment,
 * things lying on the skin (ink, ruler, stickers, hair), the immersion
 * fluid's air bubbles, then the dermoscope's illumination and vignette, and
 * finally sensor noise and 8-bit quantisation.  Pigment is modelled as
 * absorption (skin * exp(-density * absorbance)), so the same lesion looks
 * right on every skin type and its fuzzy border is a fall-off of density.
 *
 * Everything is drawn from one mt19937 seeded from (seed, number), in a
 * fixed order and single-threaded, so output is bit-identical across runs. */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "lesion/synth.h"

#define PI_F 3.14159265358979f
#define OUTLINE_TABLE 1024

typedef struct rgbf {
  float r, g, b;
} rgbf;

static float clampf(float v, float lo, float hi) { return v < lo ? lo : v > hi ? hi : v; }

static float smoothstep(float e0, float e1, float x) {
  float t = clampf((x - e0) / (e1 - e0), 0.f, 1.f);
  return t * t * (3.f - 2.f * t);
}

/* splitmix64: decorrelates neighbouring numbers of one seed. */
static uint32_t image_seed(uint32_t seed, uint32_t number) {
  uint64_t z = ((uint64_t)seed << 32 | number) + 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return (uint32_t)((z ^ (z >> 31)) >> 16);
}

static uint32_t hash3(uint32_t a, uint32_t b, uint32_t c) {
  uint32_t h = a * 0x8da6b343u ^ b * 0xd8163841u ^ c * 0xcb1ab31fu;
  h ^= h >> 16;
  h *= 0x7feb352du;
  h ^= h >> 15;
  h *= 0x846ca68bu;
  h ^= h >> 16;
  return h;
}

/* ---- fractal value noise ------------------------------------------------ */

#define FBM_MAX_OCTAVES 6

/* Octave i is a periodic lattice of (base << i)^2 random values, smoothly
 * interpolated; coordinates are in image units (0..1 across the image).
 * base is a power of two, so wrapping is a mask. */
typedef struct fbm {
  int octaves, base;
  float *values[FBM_MAX_OCTAVES];
} fbm;

static void fbm_free(fbm *f) {
  for (int i = 0; i < FBM_MAX_OCTAVES; i++) {
    free(f->values[i]);
    f->values[i] = NULL;
  }
}

static crema_status fbm_init(fbm *f, crema_rng *rng, int base, int octaves, crema_error *err) {
  memset(f, 0, sizeof *f);
  f->base = base;
  f->octaves = octaves;
  for (int i = 0; i < octaves; i++) {
    int n = base << i;
    if (!(f->values[i] = crema_malloc((size_t)n * n * sizeof(float), err))) {
      fbm_free(f);
      return CREMA_ERR_NOMEM;
    }
    for (int k = 0; k < n * n; k++)
      f->values[i][k] = rng_uniform(rng, -1.f, 1.f);
  }
  return CREMA_OK;
}

static float lattice_at(const float *v, int n, float x, float y) {
  float fx = floorf(x), fy = floorf(y);
  float tx = x - fx, ty = y - fy;
  int ix = (int)fx & (n - 1), iy = (int)fy & (n - 1);
  int jx = (ix + 1) & (n - 1), jy = (iy + 1) & (n - 1);
  tx = tx * tx * (3.f - 2.f * tx);
  ty = ty * ty * (3.f - 2.f * ty);
  float a = v[iy * n + ix] + (v[iy * n + jx] - v[iy * n + ix]) * tx;
  float b = v[jy * n + ix] + (v[jy * n + jx] - v[jy * n + ix]) * tx;
  return a + (b - a) * ty;
}

/* Roughly in [-1, 1], most values within +-0.5. */
static float fbm_at(const fbm *f, float u, float v) {
  float sum = 0.f, amp = 1.f, norm = 0.f;
  for (int i = 0; i < f->octaves; i++) {
    int n = f->base << i;
    sum += amp * lattice_at(f->values[i], n, u * n, v * n);
    norm += amp;
    amp *= 0.5f;
  }
  return sum / norm;
}

/* ---- the scene ---------------------------------------------------------- */

typedef struct outline {
  float cx, cy, radius;       /* centre and base radius in pixels */
  float aspect, cs, sn;       /* minor/major axis ratio; rotation */
  float table[OUTLINE_TABLE]; /* relative radius by angle */
  float fuzz[OUTLINE_TABLE];  /* half-width of the fuzzy border, relative */
  float rmax;                 /* largest relative radius */
  float warp;                 /* boundary displacement by noise, relative */
} outline;

typedef struct vignette {
  int strong;
  float cx, cy, radius, soft; /* pixels */
  float floor_level;
} vignette;

typedef struct scene {
  int size;
  float scale; /* size / 256: lengths are designed at 256 px */
  crema_rng rng;
  rgbf skin;
  int fitzpatrick;
  outline shape;
  vignette vig;
  fbm warp, skin_low, skin_fine, pigment, blotch, veil, regression, netmask;
  float *canvas;  /* size^2 x 3 */
  float *dist;    /* relative distance to the outline (1 on the border) */
  float *wobble;  /* the outline's noise displacement, relative */
  float *alpha;   /* lesion opacity */
  float *melanin; /* pigment density */
  float *blue;    /* blue-grey veil and dots */
  float *cover;   /* scratch coverage of the object being drawn */
  unsigned char *mask;
  /* Labelled images: the patterns to draw (NULL: chosen at random). */
  const synth_patterns *force;
} scene;

static void scene_free(scene *s) {
  fbm *fields[] = {&s->warp,   &s->skin_low, &s->skin_fine,  &s->pigment,
                   &s->blotch, &s->veil,     &s->regression, &s->netmask};
  for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
    fbm_free(fields[i]);
  free(s->canvas);
  free(s->dist);
  free(s->wobble);
  free(s->alpha);
  free(s->melanin);
  free(s->blue);
  free(s->cover);
}

static crema_status scene_alloc(scene *s, crema_error *err) {
  size_t n = (size_t)s->size * (size_t)s->size;
  if (!(s->canvas = crema_calloc(n * 3, sizeof(float), err)) ||
      !(s->dist = crema_calloc(n, sizeof(float), err)) ||
      !(s->wobble = crema_calloc(n, sizeof(float), err)) ||
      !(s->alpha = crema_calloc(n, sizeof(float), err)) ||
      !(s->melanin = crema_calloc(n, sizeof(float), err)) ||
      !(s->blue = crema_calloc(n, sizeof(float), err)) ||
      !(s->cover = crema_calloc(n, sizeof(float), err)))
    return CREMA_ERR_NOMEM;
  crema_rng *r = &s->rng;
  CREMA_TRY(fbm_init(&s->warp, r, 4, 4, err));
  CREMA_TRY(fbm_init(&s->skin_low, r, 2, 4, err));
  CREMA_TRY(fbm_init(&s->skin_fine, r, 32, 2, err));
  CREMA_TRY(fbm_init(&s->pigment, r, 4, 4, err));
  CREMA_TRY(fbm_init(&s->blotch, r, 2, 4, err));
  CREMA_TRY(fbm_init(&s->veil, r, 4, 3, err));
  CREMA_TRY(fbm_init(&s->regression, r, 4, 3, err));
  CREMA_TRY(fbm_init(&s->netmask, r, 2, 3, err));
  return CREMA_OK;
}

/* ---- skin and illumination ---------------------------------------------- */

/* Approximate dermoscopic appearance (sRGB) of Fitzpatrick types I-VI:
 * dermoscopes show skin pinker and brighter than daylight photographs. */
static const rgbf fitzpatrick_tones[6] = {{0.96f, 0.80f, 0.76f}, {0.92f, 0.72f, 0.64f},
                                          {0.84f, 0.62f, 0.50f}, {0.70f, 0.48f, 0.35f},
                                          {0.52f, 0.34f, 0.24f}, {0.34f, 0.22f, 0.16f}};

static void choose_skin(scene *s) {
  crema_rng *r = &s->rng;
  /* Dermoscopy collections are dominated by light skin; keep every type. */
  static const float cumulative[6] = {0.22f, 0.48f, 0.70f, 0.84f, 0.94f, 1.f};
  float u = rng_uniform(r, 0.f, 1.f);
  int t = 0;
  while (t < 5 && u >= cumulative[t])
    t++;
  s->fitzpatrick = t + 1;
  rgbf base = fitzpatrick_tones[t];
  float bright = rng_uniform(r, 0.92f, 1.06f);
  s->skin.r = clampf(base.r * bright * rng_uniform(r, 0.97f, 1.03f), 0.f, 1.f);
  s->skin.g = clampf(base.g * bright * rng_uniform(r, 0.95f, 1.04f), 0.f, 1.f);
  s->skin.b = clampf(base.b * bright * rng_uniform(r, 0.93f, 1.07f), 0.f, 1.f);
}

static void paint_skin(scene *s) {
  crema_rng *r = &s->rng;
  int n = s->size;
  float redness = rng_uniform(r, 0.f, 0.45f);
  float mottling = rng_uniform(r, 0.03f, 0.10f);
  float texture = rng_uniform(r, 0.02f, 0.06f);
  for (int y = 0; y < n; y++) {
    for (int x = 0; x < n; x++) {
      float u = (x + 0.5f) / n, v = (y + 0.5f) / n;
      float low = fbm_at(&s->skin_low, u, v);
      float fine = fbm_at(&s->skin_fine, u, v);
      /* Erythema: haemoglobin absorbs green and blue. */
      float hb = redness * clampf(0.5f + low, 0.f, 1.5f);
      float shade = 1.f + mottling * low + texture * fine;
      float *p = s->canvas + ((size_t)y * n + x) * 3;
      p[0] = s->skin.r * shade * expf(-0.05f * hb);
      p[1] = s->skin.g * shade * expf(-0.55f * hb);
      p[2] = s->skin.b * shade * expf(-0.40f * hb);
    }
  }
}

static void choose_vignette(scene *s) {
  crema_rng *r = &s->rng;
  int n = s->size;
  vignette *v = &s->vig;
  v->strong = rng_bernoulli(r, 0.6f);
  v->cx = n * (0.5f + rng_uniform(r, -0.05f, 0.05f));
  v->cy = n * (0.5f + rng_uniform(r, -0.05f, 0.05f));
  v->radius = n * (v->strong ? rng_uniform(r, 0.48f, 0.70f) : rng_uniform(r, 0.85f, 1.1f));
  v->soft = n * rng_uniform(r, 0.01f, 0.045f);
  v->floor_level = rng_uniform(r, 0.01f, 0.06f);
}

/* 1 inside the dermoscope's field of view, 0 in the dark surround. */
static float vignette_at(const vignette *v, float x, float y) {
  float d = sqrtf((x - v->cx) * (x - v->cx) + (y - v->cy) * (y - v->cy));
  return 1.f - smoothstep(v->radius - v->soft, v->radius + v->soft, d);
}

/* The light sources' falloff, a central hot spot, a colour cast, then the
 * black surround outside the lens. */
static void apply_optics(scene *s) {
  crema_rng *r = &s->rng;
  int n = s->size;
  float lx = n * (0.5f + rng_uniform(r, -0.12f, 0.12f));
  float ly = n * (0.5f + rng_uniform(r, -0.12f, 0.12f));
  float gain = rng_uniform(r, 0.95f, 1.12f);
  float falloff = rng_uniform(r, 0.15f, 0.5f);
  float hot = rng_uniform(r, 0.f, 0.12f);
  float hot_w = rng_uniform(r, 0.15f, 0.35f);
  float cast[3] = {1.f + rng_uniform(r, -0.04f, 0.05f), 1.f, 1.f + rng_uniform(r, -0.06f, 0.07f)};
  const vignette *v = &s->vig;
  for (int y = 0; y < n; y++) {
    for (int x = 0; x < n; x++) {
      float dx = (x + 0.5f - lx) / n, dy = (y + 0.5f - ly) / n;
      float r2 = dx * dx + dy * dy;
      float light = gain * (1.f - falloff * r2 + hot * expf(-r2 / (2.f * hot_w * hot_w)));
      float inside = vignette_at(v, x + 0.5f, y + 0.5f);
      float *p = s->canvas + ((size_t)y * n + x) * 3;
      for (int c = 0; c < 3; c++)
        p[c] = p[c] * light * cast[c] * inside + v->floor_level * (1.f - inside);
    }
  }
}

/* ---- the lesion's outline ---------------------------------------------- */

static void choose_outline(scene *s) {
  crema_rng *r = &s->rng;
  outline *o = &s->shape;
  int n = s->size;
  o->aspect = rng_uniform(r, 0.65f, 1.f);
  float theta = rng_uniform(r, 0.f, PI_F);
  o->cs = cosf(theta);
  o->sn = sinf(theta);
  /* Irregularity: smooth lobes (harmonics 2..7) and a notched edge
   * (8..24); some lesions are nearly round, others very irregular. */
  float lobes = rng_uniform(r, 0.02f, 0.16f);
  float notch = rng_uniform(r, 0.f, 0.012f);
  float amp[25] = {0}, phase[25] = {0};
  for (int k = 2; k <= 24; k++) {
    amp[k] = (k <= 7 ? lobes / (float)(k - 1) : notch) * rng_uniform(r, 0.2f, 1.f);
    phase[k] = rng_uniform(r, 0.f, 2.f * PI_F);
  }
  float fuzz_lo = rng_uniform(r, 0.01f, 0.05f), fuzz_hi = rng_uniform(r, 0.05f, 0.22f);
  int fuzz_k = 1 + (int)rng_below(r, 3);
  float fuzz_p = rng_uniform(r, 0.f, 2.f * PI_F);
  o->rmax = 0.f;
  for (int i = 0; i < OUTLINE_TABLE; i++) {
    float phi = -PI_F + 2.f * PI_F * i / OUTLINE_TABLE;
    float rel = 1.f;
    for (int k = 2; k <= 24; k++)
      rel += amp[k] * cosf(k * phi + phase[k]);
    o->table[i] = rel < 0.3f ? 0.3f : rel;
    if (o->table[i] > o->rmax)
      o->rmax = o->table[i];
    float f = 0.5f + 0.5f * cosf(fuzz_k * phi + fuzz_p);
    o->fuzz[i] = fuzz_lo + (fuzz_hi - fuzz_lo) * f * f;
  }
  o->warp = rng_uniform(r, 0.03f, 0.14f);
  /* Most lesions are centred by the photographer; some are not, and some
   * run off the image. */
  float spread = rng_bernoulli(r, 0.25f) ? 0.3f : 0.1f;
  o->cx = n * (0.5f + rng_uniform(r, -spread, spread));
  o->cy = n * (0.5f + rng_uniform(r, -spread, spread));
}

static float outline_lookup(const float *table, float phi) {
  float t = (phi + PI_F) * (OUTLINE_TABLE / (2.f * PI_F));
  int i = (int)floorf(t);
  float f = t - i;
  int i0 = ((i % OUTLINE_TABLE) + OUTLINE_TABLE) % OUTLINE_TABLE;
  int i1 = (i0 + 1) % OUTLINE_TABLE;
  return table[i0] + (table[i1] - table[i0]) * f;
}

/* Fills dist, alpha and the mask for the current radius at every step-th
 * pixel of every step-th row; returns the mask's pixel count there (the
 * lesion within the field of view, at half opacity). */
static size_t trace_outline(scene *s, int step) {
  const outline *o = &s->shape;
  int n = s->size;
  size_t count = 0;
  for (int y = 0; y < n; y += step) {
    for (int x = 0; x < n; x += step) {
      float dx = x + 0.5f - o->cx, dy = y + 0.5f - o->cy;
      float a = dx * o->cs + dy * o->sn;
      float b = (-dx * o->sn + dy * o->cs) / o->aspect;
      float rho = sqrtf(a * a + b * b);
      float phi = atan2f(b, a);
      size_t i = (size_t)y * n + x;
      rho += o->warp * o->radius * s->wobble[i];
      float d = rho / (o->radius * outline_lookup(o->table, phi));
      float w = outline_lookup(o->fuzz, phi);
      s->dist[i] = d;
      float visible = vignette_at(&s->vig, x + 0.5f, y + 0.5f);
      s->alpha[i] = 1.f - smoothstep(1.f - w, 1.f + w, d);
      int in = d < 1.f && visible >= 0.5f;
      s->mask[i] = in ? 255 : 0;
      count += (size_t)in;
    }
  }
  return count;
}

/* Scales the outline until the lesion covers about the drawn fraction of
 * the image, always within [SYNTH_MIN_FRACTION, SYNTH_MAX_FRACTION]. */
static void fit_lesion(scene *s) {
  crema_rng *r = &s->rng;
  outline *o = &s->shape;
  int n = s->size;
  float total = (float)n * n;
  /* Skewed towards mid-sized lesions, as in ISIC. */
  float u = rng_uniform(r, 0.f, 1.f);
  float target = 0.07f + 0.46f * u * (0.6f + 0.4f * u);
  /* Labelled images show their lesion large, as a crop to the lesion
   * would: averages over the image then weigh its patterns, not skin. */
  if (s->force)
    target = 0.35f + 0.2f * u;
  o->radius = sqrtf(target * total / (PI_F * o->aspect));
  for (int y = 0; y < n; y++)
    for (int x = 0; x < n; x++)
      s->wobble[(size_t)y * n + x] = fbm_at(&s->warp, (x + 0.5f) / n, (y + 0.5f) / n);
  /* Coarse passes on a quarter of the pixels find the radius; the final
   * ones check the bounds on every pixel. */
  int step = n >= 64 ? 2 : 1;
  float frac;
  for (int iter = 0; iter < 24; iter++) {
    size_t samples = (size_t)((n + step - 1) / step) * (size_t)((n + step - 1) / step);
    frac = trace_outline(s, step) / (float)samples;
    int in_bounds = frac >= SYNTH_MIN_FRACTION && frac <= SYNTH_MAX_FRACTION;
    if (in_bounds && fabsf(frac / target - 1.f) < 0.08f) {
      if (step == 1)
        return;
      step = 1;
      iter--;
      continue;
    }
    if (iter == 11) {
      /* Too far off-centre to reach the target: bring it back in view. */
      o->cx = n * 0.5f;
      o->cy = n * 0.5f;
    }
    float k = sqrtf(target / (frac > 1e-4f ? frac : 1e-4f));
    o->radius *= clampf(k, 0.6f, 1.6f);
  }
  trace_outline(s, 1);
}

/* ---- pigment ------------------------------------------------------------ */

/* Reticular network: the edges of a jittered Voronoi diagram (F2 - F1 of
 * Worley noise is small near cell borders). */
static float network_line(float x, float y, float cell, float width, uint32_t key) {
  float gx = x / cell, gy = y / cell;
  int cx = (int)floorf(gx), cy = (int)floorf(gy);
  float f1 = 1e9f, f2 = 1e9f;
  for (int j = -1; j <= 1; j++) {
    for (int i = -1; i <= 1; i++) {
      uint32_t h = hash3((uint32_t)(cx + i), (uint32_t)(cy + j), key);
      float px = cx + i + 0.15f + 0.7f * (h & 0xffff) / 65535.f;
      float py = cy + j + 0.15f + 0.7f * (h >> 16) / 65535.f;
      float d = sqrtf((gx - px) * (gx - px) + (gy - py) * (gy - py));
      if (d < f1) {
        f2 = f1;
        f1 = d;
      } else if (d < f2) {
        f2 = d;
      }
    }
  }
  return 1.f - smoothstep(0.f, width, f2 - f1);
}

typedef struct pigment_plan {
  float base, profile, variation;
  int blotch;
  float blotch_level, blotch_amount;
  int network;
  float net_cell, net_width, net_amount;
  uint32_t net_key;
  int veil;
  float veil_level, veil_amount;
  int regression;
  float regression_level, regression_amount;
  float haemoglobin;
} pigment_plan;

/* A labelled image shows exactly its patterns, and plainly enough to be
 * told apart: pigmented, with a network, veil or regression of at least
 * moderate strength and extent. */
static void force_pigment(const synth_patterns *f, int amelanotic, pigment_plan *p) {
  if (amelanotic) {
    p->base = 0.5f + 0.5f * p->variation;
    p->haemoglobin *= 0.3f;
  }
  p->network = f->network;
  p->net_amount = fmaxf(p->net_amount, 0.6f);
  p->veil = f->veil;
  p->veil_amount = fmaxf(p->veil_amount, 0.6f);
  p->veil_level = fminf(p->veil_level, 0.0f);
  p->regression = f->regression;
  p->regression_amount = fmaxf(p->regression_amount, 0.45f);
  p->regression_level = fminf(p->regression_level, 0.05f);
}

static void choose_pigment(scene *s, pigment_plan *p) {
  crema_rng *r = &s->rng;
  int amelanotic = rng_bernoulli(r, 0.08f);
  p->base = amelanotic ? rng_uniform(r, 0.05f, 0.2f) : rng_uniform(r, 0.45f, 1.5f);
  p->haemoglobin = amelanotic ? rng_uniform(r, 0.15f, 0.4f) : rng_uniform(r, 0.f, 0.15f);
  /* Darker centre (> 0), darker rim (< 0) or flat. */
  p->profile = rng_uniform(r, -0.4f, 1.2f);
  p->variation = rng_uniform(r, 0.2f, 0.8f);
  p->blotch = rng_bernoulli(r, 0.5f);
  p->blotch_level = rng_uniform(r, 0.f, 0.3f);
  p->blotch_amount = rng_uniform(r, 0.6f, 2.2f);
  p->network = !amelanotic && rng_bernoulli(r, 0.55f);
  p->net_cell = s->scale * rng_uniform(r, 7.f, 12.f);
  p->net_width = rng_uniform(r, 0.25f, 0.5f);
  p->net_amount = rng_uniform(r, 0.3f, 0.8f);
  p->net_key = rng_u32(r);
  p->veil = rng_bernoulli(r, 0.35f);
  p->veil_level = rng_uniform(r, -0.05f, 0.25f);
  p->veil_amount = rng_uniform(r, 0.25f, 0.6f);
  p->regression = rng_bernoulli(r, 0.2f);
  p->regression_level = rng_uniform(r, 0.05f, 0.3f);
  p->regression_amount = rng_uniform(r, 0.2f, 0.5f);
  if (s->force)
    force_pigment(s->force, amelanotic, p);
}

static void lay_pigment(scene *s, const pigment_plan *p) {
  int n = s->size;
  for (int y = 0; y < n; y++) {
    for (int x = 0; x < n; x++) {
      size_t i = (size_t)y * n + x;
      float a = s->alpha[i];
      if (a <= 0.f)
        continue;
      float u = (x + 0.5f) / n, v = (y + 0.5f) / n;
      float d = s->dist[i] < 1.f ? s->dist[i] : 1.f;
      float var = fbm_at(&s->pigment, u, v);
      float m = p->base * (1.f + p->profile * (1.f - d * d)) * (1.f + p->variation * var);
      if (p->blotch)
        m += p->blotch_amount *
             smoothstep(p->blotch_level, p->blotch_level + 0.15f, fbm_at(&s->blotch, u, v));
      if (p->network) {
        /* The network is irregular, patchy and fades towards the rim. */
        float jx = var * p->net_cell * 0.6f, jy = fbm_at(&s->veil, v, u) * p->net_cell * 0.6f;
        float line = network_line(x + jx, y + jy, p->net_cell, p->net_width, p->net_key);
        float where = smoothstep(-0.25f, 0.15f, fbm_at(&s->netmask, u, v));
        m += p->net_amount * where * (line - 0.35f);
      }
      /* Granular texture keeps the pigment from looking painted. */
      float grain = 0.35f * fbm_at(&s->skin_fine, u, v);
      m *= 1.f + grain;
      s->melanin[i] = (m > 0.f ? m : 0.f) * a;
      /* The veil sits over the raised, central part of the lesion. */
      if (p->veil)
        s->blue[i] = p->veil_amount * a * (1.f - smoothstep(0.7f, 1.f, d)) * (0.8f + grain) *
                     smoothstep(p->veil_level, p->veil_level + 0.35f, fbm_at(&s->veil, u, v));
    }
  }
}

/* Point at relative radius t and angle phi inside the outline (warp
 * ignored), in pixels. */
static void outline_point(const outline *o, float t, float phi, float *x, float *y) {
  float rel = outline_lookup(o->table, phi) * o->radius * t;
  float a = rel * cosf(phi), b = rel * sinf(phi) * o->aspect;
  *x = o->cx + a * o->cs - b * o->sn;
  *y = o->cy + a * o->sn + b * o->cs;
}

/* Adds a soft disc of the given amount to a density map, scaled by the
 * lesion's opacity so nothing leaks past the border. */
static void add_disc(scene *s, float *map, float cx, float cy, float radius, float amount) {
  int n = s->size;
  int x0 = (int)floorf(cx - radius - 1), x1 = (int)ceilf(cx + radius + 1);
  int y0 = (int)floorf(cy - radius - 1), y1 = (int)ceilf(cy + radius + 1);
  for (int y = y0 < 0 ? 0 : y0; y <= y1 && y < n; y++) {
    for (int x = x0 < 0 ? 0 : x0; x <= x1 && x < n; x++) {
      float d = sqrtf((x + 0.5f - cx) * (x + 0.5f - cx) + (y + 0.5f - cy) * (y + 0.5f - cy));
      float c = 1.f - smoothstep(radius - 0.7f, radius + 0.7f, d);
      size_t i = (size_t)y * n + x;
      map[i] += amount * c * s->alpha[i];
    }
  }
}

/* Globules (brown-black, clustered centrally or at the rim) and peppering
 * (small blue-grey dots). */
static void scatter_globules(scene *s) {
  crema_rng *r = &s->rng;
  /* The draws are made either way, so that unlabelled images keep their
   * random sequence. */
  int globules = rng_bernoulli(r, 0.5f);
  if (s->force)
    globules = s->force->globules;
  if (globules) {
    int count = (s->force ? 12 : 4) + (int)rng_below(r, 50);
    int rim = rng_bernoulli(r, 0.5f);
    float size = s->scale * rng_uniform(r, 1.f, 3.5f);
    for (int k = 0; k < count; k++) {
      float t = rim ? rng_uniform(r, 0.6f, 0.95f) : sqrtf(rng_uniform(r, 0.f, 1.f)) * 0.9f;
      float x, y;
      outline_point(&s->shape, t, rng_uniform(r, -PI_F, PI_F), &x, &y);
      float rad = size * rng_uniform(r, 0.5f, 1.3f);
      add_disc(s, s->melanin, x, y, rad, rng_uniform(r, 0.8f, 2.f));
    }
  }
  int dots = rng_bernoulli(r, 0.2f);
  if (s->force)
    dots = s->force->dots;
  if (dots) {
    int count = (s->force ? 30 : 10) + (int)rng_below(r, 60);
    for (int k = 0; k < count; k++) {
      float x, y;
      outline_point(&s->shape, sqrtf(rng_uniform(r, 0.f, 1.f)) * 0.85f, rng_uniform(r, -PI_F, PI_F),
                    &x, &y);
      add_disc(s, s->blue, x, y, s->scale * rng_uniform(r, 0.5f, 1.3f), rng_uniform(r, 0.3f, 0.6f));
    }
  }
}

/* Radial streaks (pseudopods): dark lines from inside the rim outwards,
 * some bulbous at the tip; drawn with the lesion's opacity, so they fade
 * into the fuzzy border. */
static void draw_streaks(scene *s) {
  crema_rng *r = &s->rng;
  const int count = 10 + (int)rng_below(r, 14);
  const float width = s->scale * rng_uniform(r, 1.2f, 2.2f);
  const float phi0 = rng_uniform(r, -PI_F, PI_F), spread = rng_uniform(r, 0.8f, 2.f * PI_F);
  for (int k = 0; k < count; k++) {
    const float phi = phi0 + spread * ((float)k + rng_uniform(r, 0.f, 0.8f)) / (float)count;
    const float t0 = rng_uniform(r, 0.55f, 0.75f), t1 = rng_uniform(r, 0.97f, 1.08f);
    const float amount = rng_uniform(r, 1.2f, 2.2f);
    for (float t = t0; t <= t1; t += 0.02f) {
      float x, y;
      outline_point(&s->shape, t, phi, &x, &y);
      add_disc(s, s->melanin, x, y, width * 0.5f, amount * 0.5f);
    }
    if (rng_bernoulli(r, 0.5f)) {
      float x, y;
      outline_point(&s->shape, t1, phi, &x, &y);
      add_disc(s, s->melanin, x, y, width * 1.2f, amount);
    }
  }
}

/* Absorption by melanin (stronger in blue: browns and black), haemoglobin
 * (pinks), the blue-grey of deep melanin and white scar-like regression. */
static void tint_lesion(scene *s, const pigment_plan *p) {
  int n = s->size;
  const float mel[3] = {0.75f, 1.15f, 1.55f};
  const float hb[3] = {0.05f, 0.9f, 0.7f};
  float lum = 0.3f * s->skin.r + 0.59f * s->skin.g + 0.11f * s->skin.b;
  float depth = 0.55f + 0.45f * lum;
  const rgbf grey_blue = {0.42f * depth, 0.46f * depth, 0.54f * depth};
  const rgbf scar = {0.90f, 0.84f, 0.84f};
  for (int y = 0; y < n; y++) {
    for (int x = 0; x < n; x++) {
      size_t i = (size_t)y * n + x;
      float a = s->alpha[i];
      if (a <= 0.f && s->melanin[i] <= 0.f && s->blue[i] <= 0.f)
        continue;
      float *c = s->canvas + i * 3;
      float m = s->melanin[i], h = p->haemoglobin * a;
      for (int k = 0; k < 3; k++)
        c[k] *= expf(-m * mel[k] - h * hb[k]);
      float b = clampf(s->blue[i], 0.f, 0.9f);
      c[0] += (grey_blue.r - c[0]) * b;
      c[1] += (grey_blue.g - c[1]) * b;
      c[2] += (grey_blue.b - c[2]) * b;
      if (p->regression) {
        float u = (x + 0.5f) / n, v = (y + 0.5f) / n;
        float w = p->regression_amount * a *
                  smoothstep(p->regression_level, p->regression_level + 0.3f,
                             fbm_at(&s->regression, u, v));
        c[0] += (scar.r - c[0]) * w;
        c[1] += (scar.g - c[1]) * w;
        c[2] += (scar.b - c[2]) * w;
      }
    }
  }
}

/* ---- objects on the skin ------------------------------------------------ */

typedef struct box {
  int x0, y0, x1, y1;
} box;

static void box_reset(box *b) {
  b->x0 = b->y0 = 1 << 30;
  b->x1 = b->y1 = -1;
}

/* Anti-aliased thick segment into the coverage map (max, so joints of a
 * polyline do not double up). */
static void cover_segment(scene *s, box *b, float ax, float ay, float bx, float by, float half) {
  int n = s->size;
  int x0 = (int)floorf(fminf(ax, bx) - half - 1), x1 = (int)ceilf(fmaxf(ax, bx) + half + 1);
  int y0 = (int)floorf(fminf(ay, by) - half - 1), y1 = (int)ceilf(fmaxf(ay, by) + half + 1);
  x0 = x0 < 0 ? 0 : x0;
  y0 = y0 < 0 ? 0 : y0;
  x1 = x1 >= n ? n - 1 : x1;
  y1 = y1 >= n ? n - 1 : y1;
  if (x0 > x1 || y0 > y1)
    return;
  float ex = bx - ax, ey = by - ay, len2 = ex * ex + ey * ey;
  for (int y = y0; y <= y1; y++) {
    for (int x = x0; x <= x1; x++) {
      float px = x + 0.5f - ax, py = y + 0.5f - ay;
      float t = len2 > 0.f ? clampf((px * ex + py * ey) / len2, 0.f, 1.f) : 0.f;
      float dx = px - t * ex, dy = py - t * ey;
      float c = clampf(half + 0.5f - sqrtf(dx * dx + dy * dy), 0.f, 1.f);
      float *cv = s->cover + (size_t)y * n + x;
      if (c > *cv)
        *cv = c;
    }
  }
  if (x0 < b->x0)
    b->x0 = x0;
  if (y0 < b->y0)
    b->y0 = y0;
  if (x1 > b->x1)
    b->x1 = x1;
  if (y1 > b->y1)
    b->y1 = y1;
}

static void cover_disc(scene *s, box *b, float cx, float cy, float radius) {
  cover_segment(s, b, cx, cy, cx, cy, radius);
}

/* Blends colour over the covered pixels: mode 0 paints (opaque objects),
 * mode 1 multiplies (translucent ink); then clears the coverage. */
static void composite(scene *s, const box *b, rgbf col, float opacity, int multiply) {
  int n = s->size;
  for (int y = b->y0; y <= b->y1; y++) {
    for (int x = b->x0; x <= b->x1; x++) {
      size_t i = (size_t)y * n + x;
      float a = s->cover[i] * opacity;
      if (a <= 0.f)
        continue;
      float *c = s->canvas + i * 3;
      float t[3] = {col.r, col.g, col.b};
      for (int k = 0; k < 3; k++) {
        float target = multiply ? c[k] * t[k] : t[k];
        c[k] += (target - c[k]) * a;
      }
      s->cover[i] = 0.f;
    }
  }
}

/* A curved strand: a walk whose heading turns with a slowly drifting
 * curvature. */
static void cover_strand(scene *s, box *b, float x, float y, float heading, float length,
                         float half, float curl) {
  crema_rng *r = &s->rng;
  float step = 1.5f * s->scale;
  float kappa = rng_gaussian(r, 0.f, curl);
  for (float done = 0.f; done < length; done += step) {
    float nx = x + cosf(heading) * step, ny = y + sinf(heading) * step;
    cover_segment(s, b, x, y, nx, ny, half);
    x = nx;
    y = ny;
    heading += kappa * step;
    kappa += rng_gaussian(r, 0.f, curl * 0.15f) * sqrtf(step);
  }
}

static void draw_hair(scene *s) {
  crema_rng *r = &s->rng;
  if (rng_bernoulli(r, 0.45f))
    return;
  int n = s->size;
  int count = 1 + (int)(rng_uniform(r, 0.f, 1.f) * rng_uniform(r, 0.f, 1.f) * 30.f);
  int blond = rng_bernoulli(r, 0.12f);
  float tone = blond ? rng_uniform(r, 0.45f, 0.65f) : rng_uniform(r, 0.04f, 0.2f);
  float thick = rng_uniform(r, 0.45f, 1.3f);
  float main_dir = rng_uniform(r, 0.f, PI_F);
  box b;
  for (int k = 0; k < count; k++) {
    box_reset(&b);
    float x, y;
    /* About half the strands pass through the lesion. */
    if (rng_bernoulli(r, 0.5f))
      outline_point(&s->shape, rng_uniform(r, 0.f, 0.9f), rng_uniform(r, -PI_F, PI_F), &x, &y);
    else {
      x = rng_uniform(r, 0.f, (float)n);
      y = rng_uniform(r, 0.f, (float)n);
    }
    float heading = main_dir + rng_gaussian(r, 0.f, 0.5f);
    float length = n * rng_uniform(r, 0.25f, 0.9f);
    float half = s->scale * thick * rng_uniform(r, 0.7f, 1.3f);
    float curl = rng_uniform(r, 0.002f, 0.012f) / s->scale;
    cover_strand(s, &b, x, y, heading, length * 0.5f, half, curl);
    cover_strand(s, &b, x, y, heading + PI_F, length * 0.5f, half, curl);
    float shade = tone * rng_uniform(r, 0.8f, 1.2f);
    rgbf col = {shade, shade * 0.85f, shade * 0.75f};
    composite(s, &b, col, rng_uniform(r, 0.75f, 0.98f), 0);
  }
}

/* A ruler printed on a translucent strip along one edge: ticks every
 * millimetre-like step, longer every fifth. */
static void draw_ruler(scene *s) {
  crema_rng *r = &s->rng;
  if (!rng_bernoulli(r, 0.2f))
    return;
  int n = s->size;
  float tilt = rng_uniform(r, -0.12f, 0.12f);
  int edge = (int)rng_below(r, 4);
  float ang = edge * (PI_F / 2.f) + tilt;
  float dx = cosf(ang), dy = sinf(ang); /* along the ruler */
  float nx = -dy, ny = dx;              /* towards the image centre */
  float inset = n * rng_uniform(r, 0.05f, 0.16f);
  float ox = n * 0.5f - nx * (n * 0.5f - inset), oy = n * 0.5f - ny * (n * 0.5f - inset);
  float spacing = n * rng_uniform(r, 0.025f, 0.045f);
  float tick = n * rng_uniform(r, 0.02f, 0.035f);
  float half = s->scale * rng_uniform(r, 0.45f, 0.8f);
  box b;
  box_reset(&b);
  float strip = tick * 2.4f;
  for (float t = -0.8f * n; t <= 0.8f * n; t += 2.f * s->scale)
    cover_segment(s, &b, ox + dx * t, oy + dy * t, ox + dx * t - nx * strip,
                  oy + dy * t - ny * strip, s->scale);
  rgbf film = {0.92f, 0.92f, 0.86f};
  composite(s, &b, film, rng_uniform(r, 0.12f, 0.3f), 0);
  box_reset(&b);
  int i = 0;
  for (float t = -0.8f * n; t <= 0.8f * n; t += spacing, i++) {
    float len = i % 5 == 0 ? tick * 1.8f : tick;
    float px = ox + dx * t, py = oy + dy * t;
    cover_segment(s, &b, px, py, px + nx * len, py + ny * len, half);
  }
  if (rng_bernoulli(r, 0.6f))
    cover_segment(s, &b, ox - dx * n, oy - dy * n, ox + dx * n, oy + dy * n, half);
  rgbf ink = {0.06f, 0.06f, 0.07f};
  composite(s, &b, ink, rng_uniform(r, 0.7f, 0.95f), 0);
}

/* Surgical marker: a rough circle round the lesion, a few dots or a
 * stroke; the ink is translucent, so it multiplies. */
static void draw_ink(scene *s) {
  crema_rng *r = &s->rng;
  if (!rng_bernoulli(r, 0.2f))
    return;
  const outline *o = &s->shape;
  int n = s->size;
  static const rgbf inks[3] = {{0.55f, 0.32f, 0.80f}, {0.35f, 0.40f, 0.85f}, {0.3f, 0.3f, 0.35f}};
  rgbf col = inks[rng_below(r, 3)];
  float half = s->scale * rng_uniform(r, 1.f, 2.8f);
  box b;
  box_reset(&b);
  int kind = (int)rng_below(r, 3);
  if (kind == 0) {
    float rad = o->radius * o->rmax * rng_uniform(r, 1.12f, 1.45f);
    float start = rng_uniform(r, -PI_F, PI_F), sweep = rng_uniform(r, 1.2f * PI_F, 2.1f * PI_F);
    float wobble = rng_uniform(r, 0.02f, 0.08f), wk = rng_uniform(r, 2.f, 4.f);
    int steps = (int)(sweep * rad / (2.f * s->scale)) + 2;
    float px = 0, py = 0;
    for (int i = 0; i <= steps; i++) {
      float phi = start + sweep * i / steps;
      float rr = rad * (1.f + wobble * sinf(wk * phi));
      float x = o->cx + rr * cosf(phi), y = o->cy + rr * sinf(phi);
      if (i > 0)
        cover_segment(s, &b, px, py, x, y, half);
      px = x;
      py = y;
    }
  } else if (kind == 1) {
    int dots = 1 + (int)rng_below(r, 4);
    for (int i = 0; i < dots; i++) {
      float x, y;
      outline_point(o, rng_uniform(r, 1.2f, 1.6f), rng_uniform(r, -PI_F, PI_F), &x, &y);
      cover_disc(s, &b, x, y, half * rng_uniform(r, 1.5f, 3.f));
    }
  } else {
    float x, y;
    outline_point(o, rng_uniform(r, 1.2f, 1.5f), rng_uniform(r, -PI_F, PI_F), &x, &y);
    cover_strand(s, &b, x, y, rng_uniform(r, -PI_F, PI_F), n * rng_uniform(r, 0.1f, 0.3f), half,
                 0.002f / s->scale);
  }
  composite(s, &b, col, rng_uniform(r, 0.6f, 0.9f), 1);
}

/* 1 if a disc would hide part of the lesion. */
static int disc_hits_lesion(const scene *s, float cx, float cy, float radius) {
  int n = s->size;
  for (int y = (int)(cy - radius) - 2; y <= (int)(cy + radius) + 2; y++) {
    for (int x = (int)(cx - radius) - 2; x <= (int)(cx + radius) + 2; x++) {
      if (x < 0 || y < 0 || x >= n || y >= n)
        continue;
      float d2 = (x + 0.5f - cx) * (x + 0.5f - cx) + (y + 0.5f - cy) * (y + 0.5f - cy);
      if (d2 <= (radius + 3.f) * (radius + 3.f) && s->alpha[(size_t)y * n + x] > 0.02f)
        return 1;
    }
  }
  return 0;
}

/* Round coloured stickers, placed clear of the lesion. */
static void draw_stickers(scene *s) {
  crema_rng *r = &s->rng;
  if (!rng_bernoulli(r, 0.12f))
    return;
  static const rgbf colours[6] = {{0.20f, 0.70f, 0.30f}, {0.20f, 0.40f, 0.85f},
                                  {0.95f, 0.85f, 0.20f}, {0.95f, 0.55f, 0.15f},
                                  {0.85f, 0.20f, 0.25f}, {0.92f, 0.92f, 0.92f}};
  int n = s->size;
  int count = 1 + (int)rng_below(r, 2);
  box b;
  for (int k = 0; k < count; k++) {
    rgbf col = colours[rng_below(r, 6)];
    float radius = n * rng_uniform(r, 0.035f, 0.08f);
    for (int attempt = 0; attempt < 30; attempt++) {
      float cx = rng_uniform(r, 0.f, (float)n), cy = rng_uniform(r, 0.f, (float)n);
      if (disc_hits_lesion(s, cx, cy, radius))
        continue;
      box_reset(&b);
      cover_disc(s, &b, cx, cy, radius);
      composite(s, &b, col, 0.97f, 0);
      /* A darker printed rim and a glossy highlight. */
      box_reset(&b);
      for (int i = 0; i < 48; i++) {
        float a0 = 2.f * PI_F * i / 48, a1 = 2.f * PI_F * (i + 1) / 48, rr = radius * 0.8f;
        cover_segment(s, &b, cx + rr * cosf(a0), cy + rr * sinf(a0), cx + rr * cosf(a1),
                      cy + rr * sinf(a1), s->scale * 0.8f);
      }
      rgbf rim = {col.r * 0.6f, col.g * 0.6f, col.b * 0.6f};
      composite(s, &b, rim, 0.8f, 0);
      box_reset(&b);
      cover_disc(s, &b, cx - radius * 0.35f, cy - radius * 0.35f, radius * 0.18f);
      rgbf shine = {1.f, 1.f, 1.f};
      composite(s, &b, shine, 0.45f, 0);
      break;
    }
  }
}

/* Air bubbles in the immersion fluid: a thin bright rim, a slightly
 * brighter inside and a specular spot. */
static void draw_bubbles(scene *s) {
  crema_rng *r = &s->rng;
  if (!rng_bernoulli(r, 0.3f))
    return;
  int n = s->size;
  int count = 1 + (int)(rng_uniform(r, 0.f, 1.f) * rng_uniform(r, 0.f, 1.f) * 12.f);
  for (int k = 0; k < count; k++) {
    float cx = rng_uniform(r, 0.f, (float)n), cy = rng_uniform(r, 0.f, (float)n);
    float u = rng_uniform(r, 0.f, 1.f);
    float radius = n * (0.008f + 0.06f * u * u);
    float w = s->scale * rng_uniform(r, 0.6f, 1.4f);
    float bright = rng_uniform(r, 0.35f, 0.8f);
    float hx = cx - radius * 0.4f, hy = cy - radius * 0.4f, hr = radius * 0.2f + 0.5f;
    int x0 = (int)(cx - radius - 4 * w) - 1, x1 = (int)(cx + radius + 4 * w) + 1;
    int y0 = (int)(cy - radius - 4 * w) - 1, y1 = (int)(cy + radius + 4 * w) + 1;
    for (int y = y0 < 0 ? 0 : y0; y <= y1 && y < n; y++) {
      for (int x = x0 < 0 ? 0 : x0; x <= x1 && x < n; x++) {
        float px = x + 0.5f, py = y + 0.5f;
        float d = sqrtf((px - cx) * (px - cx) + (py - cy) * (py - cy));
        float e = (d - radius) / w;
        float add = bright * expf(-e * e) - 0.12f * bright * expf(-(e - 2.f) * (e - 2.f));
        if (d < radius)
          add += 0.05f;
        float hd = sqrtf((px - hx) * (px - hx) + (py - hy) * (py - hy));
        add += 0.6f * (1.f - smoothstep(hr * 0.5f, hr, hd));
        float *c = s->canvas + ((size_t)y * n + x) * 3;
        c[0] += add * 0.95f;
        c[1] += add;
        c[2] += add;
      }
    }
  }
}

/* ---- output ------------------------------------------------------------- */

static void quantise(scene *s, unsigned char *out) {
  crema_rng *r = &s->rng;
  size_t total = (size_t)s->size * s->size * 3;
  float sigma = rng_uniform(r, 0.004f, 0.018f);
  for (size_t i = 0; i < total; i++) {
    /* Triangular noise: cheap and close enough to sensor noise. */
    float noise = ((rng_u32(r) >> 8) + (rng_u32(r) >> 8)) / 16777216.f - 1.f;
    float v = clampf(s->canvas[i] + sigma * 1.7f * noise, 0.f, 1.f);
    out[i] = (unsigned char)(v * 255.f + 0.5f);
  }
}

void synth_sample_free(synth_sample *s) {
  image_free(&s->rgb);
  image_free(&s->mask);
}

static crema_status render_scene(scene *s, synth_sample *out, crema_error *err) {
  CREMA_TRY(scene_alloc(s, err));
  choose_skin(s);
  choose_vignette(s);
  choose_outline(s);
  out->jpeg_quality = 60 + (int)rng_below(&s->rng, 36);
  out->fitzpatrick = s->fitzpatrick;
  s->mask = out->mask.pixels;
  fit_lesion(s);
  pigment_plan plan;
  choose_pigment(s, &plan);
  paint_skin(s);
  lay_pigment(s, &plan);
  scatter_globules(s);
  if (s->force && s->force->streaks)
    draw_streaks(s);
  tint_lesion(s, &plan);
  /* Labelled images leave out the artefacts: at the small sizes a
   * measurement trains on, hair and stickers hide the few pixels a
   * pattern has, and the label is about the patterns. */
  if (!s->force) {
    draw_ink(s);
    draw_ruler(s);
    draw_stickers(s);
    draw_hair(s);
    draw_bubbles(s);
  }
  apply_optics(s);
  quantise(s, out->rgb.pixels);
  return CREMA_OK;
}

static crema_status render(uint32_t seed, uint32_t number, int size, const synth_patterns *force,
                           synth_sample *out, crema_error *err) {
  memset(out, 0, sizeof *out);
  if (size < SYNTH_MIN_SIZE || size > SYNTH_MAX_SIZE)
    return crema_fail(err, CREMA_ERR_INVALID, "image size %d is out of range [%d, %d]", size,
                      SYNTH_MIN_SIZE, SYNTH_MAX_SIZE);
  CREMA_TRY(image_alloc(&out->rgb, size, size, 3, err));
  crema_status st = image_alloc(&out->mask, size, size, 1, err);
  if (st != CREMA_OK) {
    synth_sample_free(out);
    return st;
  }
  scene s;
  memset(&s, 0, sizeof s);
  s.size = size;
  s.scale = size / 256.f;
  s.force = force;
  rng_seed(&s.rng, image_seed(seed, number));
  st = render_scene(&s, out, err);
  scene_free(&s);
  if (st != CREMA_OK)
    synth_sample_free(out);
  return st;
}

crema_status synth_render(uint32_t seed, uint32_t number, int size, synth_sample *out,
                          crema_error *err) {
  return render(seed, number, size, NULL, out, err);
}

const char *synth_class_name(int diagnosis) {
  static const char *const names[SYNTH_NCLASSES] = {"MEL", "NV",  "BCC", "AKIEC",
                                                    "BKL", "DF", "VASC"};
  return diagnosis >= 0 && diagnosis < SYNTH_NCLASSES ? names[diagnosis] : "?";
}

int synth_diagnosis(const synth_patterns *p) {
  if (p->veil || p->streaks)
    return SYNTH_MEL;
  if (p->regression)
    return SYNTH_BKL;
  return SYNTH_NV;
}

/* Patterns for a diagnosis drawn from the image's own stream (apart from
 * the scene's, whose draws keep their order): a melanoma shows a veil or
 * streaks (or both) with other structures at random; a keratosis
 * regression with at most peppering; a nevus a network or globules (or
 * both) and nothing else. */
static void choose_patterns(uint32_t seed, uint32_t number, synth_patterns *p) {
  crema_rng r;
  rng_seed(&r, image_seed(seed, number) ^ 0x5eed1abeu);
  memset(p, 0, sizeof *p);
  const uint32_t pick = rng_below(&r, 3);
  if (pick == 0) {
    p->veil = rng_bernoulli(&r, 0.6f);
    p->streaks = !p->veil || rng_bernoulli(&r, 0.4f);
    p->dots = rng_bernoulli(&r, 0.5f);
    p->network = rng_bernoulli(&r, 0.5f);
    p->globules = rng_bernoulli(&r, 0.3f);
    p->regression = rng_bernoulli(&r, 0.15f);
  } else if (pick == 1) {
    p->regression = 1;
    p->dots = rng_bernoulli(&r, 0.4f);
  } else {
    p->network = rng_bernoulli(&r, 0.7f);
    p->globules = !p->network || rng_bernoulli(&r, 0.3f);
  }
}

crema_status synth_render_labelled(uint32_t seed, uint32_t number, int size, synth_sample *out,
                                   synth_patterns *patterns, crema_error *err) {
  choose_patterns(seed, number, patterns);
  return render(seed, number, size, patterns, out, err);
}

crema_status synth_encode(const synth_sample *s, synth_format format, unsigned char **out,
                          size_t *len, crema_error *err) {
  if (format == SYNTH_JPEG)
    return image_encode_jpeg(&s->rgb, s->jpeg_quality, out, len, err);
  unsigned char *jpeg;
  size_t jpeg_len;
  CREMA_TRY(image_encode_jpeg(&s->rgb, s->jpeg_quality, &jpeg, &jpeg_len, err));
  image decoded;
  crema_status st = image_decode(jpeg, jpeg_len, IMAGE_COLOR, "synthetic JPEG", &decoded, err);
  free(jpeg);
  if (st != CREMA_OK)
    return st;
  st = image_encode_png(&decoded, out, len, err);
  image_free(&decoded);
  return st;
}

void synth_id(uint32_t number, char *buf, size_t size) {
  snprintf(buf, size, "ISIC_%07u", (unsigned)number);
}

/* Written through a temporary name and renamed, so no reader sees half a
 * file; not fsync'd (unlike file_write_atomic): the set can be made again
 * from its seed, and syncing hundreds of small files would dominate. */
static crema_status write_bytes(const char *dir, const char *name, const unsigned char *data,
                                size_t len, crema_error *err) {
  char path[4096], tmp[4200];
  int w = snprintf(path, sizeof path, "%s/%s", dir, name);
  if (w < 0 || (size_t)w >= sizeof path)
    return crema_fail(err, CREMA_ERR_INVALID, "output path '%s/%s' is too long", dir, name);
  snprintf(tmp, sizeof tmp, "%s/.%s.tmp", dir, name);
  FILE *f = fopen(tmp, "wb");
  if (!f)
    return crema_fail(err, CREMA_ERR_IO, "cannot create '%s': %s", tmp, strerror(errno));
  int ok = fwrite(data, 1, len, f) == len;
  ok = (fclose(f) == 0) && ok;
  if (!ok || rename(tmp, path) != 0) {
    int e = errno;
    remove(tmp);
    return crema_fail(err, CREMA_ERR_IO, "cannot write '%s': %s", path, strerror(e));
  }
  return CREMA_OK;
}

static crema_status write_sample(const char *dir, uint32_t number, const synth_sample *s,
                                 synth_format format, crema_error *err) {
  char id[16], name[64];
  synth_id(number, id, sizeof id);
  unsigned char *data;
  size_t len;
  CREMA_TRY(synth_encode(s, format, &data, &len, err));
  snprintf(name, sizeof name, "%s.%s", id, format == SYNTH_JPEG ? "jpg" : "png");
  crema_status st = write_bytes(dir, name, data, len, err);
  free(data);
  if (st != CREMA_OK)
    return st;
  CREMA_TRY(image_encode_png(&s->mask, &data, &len, err));
  snprintf(name, sizeof name, "%s_segmentation.png", id);
  st = write_bytes(dir, name, data, len, err);
  free(data);
  return st;
}

static crema_status check_numbers(uint32_t first, uint32_t count, crema_error *err) {
  if (first > SYNTH_MAX_NUMBER || count > SYNTH_MAX_NUMBER + 1 - first)
    return crema_fail(err, CREMA_ERR_INVALID,
                      "images %u..%u do not fit ISIC's seven-digit identifiers", (unsigned)first,
                      (unsigned)(first + count - 1));
  return CREMA_OK;
}

crema_status synth_write_set(const char *dir, uint32_t seed, uint32_t first, uint32_t count,
                             int size, synth_format format, crema_error *err) {
  CREMA_TRY(check_numbers(first, count, err));
  for (uint32_t k = 0; k < count; k++) {
    synth_sample s;
    CREMA_TRY(synth_render(seed, first + k, size, &s, err));
    crema_status st = write_sample(dir, first + k, &s, format, err);
    synth_sample_free(&s);
    if (st != CREMA_OK)
      return st;
  }
  return CREMA_OK;
}

/* A growing text: the label files are written whole at the end. */
typedef struct text {
  char *s;
  size_t len, cap;
} text;

static crema_status text_add(text *t, crema_error *err, const char *fmt, ...)
    CREMA_PRINTF(3, 4);
static crema_status text_add(text *t, crema_error *err, const char *fmt, ...) {
  char line[256];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  if (n < 0 || (size_t)n >= sizeof line)
    return crema_fail(err, CREMA_ERR_INVALID, "label line too long");
  if (t->len + (size_t)n + 1 > t->cap) {
    size_t cap = t->cap ? 2 * t->cap : 4096;
    while (cap < t->len + (size_t)n + 1)
      cap *= 2;
    char *s = realloc(t->s, cap);
    if (!s)
      return crema_fail(err, CREMA_ERR_NOMEM, "out of memory for the label files");
    t->s = s;
    t->cap = cap;
  }
  memcpy(t->s + t->len, line, (size_t)n + 1);
  t->len += (size_t)n;
  return CREMA_OK;
}

static crema_status label_lines(text *csv, text *pat, text *list, uint32_t number,
                                const synth_patterns *p, synth_format format, crema_error *err) {
  char id[16];
  synth_id(number, id, sizeof id);
  const int d = synth_diagnosis(p);
  CREMA_TRY(text_add(csv, err, "%s", id));
  for (int c = 0; c < SYNTH_NCLASSES; c++)
    CREMA_TRY(text_add(csv, err, ",%s", c == d ? "1.0" : "0.0"));
  CREMA_TRY(text_add(csv, err, "\n"));
  CREMA_TRY(text_add(pat, err, "%s,%d,%d,%d,%d,%d,%d,%s\n", id, p->network, p->globules, p->dots,
                     p->streaks, p->veil, p->regression, synth_class_name(d)));
  return text_add(list, err, "%s.%s %d\n", id, format == SYNTH_JPEG ? "jpg" : "png", d);
}

crema_status synth_write_labelled_set(const char *dir, uint32_t seed, uint32_t first,
                                      uint32_t count, int size, synth_format format,
                                      crema_error *err) {
  CREMA_TRY(check_numbers(first, count, err));
  text csv = {0}, pat = {0}, list = {0};
  crema_status st = text_add(&csv, err, "image,MEL,NV,BCC,AKIEC,BKL,DF,VASC\n");
  if (st == CREMA_OK)
    st = text_add(&pat, err, "image,network,globules,dots,streaks,veil,regression,diagnosis\n");
  for (uint32_t k = 0; k < count && st == CREMA_OK; k++) {
    synth_sample s;
    synth_patterns p;
    if ((st = synth_render_labelled(seed, first + k, size, &s, &p, err)) != CREMA_OK)
      break;
    st = write_sample(dir, first + k, &s, format, err);
    synth_sample_free(&s);
    if (st == CREMA_OK)
      st = label_lines(&csv, &pat, &list, first + k, &p, format, err);
  }
  if (st == CREMA_OK)
    st = write_bytes(dir, "labels.csv", (const unsigned char *)csv.s, csv.len, err);
  if (st == CREMA_OK)
    st = write_bytes(dir, "patterns.csv", (const unsigned char *)pat.s, pat.len, err);
  if (st == CREMA_OK)
    st = write_bytes(dir, "list.txt", (const unsigned char *)list.s, list.len, err);
  free(csv.s);
  free(pat.s);
  free(list.s);
  return st;
}
