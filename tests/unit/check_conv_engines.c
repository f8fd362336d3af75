/* Every convolution engine against a direct (double precision) reference:
 * forward with bias, data gradient and weight gradient, over strides,
 * pads, groups, dilations, odd sizes, partial tiles and multi-block
 * shapes; plus the bounded workspace and the thread team. */
#include "config.h"

#include <check.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/parallel.h"
#include "math/activation.h"
#include "math/conv_engine.h"
#include "math/winograd_points.h"
#include "math/winograd_wgrad.h"

/* "winograd-all" is the Winograd engine's own table, all three operations
 * on every geometry it supports: named, it keeps gemm's gradients where
 * it does not prefer its own, which would leave them untested on narrow
 * shapes. */
static const char *const engine_names[] = {"gemm",      "winograd", "direct",
                                           "depthwise", "auto",     "winograd-all"};
#define N_ENGINES (sizeof engine_names / sizeof engine_names[0])

typedef struct conv_case {
  int c, h, w, k, kh, kw, ph, pw, sh, sw, dh, dw, group;
} conv_case;

static conv_geom geom_of(const conv_case *q) {
  conv_geom g;
  memset(&g, 0, sizeof g);
  g.in = (im2col_shape){q->c, q->h, q->w, q->kh, q->kw, q->ph, q->pw, q->sh, q->sw, q->dh, q->dw,
                        0, 0};
  im2col_out_size(&g.in);
  g.out_channels = q->k;
  g.group = q->group;
  /* The kernels CREMA_SIMD asks for, as a net opened by crema would use. */
  crema_options run;
  crema_options_from_env(&run);
  g.simd = run.simd;
  return g;
}

/* Deterministic values in [-1, 1). */
static void fill(float *x, size_t n, unsigned seed) {
  unsigned s = seed * 2654435761u + 12345u;
  for (size_t i = 0; i < n; i++) {
    s = s * 1103515245u + 12345u;
    x[i] = (float)((s >> 8) & 0xffff) / 32768.0f - 1.0f;
  }
}

/* Calls f(k, cc, i, j, oy, ox, x_index) for every tap that reads the
 * image, as the definition of the convolution. */
#define FOR_EACH_TAP(g, BODY)                                                                   \
  do {                                                                                          \
    const im2col_shape *s_ = &(g)->in;                                                         \
    int cg_ = s_->channels / (g)->group, kg_ = (g)->out_channels / (g)->group;                 \
    for (int k = 0; k < (g)->out_channels; k++)                                                \
      for (int cc = 0; cc < cg_; cc++) {                                                        \
        int c_ = k / kg_ * cg_ + cc;                                                            \
        for (int i = 0; i < s_->kernel_h; i++)                                                  \
          for (int j = 0; j < s_->kernel_w; j++)                                                \
            for (int oy = 0; oy < s_->out_h; oy++) {                                            \
              int iy_ = oy * s_->stride_h - s_->pad_h + i * s_->dilation_h;                     \
              if (iy_ < 0 || iy_ >= s_->height)                                                 \
                continue;                                                                       \
              for (int ox = 0; ox < s_->out_w; ox++) {                                          \
                int ix_ = ox * s_->stride_w - s_->pad_w + j * s_->dilation_w;                   \
                if (ix_ < 0 || ix_ >= s_->width)                                                \
                  continue;                                                                     \
                size_t xi = ((size_t)c_ * s_->height + iy_) * s_->width + ix_;                  \
                size_t wi = (((size_t)k * cg_ + cc) * s_->kernel_h + i) * s_->kernel_w + j;     \
                size_t yi = ((size_t)k * s_->out_h + oy) * s_->out_w + ox;                      \
                BODY;                                                                           \
              }                                                                                 \
            }                                                                                   \
      }                                                                                         \
  } while (0)

static void ref_forward(const conv_geom *g, const float *x, const float *w, const float *b,
                        double *y) {
  size_t ny = (size_t)g->out_channels * g->in.out_h * g->in.out_w;
  size_t plane = (size_t)g->in.out_h * g->in.out_w;
  for (size_t i = 0; i < ny; i++)
    y[i] = b ? b[i / plane] : 0.0;
  FOR_EACH_TAP(g, y[yi] += (double)w[wi] * x[xi]);
}

static void ref_backward_data(const conv_geom *g, const float *dy, const float *w, double *dx) {
  memset(dx, 0, sizeof(double) * g->in.channels * g->in.height * g->in.width);
  FOR_EACH_TAP(g, dx[xi] += (double)w[wi] * dy[yi]);
}

static void ref_backward_weights(const conv_geom *g, const float *x, const float *dy,
                                 const float *w0, double *dw) {
  size_t nw = (size_t)g->out_channels * (g->in.channels / g->group) * g->in.kernel_h *
              g->in.kernel_w;
  for (size_t i = 0; i < nw; i++)
    dw[i] = w0[i];
  FOR_EACH_TAP(g, dw[wi] += (double)x[xi] * dy[yi]);
}

/* max|got - ref| <= tol * max|ref| (Caffe-verify's rule). */
static void expect_close(const float *got, const double *ref, size_t n, double tol,
                         const char *what, const char *engine, int case_no) {
  double max_ref = 0, max_diff = 0;
  for (size_t i = 0; i < n; i++) {
    max_ref = fmax(max_ref, fabs(ref[i]));
    max_diff = fmax(max_diff, fabs(got[i] - ref[i]));
  }
  ck_assert_msg(max_diff <= tol * fmax(max_ref, 1e-30),
                "%s, engine %s, case %d: max diff %g, max %g", what, engine, case_no, max_diff,
                max_ref);
}

/* Forward through a fused ReLU gives exactly Caffe's ReLU of the plain
 * forward, NaN for NaN; a NaN and a -inf bias (Caffe's ReLU gives NaN for
 * -inf) take non-finite values through every output path. */
static void expect_fused_relu(const conv_engine *eng, conv_geom g, const float *x,
                              const float *w, const float *b, float *ws, size_t ny,
                              int case_no) {
  float *bias = malloc((size_t)g.out_channels * sizeof(float));
  float *plain = malloc(ny * sizeof(float)), *fused = malloc(ny * sizeof(float));
  ck_assert(bias && plain && fused);
  memcpy(bias, b, (size_t)g.out_channels * sizeof(float));
  bias[0] = NAN;
  if (g.out_channels > 1)
    bias[g.out_channels - 1] = -INFINITY;
  g.relu = 0;
  eng->forward(&g, x, w, bias, plain, ws);
  g.relu = 1;
  eng->forward(&g, x, w, bias, fused, ws);
  for (size_t i = 0; i < ny; i++) {
    float want = relu_caffe(plain[i], 0.0f);
    int same = isnan(want) ? isnan(fused[i]) : memcmp(&want, &fused[i], sizeof want) == 0;
    ck_assert_msg(same, "fused ReLU, engine %s, case %d, output %zu: %g, want %g", eng->name,
                  case_no, i, fused[i], want);
  }
  free(bias), free(plain), free(fused);
}

static void run_case(const conv_case *q, int case_no) {
  conv_geom g = geom_of(q);
  ck_assert_int_gt(g.in.out_h, 0);
  const im2col_shape *s = &g.in;
  size_t nx = (size_t)s->channels * s->height * s->width;
  size_t ny = (size_t)g.out_channels * s->out_h * s->out_w;
  size_t nw = (size_t)g.out_channels * (s->channels / g.group) * s->kernel_h * s->kernel_w;
  float *x = malloc(nx * sizeof(float)), *w = malloc(nw * sizeof(float));
  float *b = malloc((size_t)g.out_channels * sizeof(float)), *dy = malloc(ny * sizeof(float));
  float *y = malloc(ny * sizeof(float)), *dx = malloc(nx * sizeof(float));
  float *dw = malloc(nw * sizeof(float)), *w0 = malloc(nw * sizeof(float));
  double *ry = malloc(ny * sizeof(double)), *rdx = malloc(nx * sizeof(double));
  double *rdw = malloc(nw * sizeof(double));
  ck_assert(x && w && b && dy && y && dx && dw && w0 && ry && rdx && rdw);
  fill(x, nx, 1 + case_no);
  fill(w, nw, 100 + case_no);
  fill(b, (size_t)g.out_channels, 200 + case_no);
  fill(dy, ny, 300 + case_no);
  fill(w0, nw, 400 + case_no);
  ref_forward(&g, x, w, b, ry);
  ref_backward_data(&g, dy, w, rdx);
  ref_backward_weights(&g, x, dy, w0, rdw);
  for (size_t e = 0; e < N_ENGINES * 3; e++) {
    /* Teams of 1, 2 and 3 threads split the work differently. */
    g.threads = 1 + (int)(e / N_ENGINES);
    conv_engine eng;
    size_t ws_floats = 0;
    const char *name = engine_names[e % N_ENGINES];
    if (!strcmp(name, "winograd-all")) {
      if (!conv_engine_winograd.supports(&g))
        continue;
      eng = conv_engine_winograd;
      ws_floats = eng.workspace(&g);
    } else {
      ck_assert_int_eq(conv_engine_check_name(name, NULL), CREMA_OK);
      conv_engine_resolve(name, &g, &eng, &ws_floats);
    }
    float *ws = malloc((ws_floats ? ws_floats : 1) * sizeof(float));
    ck_assert_ptr_nonnull(ws);
    /* Garbage in the outputs and scratch must not leak into results. */
    fill(ws, ws_floats, 7);
    fill(y, ny, 8);
    fill(dx, nx, 9);
    memcpy(dw, w0, nw * sizeof(float));
    /* Winograd's transforms cost accuracy: allow verify's tolerance. */
    double tol = strcmp(eng.name, "gemm") ? 1e-4 : 2e-5;
    eng.forward(&g, x, w, b, y, ws);
    expect_close(y, ry, ny, tol, "forward", name, case_no);
    expect_fused_relu(&eng, g, x, w, b, ws, ny, case_no);
    eng.backward_data(&g, dy, w, dx, ws);
    expect_close(dx, rdx, nx, tol, "backward data", name, case_no);
    eng.backward_weights(&g, x, dy, dw, ws);
    expect_close(dw, rdw, nw, tol, "backward weights", name, case_no);
    free(ws);
  }
  free(x), free(w), free(b), free(dy), free(y), free(dx), free(dw), free(w0);
  free(ry), free(rdx), free(rdw);
}

static const conv_case cases[] = {
    /* c  h   w   k  kh kw ph pw sh sw dh dw group */
    {3, 8, 8, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1},       /* one tile row, pad 1 */
    {5, 13, 11, 7, 3, 3, 1, 1, 1, 1, 1, 1, 1},     /* partial tiles at both edges */
    {4, 9, 10, 6, 3, 3, 0, 0, 1, 1, 1, 1, 1},      /* no padding */
    {6, 7, 5, 9, 3, 3, 2, 2, 1, 1, 1, 1, 1},       /* pad 2 */
    {4, 6, 9, 5, 3, 3, 2, 0, 1, 1, 1, 1, 1},       /* uneven pads */
    {8, 12, 12, 8, 3, 3, 1, 1, 1, 1, 1, 1, 2},     /* groups */
    {6, 10, 10, 9, 3, 3, 1, 1, 1, 1, 1, 1, 3},     /* 3 groups, odd channel counts */
    {1, 3, 3, 1, 3, 3, 1, 1, 1, 1, 1, 1, 1},       /* single tile */
    {2, 1, 7, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1},       /* one input row */
    {17, 33, 35, 23, 3, 3, 1, 1, 1, 1, 1, 1, 1},   /* several panels, ragged K */
    {1024, 32, 32, 30, 3, 3, 1, 1, 1, 1, 1, 1, 1}, /* several tile and channel blocks */
    {3, 9, 9, 4, 3, 3, 3, 3, 1, 1, 1, 1, 1},       /* pad 3: winograd falls back */
    {4, 11, 9, 5, 3, 3, 1, 1, 2, 2, 1, 1, 1},      /* stride 2 */
    {3, 12, 12, 4, 3, 3, 2, 2, 1, 1, 2, 2, 1},     /* dilation 2 */
    {4, 10, 9, 6, 5, 5, 2, 2, 2, 2, 1, 1, 2},      /* 5x5 stride 2, groups */
    {6, 7, 8, 5, 1, 1, 0, 0, 1, 1, 1, 1, 1},       /* pointwise */
    {4, 7, 8, 6, 1, 1, 0, 0, 1, 1, 1, 1, 2},       /* pointwise, groups */
    {3, 9, 8, 2, 1, 1, 1, 0, 2, 1, 1, 1, 1},       /* 1x1 padded, strided */
    {2, 8, 13, 3, 2, 4, 0, 1, 1, 3, 1, 2, 1},      /* rectangular everything */
    {3, 40, 300, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1},    /* wide rows: several gemm bands */
    {2, 11, 11, 16, 4, 4, 1, 1, 2, 2, 1, 1, 2},    /* deconvolution-like kernel 4 stride 2 */
    {3, 21, 37, 10, 3, 3, 1, 1, 1, 1, 1, 1, 1},    /* direct: ragged channel and column blocks */
    {3, 17, 40, 9, 5, 5, 2, 1, 1, 1, 1, 1, 1},     /* direct: 5x5, uneven pads */
    {1, 9, 20, 5, 7, 2, 3, 0, 1, 1, 1, 1, 1},      /* direct: 7x2 kernel, one channel */
    {3, 150, 160, 32, 3, 3, 1, 1, 1, 1, 1, 1, 1},  /* direct: large enough for the team */
    {16, 23, 22, 16, 8, 8, 2, 2, 4, 4, 1, 1, 16},  /* depthwise: 4x upsampling run backward */
    {5, 9, 10, 5, 3, 3, 2, 1, 1, 1, 2, 2, 5},      /* depthwise: dilated, uneven pads */
    {3, 7, 6, 3, 4, 5, 3, 1, 2, 3, 1, 1, 3},       /* depthwise: pads past the kernel */
    {16, 120, 120, 16, 16, 16, 4, 4, 8, 8, 1, 1, 16}, /* depthwise: large enough for the team */
    {12, 48, 50, 6, 3, 3, 1, 1, 1, 1, 1, 1, 3},    /* gemm: im2col split over the team, groups */
};

START_TEST(test_engines_match_reference) { run_case(&cases[_i], _i); }
END_TEST

/* The portable kernels, whatever this machine supports. */
START_TEST(test_generic_kernels_match_reference) {
  setenv("CREMA_SIMD", "generic", 1);
  run_case(&cases[_i], _i);
  unsetenv("CREMA_SIMD");
}
END_TEST

START_TEST(test_winograd_scope) {
  conv_engine e;
  size_t ws;
  conv_geom g = geom_of(&(conv_case){8, 10, 10, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1});
  conv_engine_resolve("winograd", &g, &e, &ws);
  ck_assert_str_eq(e.name, "winograd");
  conv_engine_resolve("gemm", &g, &e, &ws);
  ck_assert_str_eq(e.name, "gemm");
  conv_geom big = geom_of(&(conv_case){64, 56, 56, 64, 3, 3, 1, 1, 1, 1, 1, 1, 1});
  unsetenv("CREMA_SIMD");
#if defined(__x86_64__) && defined(__GNUC__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    conv_engine_resolve(NULL, &big, &e, &ws);
    ck_assert_str_eq(e.name, "winograd");
  }
#endif
  /* Without vector kernels auto keeps to OpenBLAS. */
  big.simd = CREMA_SIMD_GENERIC;
  conv_engine_resolve(NULL, &big, &e, &ws);
  ck_assert_str_eq(e.name, "gemm");
  /* A first layer (3 channels) goes to the direct engine where it has
   * vector kernels, else to gemm. */
  conv_geom rgb = geom_of(&(conv_case){3, 56, 56, 64, 3, 3, 1, 1, 1, 1, 1, 1, 1});
  rgb.simd = CREMA_SIMD_GENERIC;
  conv_engine_resolve("auto", &rgb, &e, &ws);
  ck_assert_str_eq(e.name, "gemm");
  rgb.simd = CREMA_SIMD_AUTO;
#if defined(__x86_64__) && defined(__GNUC__)
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    conv_engine_resolve("auto", &rgb, &e, &ws);
    ck_assert_str_eq(e.name, "direct");
  }
#endif
  conv_engine_resolve("winograd", &rgb, &e, &ws);
  ck_assert_str_eq(e.name, "winograd");
  conv_geom s2 = geom_of(&(conv_case){8, 10, 10, 8, 3, 3, 1, 1, 2, 2, 1, 1, 1});
  conv_engine_resolve("winograd", &s2, &e, &ws);
  ck_assert_str_eq(e.name, "gemm");
  conv_geom d2 = geom_of(&(conv_case){8, 10, 10, 8, 3, 3, 2, 2, 1, 1, 2, 2, 1});
  conv_engine_resolve("auto", &d2, &e, &ws);
  ck_assert_str_eq(e.name, "gemm");
  crema_error err = {0};
  ck_assert_int_eq(conv_engine_check_name("fft", &err), CREMA_ERR_INVALID);
  ck_assert_ptr_nonnull(strstr(err.message, "winograd"));
}
END_TEST

/* Scratch stays bounded however large the image: VGG's conv1_2 at 224
 * and 896 (Caffe's column buffer: 115 MB and 1.8 GB).  Engines may give
 * each thread its own (16 MB at most). */
START_TEST(test_workspace_bounded) {
  const int sizes[] = {224, 896};
  for (size_t e = 0; e < N_ENGINES - 1; e++) /* the named engines */
    for (int i = 0; i < 2; i++) {
      conv_geom g = geom_of(&(conv_case){64, sizes[i], sizes[i], 64, 3, 3, 1, 1, 1, 1, 1, 1, 1});
      conv_geom deep =
          geom_of(&(conv_case){512, sizes[i] / 8, sizes[i] / 8, 512, 3, 3, 1, 1, 1, 1, 1, 1, 1});
      g.threads = deep.threads = 2;
      conv_engine eng;
      size_t ws1, ws2;
      conv_engine_resolve(engine_names[e], &g, &eng, &ws1);
      conv_engine_resolve(engine_names[e], &deep, &eng, &ws2);
      const size_t bound = (size_t)g.threads * (4 << 20);
      ck_assert_msg(ws1 <= bound && ws2 <= bound,
                    "engine %s at %d: %zu and %zu floats", engine_names[e], sizes[i], ws1, ws2);
    }
}
END_TEST

/* The Winograd weight gradient on its own, whatever auto picks: against
 * the reference and against the gemm engine (verify's tolerance), with
 * w_diff accumulated into and garbage in the scratch. */
static const conv_case wgrad_cases[] = {
    /* c  h   w   k  kh kw ph pw sh sw dh dw group */
    {5, 13, 11, 7, 3, 3, 1, 1, 1, 1, 1, 1, 1},     /* partial tiles at both edges */
    {4, 9, 10, 6, 3, 3, 0, 0, 1, 1, 1, 1, 1},      /* no padding */
    {6, 7, 5, 9, 3, 3, 2, 2, 1, 1, 1, 1, 1},       /* pad 2 */
    {4, 6, 9, 5, 3, 3, 2, 0, 1, 1, 1, 1, 1},       /* uneven pads */
    {1, 3, 3, 1, 3, 3, 1, 1, 1, 1, 1, 1, 1},       /* single tile */
    {2, 1, 7, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1},       /* one input row */
    {6, 10, 10, 9, 3, 3, 1, 1, 1, 1, 1, 1, 3},     /* 3 groups, odd channel counts */
    {17, 33, 35, 23, 3, 3, 1, 1, 1, 1, 1, 1, 1},   /* ragged panels and rows of 6 */
    {3, 71, 69, 13, 3, 3, 1, 1, 1, 1, 1, 1, 1},    /* several tile blocks */
    {40, 30, 31, 20, 3, 3, 2, 1, 1, 1, 1, 1, 2},   /* groups, several panels */
    {1030, 15, 14, 31, 3, 3, 1, 1, 1, 1, 1, 1, 1}, /* several blocks and passes */
    {64, 14, 14, 64, 3, 3, 1, 1, 1, 1, 1, 1, 1},   /* VGG's deepest size, scaled down */
    {18, 21, 150, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1},   /* rows of 16 whole tiles, and ragged */
    /* Large enough for a team: members split the tiles (several blocks
     * each, groups) or, with few tiles, the output channels. */
    {16, 130, 130, 40, 3, 3, 1, 1, 1, 1, 1, 1, 1},
    {96, 66, 70, 48, 3, 3, 1, 1, 1, 1, 1, 1, 2},
    {512, 20, 20, 96, 3, 3, 1, 1, 1, 1, 1, 1, 2},
    /* 196 tiles, one block only once the pass is narrowed to fit Mdy. */
    {16, 56, 56, 120, 3, 3, 1, 1, 1, 1, 1, 1, 1},
};

static void run_wgrad_case(const conv_case *q, int case_no) {
  conv_geom g = geom_of(q);
  const im2col_shape *s = &g.in;
  size_t nx = (size_t)s->channels * s->height * s->width;
  size_t ny = (size_t)g.out_channels * s->out_h * s->out_w;
  size_t nw = (size_t)g.out_channels * (s->channels / g.group) * 9;
  float *x = malloc(nx * sizeof(float)), *dy = malloc(ny * sizeof(float));
  float *w0 = malloc(nw * sizeof(float)), *dw = malloc(nw * sizeof(float));
  float *gw = malloc(nw * sizeof(float));
  double *rdw = malloc(nw * sizeof(double)), *gref = malloc(nw * sizeof(double));
  ck_assert(x && dy && w0 && dw && gw && rdw && gref);
  fill(x, nx, 11 + case_no);
  fill(dy, ny, 12 + case_no);
  fill(w0, nw, 13 + case_no);
  ref_backward_weights(&g, x, dy, w0, rdw);
  size_t gws = conv_engine_gemm.workspace(&g);
  float *ws_gemm = malloc((gws ? gws : 1) * sizeof(float));
  ck_assert_ptr_nonnull(ws_gemm);
  memcpy(gw, w0, nw * sizeof(float));
  conv_engine_gemm.backward_weights(&g, x, dy, gw, ws_gemm);
  for (size_t i = 0; i < nw; i++)
    gref[i] = gw[i];
  for (int th = 1; th <= 3; th++) {
    g.threads = th;
    size_t wsf = wino_wgrad_workspace(&g);
    ck_assert_uint_le(wsf, (size_t)th * (4 << 20));
    /* Many threads share about two threads' budgets. */
    g.threads = 64;
    ck_assert_uint_le(wino_wgrad_workspace(&g), (size_t)16 << 20);
    g.threads = th;
    float *ws = malloc(wsf * sizeof(float));
    ck_assert_ptr_nonnull(ws);
    fill(ws, wsf, 5);
    memcpy(dw, w0, nw * sizeof(float));
    wino_backward_weights(&g, x, dy, dw, ws);
    expect_close(dw, rdw, nw, 1e-4, "winograd weights vs reference", "winograd", case_no);
    expect_close(dw, gref, nw, 1e-4, "winograd weights vs gemm", "winograd", case_no);
    /* Members are dealt work as they come free; the sums must not depend
     * on who did what. */
    memcpy(gw, w0, nw * sizeof(float));
    fill(ws, wsf, 6);
    wino_backward_weights(&g, x, dy, gw, ws);
    ck_assert_msg(memcmp(gw, dw, nw * sizeof(float)) == 0,
                  "case %d, %d threads: a second run differs", case_no, th);
    free(ws);
  }
  free(ws_gemm);
  free(x), free(dy), free(w0), free(dw), free(gw), free(rdw), free(gref);
}

START_TEST(test_winograd_weight_gradient) { run_wgrad_case(&wgrad_cases[_i], _i); }
END_TEST

/* Which weight gradient auto takes: Winograd's from 12x12 outputs up,
 * SGEMM's below; depthwise layers go to their own engine. */
START_TEST(test_weight_gradient_choice) {
  conv_engine e;
  size_t ws;
  conv_geom dw = geom_of(&(conv_case){16, 224, 224, 16, 32, 32, 8, 8, 16, 16, 1, 1, 16});
  conv_engine_resolve(NULL, &dw, &e, &ws);
  ck_assert_str_eq(e.name, "depthwise");
  conv_engine_resolve("gemm", &dw, &e, &ws);
  ck_assert_str_eq(e.name, "gemm");
  unsetenv("CREMA_SIMD");
  __builtin_cpu_init();
  if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma"))
    return;
  conv_geom big = geom_of(&(conv_case){512, 28, 28, 512, 3, 3, 1, 1, 1, 1, 1, 1, 1});
  conv_geom tiny = geom_of(&(conv_case){512, 10, 10, 512, 3, 3, 1, 1, 1, 1, 1, 1, 1});
  conv_geom side = geom_of(&(conv_case){512, 14, 14, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1});
  conv_geom deep = geom_of(&(conv_case){512, 14, 14, 512, 3, 3, 1, 1, 1, 1, 1, 1, 1});
  conv_engine_resolve(NULL, &big, &e, &ws);
  ck_assert(e.backward_weights == wino_backward_weights);
  ck_assert_uint_ge(ws, wino_wgrad_workspace(&big));
  /* Whatever auto takes for the other two operations there. */
  conv_engine_resolve(NULL, &tiny, &e, &ws);
  ck_assert(e.backward_weights == conv_engine_gemm.backward_weights);
  ck_assert_uint_ge(ws, conv_engine_gemm.workspace(&tiny));
  /* Named, Winograd keeps to its gradients' preferences too. */
  conv_engine_resolve("winograd", &tiny, &e, &ws);
  ck_assert_str_eq(e.name, "winograd");
  ck_assert(e.forward == conv_engine_winograd.forward);
  ck_assert(e.backward_data == conv_engine_gemm.backward_data);
  ck_assert(e.backward_weights == conv_engine_gemm.backward_weights);
  ck_assert_uint_ge(ws, conv_engine_gemm.workspace(&tiny));
  conv_geom narrow = geom_of(&(conv_case){8, 48, 48, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1});
  conv_engine_resolve("winograd", &narrow, &e, &ws);
  ck_assert_str_eq(e.name, "winograd");
  ck_assert(e.forward == conv_engine_winograd.forward);
  ck_assert(e.backward_data == conv_engine_gemm.backward_data);
  ck_assert(e.backward_weights == conv_engine_gemm.backward_weights);
  conv_engine_resolve("winograd", &big, &e, &ws);
  ck_assert(e.backward_data == conv_engine_winograd.backward_data);
  ck_assert(e.backward_weights == wino_backward_weights);
  conv_engine_resolve(NULL, &side, &e, &ws);
  ck_assert(e.backward_weights == wino_backward_weights);
  conv_engine_resolve(NULL, &deep, &e, &ws);
  ck_assert(e.backward_weights == wino_backward_weights);
  ck_assert(!wino_wgrad_preferred(&tiny));
}
END_TEST

START_TEST(test_winograd_weight_gradient_generic) {
  setenv("CREMA_SIMD", "generic", 1);
  run_wgrad_case(&wgrad_cases[_i], _i);
  unsetenv("CREMA_SIMD");
}
END_TEST

/* The hand-written one-dimensional transforms of math/winograd_points.h
 * are its tables, and the tables make a correct F(4,3): A^T[(G g) .
 * (B^T d)] is the correlation of d with g. */
START_TEST(test_winograd_points) {
  for (int j = 0; j < 6; j++) {
    v8 e[6] = {{0}};
    e[j][0] = 1.0f;
    v8 o[6];
    wino_input_1d(e[0], e[1], e[2], e[3], e[4], e[5], o, 1);
    for (int i = 0; i < 6; i++)
      ck_assert_msg(fabs(o[i][0] - wino_bt[i][j]) < 1e-6, "B^T[%d][%d]", i, j);
    wino_output_1d(e[0], e[1], e[2], e[3], e[4], e[5], o);
    for (int i = 0; i < 4; i++)
      ck_assert_msg(fabs(o[i][0] - wino_at[i][j]) < 1e-6, "A^T[%d][%d]", i, j);
    wino_filter_grad_1d(e[0], e[1], e[2], e[3], e[4], e[5], o, 1);
    for (int k = 0; k < 3; k++)
      ck_assert_msg(fabs(o[k][0] - wino_g[j][k]) < 1e-6, "G^T[%d][%d]", k, j);
    if (j < 3)
      for (int i = 0; i < 6; i++)
        ck_assert_msg(fabs(wino_filter_comp(i, e[0], e[1], e[2])[0] - wino_g[i][j]) < 1e-6,
                      "G[%d][%d]", i, j);
    if (j < 4) {
      wino_grad_1d(e[0], e[1], e[2], e[3], o, 1);
      for (int i = 0; i < 6; i++)
        ck_assert_msg(fabs(o[i][0] - wino_at[j][i]) < 1e-6, "A[%d][%d]", i, j);
    }
  }
  for (int trial = 0; trial < 20; trial++) {
    float d[6], g[3];
    fill(d, 6, 500 + trial);
    fill(g, 3, 600 + trial);
    double m[6];
    for (int a = 0; a < 6; a++) {
      double bd = 0, gg = 0;
      for (int j = 0; j < 6; j++)
        bd += wino_bt[a][j] * d[j];
      for (int k = 0; k < 3; k++)
        gg += wino_g[a][k] * g[k];
      m[a] = bd * gg;
    }
    for (int i = 0; i < 4; i++) {
      double y = 0, want = 0;
      for (int a = 0; a < 6; a++)
        y += wino_at[i][a] * m[a];
      for (int k = 0; k < 3; k++)
        want += (double)g[k] * d[i + k];
      ck_assert_msg(fabs(y - want) < 1e-12, "output %d: %g, want %g", i, y, want);
    }
  }
}
END_TEST

/* max|got - ref| / max|ref|. */
static double rel_error(const float *got, const double *ref, size_t n) {
  double max_ref = 0, max_diff = 0;
  for (size_t i = 0; i < n; i++) {
    max_ref = fmax(max_ref, fabs(ref[i]));
    max_diff = fmax(max_diff, fabs(got[i] - ref[i]));
  }
  return max_diff / fmax(max_ref, 1e-30);
}

/* On a deep VGG-like layer (ReLU outputs in, MSRA-scaled filters, 512
 * channels) Winograd's three operations stay within a few times gemm's
 * error against the float64 definition: with the classic points 0, +-1,
 * +-2 they were 5-30 times further off, enough for full-width nets to
 * leave the golden tolerance against Caffe. */
static void check_winograd_accuracy(void) {
  conv_geom g = geom_of(&(conv_case){512, 14, 14, 12, 3, 3, 1, 1, 1, 1, 1, 1, 1});
  const im2col_shape *s = &g.in;
  size_t nx = (size_t)s->channels * s->height * s->width;
  size_t ny = (size_t)g.out_channels * s->out_h * s->out_w;
  size_t nw = (size_t)g.out_channels * s->channels * 9;
  float *x = malloc(nx * sizeof(float)), *w = malloc(nw * sizeof(float));
  float *dy = malloc(ny * sizeof(float)), *out = malloc(nx * sizeof(float));
  float *zero = calloc(nw, sizeof(float));
  double *ry = malloc(ny * sizeof(double)), *rdx = malloc(nx * sizeof(double));
  double *rdw = malloc(nw * sizeof(double));
  ck_assert(x && w && dy && out && zero && ry && rdx && rdw);
  fill(x, nx, 31);
  for (size_t i = 0; i < nx; i++)
    x[i] = x[i] > 0 ? x[i] : 0.0f;
  fill(w, nw, 32);
  for (size_t i = 0; i < nw; i++)
    w[i] *= 0.036f; /* sqrt(2 / (9 * 512)) * sqrt(3): uniform with MSRA's variance */
  fill(dy, ny, 33);
  ref_forward(&g, x, w, NULL, ry);
  ref_backward_data(&g, dy, w, rdx);
  ref_backward_weights(&g, x, dy, zero, rdw);
  double err[2][3];
  const conv_engine *engines[2] = {&conv_engine_gemm, &conv_engine_winograd};
  for (int e = 0; e < 2; e++) {
    size_t wsf = engines[e]->workspace(&g);
    float *ws = malloc(wsf * sizeof(float));
    ck_assert_ptr_nonnull(ws);
    engines[e]->forward(&g, x, w, NULL, out, ws);
    err[e][0] = rel_error(out, ry, ny);
    engines[e]->backward_data(&g, dy, w, out, ws);
    err[e][1] = rel_error(out, rdx, nx);
    float *dw = calloc(nw, sizeof(float));
    ck_assert_ptr_nonnull(dw);
    engines[e]->backward_weights(&g, x, dy, dw, ws);
    err[e][2] = rel_error(dw, rdw, nw);
    free(dw), free(ws);
  }
  /* Measured with AVX2 (portable kernels): gemm 3.3e-7, 1.3e-7, 3.4e-7;
   * Winograd 1.0e-6 (1.2e-6), 1.1e-6 (1.3e-6), 1.2e-6 (1.2e-6); with the
   * points 0, +-1, +-2 it was 4.1e-6 (5.2e-6), 3.8e-6 (3.3e-6), 1.9e-6
   * (1.9e-6). */
  const char *what[3] = {"forward", "backward data", "backward weights"};
  const double bound[3] = {2e-6, 2e-6, 1.6e-6};
  for (int o = 0; o < 3; o++)
    ck_assert_msg(err[1][o] < bound[o], "%s: winograd rel error %g (gemm %g), want < %g",
                  what[o], err[1][o], err[0][o], bound[o]);
  free(x), free(w), free(dy), free(out), free(zero), free(ry), free(rdx), free(rdw);
}

START_TEST(test_winograd_accuracy) {
  check_winograd_accuracy();
  setenv("CREMA_SIMD", "generic", 1);
  check_winograd_accuracy();
  unsetenv("CREMA_SIMD");
}
END_TEST

typedef struct team_test {
  int counts[8][4];
} team_test;

static void team_body(par_team *team, int tid, int nth, void *ctx) {
  team_test *t = ctx;
  for (int phase = 0; phase < 4; phase++) {
    /* Every member sees all of the previous phase's writes. */
    for (int m = 0; m < nth && phase > 0; m++)
      ck_assert_int_eq(t->counts[m][phase - 1], phase);
    t->counts[tid][phase] = phase + 1;
    par_sync(team);
  }
}

START_TEST(test_parallel_team) {
  for (int n = 1; n <= 5; n++) {
    team_test t;
    memset(&t, 0, sizeof t);
    par_run(n, team_body, &t);
    long covered = 0;
    for (int tid = 0; tid < n; tid++) {
      long lo, hi;
      par_split(37, tid, n, &lo, &hi);
      ck_assert_int_eq(lo, covered);
      covered = hi;
    }
    ck_assert_int_eq(covered, 37);
  }
  ck_assert_int_ge(par_threads(), 1);
}
END_TEST

/* Which members ran, and the team size each saw. */
typedef struct roll_call {
  atomic_int seen[PAR_MAX_THREADS];
  atomic_int size_mismatch;
  int expect;
  int nested_team; /* size of a team started inside a member */
} roll_call;

static void nested_body(par_team *team, int tid, int nth, void *ctx) {
  roll_call *r = ctx;
  if (tid == 0)
    r->nested_team = nth;
}

static void roll_body(par_team *team, int tid, int nth, void *ctx) {
  roll_call *r = ctx;
  /* Workers finish late, so a job that returned before them shows. */
  for (volatile int spin = 0; tid > 0 && spin < 20000; spin++)
    ;
  atomic_fetch_add(&r->seen[tid], 1);
  if (nth != r->expect)
    atomic_fetch_add(&r->size_mismatch, 1);
  if (tid == nth - 1) {
    roll_call inner = {.expect = 0, .nested_team = -1};
    par_run(4, nested_body, &inner);
    r->nested_team = inner.nested_team;
  }
}

/* Runs teams of sizes 1..5 and back many times; returns the failures. */
static int roll_calls(int rounds) {
  int bad = 0;
  for (int k = 0; k < rounds; k++) {
    int n = 1 + (k * 7) % 5;
    roll_call r = {.expect = n, .nested_team = -1};
    par_run(n, roll_body, &r);
    for (int t = 0; t < PAR_MAX_THREADS; t++)
      bad += atomic_load(&r.seen[t]) != (t < n);
    bad += atomic_load(&r.size_mismatch) != 0;
    /* A team started by a member runs on that member alone. */
    bad += r.nested_team != 1;
  }
  return bad;
}

static void *roll_thread(void *arg) {
  *(int *)arg = roll_calls(200);
  return NULL;
}

/* The workers persist between jobs (and grow with the requested size):
 * every job still runs each member exactly once, with the size asked
 * for; threads that call in at once each get their own workers, and a
 * caller thread that exits takes its workers with it. */
START_TEST(test_parallel_pool_reuse) {
  /* Workers started when the pool grows after some jobs must not take
   * part in jobs older than themselves. */
  for (int n = 2; n <= 5; n++)
    for (int k = 0; k < 3; k++) {
      roll_call r = {.expect = n, .nested_team = -1};
      par_run(n, roll_body, &r);
      for (int t = 0; t < PAR_MAX_THREADS; t++)
        ck_assert_int_eq(atomic_load(&r.seen[t]), t < n);
    }
  ck_assert_int_eq(roll_calls(500), 0);
  pthread_t th[3];
  int bad[3];
  for (int i = 0; i < 3; i++)
    ck_assert_int_eq(pthread_create(&th[i], NULL, roll_thread, &bad[i]), 0);
  for (int i = 0; i < 3; i++) {
    pthread_join(th[i], NULL);
    ck_assert_int_eq(bad[i], 0);
  }
  ck_assert_int_eq(roll_calls(50), 0);
}
END_TEST

/* A child forked after the parent's workers started gets workers of its
 * own (the parent's do not exist in it). */
START_TEST(test_parallel_after_fork) {
  ck_assert_int_eq(roll_calls(20), 0);
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0)
    _exit(roll_calls(20) == 0 ? 0 : 1);
  int status = 0;
  ck_assert_int_eq(waitpid(pid, &status, 0), pid);
  ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}
END_TEST

typedef struct cover {
  atomic_int *hits;
  atomic_int calls;
} cover;

static void cover_range(long lo, long hi, void *ctx) {
  cover *c = ctx;
  atomic_fetch_add(&c->calls, 1);
  for (long i = lo; i < hi; i++)
    atomic_fetch_add(&c->hits[i], 1);
}

/* par_for visits every index once, in one call below its threshold. */
START_TEST(test_parallel_for) {
  const long sizes[] = {0, 1, 5, 1000, 300001};
  for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
    long n = sizes[k];
    cover c = {calloc((size_t)n + 1, sizeof(atomic_int)), 0};
    ck_assert_ptr_nonnull(c.hits);
    par_for(n, 1000, cover_range, &c);
    for (long i = 0; i < n; i++)
      ck_assert_int_eq(atomic_load(&c.hits[i]), 1);
    if (n > 0 && n < 1000)
      ck_assert_int_eq(atomic_load(&c.calls), 1);
    if (n == 0)
      ck_assert_int_eq(atomic_load(&c.calls), 0);
    free(c.hits);
  }
}
END_TEST

/* A dealer hands every item to exactly one member, then -1 to all. */
typedef struct deal_job {
  par_dealer dealer;
  atomic_int *hits;
  atomic_int ends;
} deal_job;

static void deal_member(par_team *team, int tid, int nthreads, void *ctx) {
  deal_job *j = ctx;
  long i;
  while ((i = par_deal(&j->dealer)) >= 0)
    atomic_fetch_add(&j->hits[i], 1);
  ck_assert_int_eq(par_deal(&j->dealer), -1);
  atomic_fetch_add(&j->ends, 1);
}

START_TEST(test_parallel_dealer) {
  enum { ITEMS = 5000 };
  for (int th = 1; th <= 3; th++) {
    deal_job j = {.hits = calloc(ITEMS, sizeof(atomic_int))};
    ck_assert_ptr_nonnull(j.hits);
    par_dealer_reset(&j.dealer, ITEMS);
    par_run(th, deal_member, &j);
    for (int i = 0; i < ITEMS; i++)
      ck_assert_int_eq(atomic_load(&j.hits[i]), 1);
    ck_assert_int_ge(atomic_load(&j.ends), 1);
    free(j.hits);
  }
}
END_TEST

/* A job started inside a job runs on its member alone, with scratch and
 * parts planned for the whole team: the weight gradient must come out the
 * same bits as when the team runs it. */
typedef struct nested_wgrad {
  const conv_geom *g;
  const float *x, *dy;
  float *dw, *ws;
} nested_wgrad;

static void nested_wgrad_member(par_team *team, int tid, int nthreads, void *ctx) {
  const nested_wgrad *q = ctx;
  if (tid == 0)
    wino_backward_weights(q->g, q->x, q->dy, q->dw, q->ws);
}

START_TEST(test_winograd_weight_gradient_nested) {
  static const conv_case nested[] = {
      {64, 28, 28, 64, 3, 3, 1, 1, 1, 1, 1, 1, 1},   /* members split the channels */
      {16, 100, 100, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1}, /* slices of tiles */
  };
  for (size_t c = 0; c < sizeof nested / sizeof nested[0]; c++) {
    conv_geom g = geom_of(&nested[c]);
    g.threads = 2;
    const im2col_shape *s = &g.in;
    size_t nx = (size_t)s->channels * s->height * s->width;
    size_t ny = (size_t)g.out_channels * s->out_h * s->out_w;
    size_t nw = (size_t)g.out_channels * s->channels * 9, wsf = wino_wgrad_workspace(&g);
    float *x = malloc(nx * sizeof(float)), *dy = malloc(ny * sizeof(float));
    float *a = calloc(nw, sizeof(float)), *b = calloc(nw, sizeof(float));
    float *ws = malloc(wsf * sizeof(float));
    ck_assert(x && dy && a && b && ws);
    fill(x, nx, 31);
    fill(dy, ny, 32);
    fill(ws, wsf, 7);
    wino_backward_weights(&g, x, dy, a, ws);
    fill(ws, wsf, 8);
    nested_wgrad q = {&g, x, dy, b, ws};
    par_run(2, nested_wgrad_member, &q);
    ck_assert_msg(!memcmp(a, b, nw * sizeof(float)), "case %zu: nested run differs", c);
    free(x), free(dy), free(a), free(b), free(ws);
  }
}
END_TEST

/* Winograd's blocking: half panels, channel passes, chunks of output
 * channels, members splitting the tiles, the vector paths of long tile
 * rows with each padding, with its AVX2 and portable kernels. */
static const conv_case wino_cases[] = {
    /* c  h   w   k  kh kw ph pw sh sw dh dw group */
    {16, 28, 28, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1},  /* 49 tiles: a half panel */
    {20, 70, 45, 13, 3, 3, 1, 1, 1, 1, 1, 1, 1},  /* members split the tiles */
    {9, 30, 130, 14, 3, 3, 0, 0, 1, 1, 1, 1, 1},  /* long tile rows, no padding */
    {12, 35, 70, 10, 3, 3, 2, 2, 1, 1, 1, 1, 1},  /* long tile rows, pad 2 */
    {11, 34, 66, 7, 3, 3, 0, 1, 1, 1, 1, 1, 1},   /* uneven pads */
    {130, 20, 20, 40, 3, 3, 1, 1, 1, 1, 1, 1, 1}, /* two channel passes, row chunks */
    {16, 40, 70, 16, 3, 3, 1, 1, 1, 1, 1, 1, 2},  /* groups, split tiles */
};

START_TEST(test_winograd_blocking) {
  run_case(&wino_cases[_i], 100 + _i);
  setenv("CREMA_SIMD", "generic", 1);
  run_case(&wino_cases[_i], 200 + _i);
  unsetenv("CREMA_SIMD");
}
END_TEST

static Suite *conv_engines_suite(void) {
  Suite *s = suite_create("conv_engines");
  TCase *t = tcase_create("engines");
  tcase_set_timeout(t, 600);
  tcase_add_loop_test(t, test_engines_match_reference, 0, sizeof cases / sizeof cases[0]);
  /* The multi-block case is covered by the dispatching run above. */
  tcase_add_loop_test(t, test_generic_kernels_match_reference, 0, 10);
  tcase_add_loop_test(t, test_winograd_blocking, 0, sizeof wino_cases / sizeof wino_cases[0]);
  tcase_add_test(t, test_winograd_scope);
  tcase_add_loop_test(t, test_winograd_weight_gradient, 0,
                      sizeof wgrad_cases / sizeof wgrad_cases[0]);
  tcase_add_loop_test(t, test_winograd_weight_gradient_generic, 0, 9);
  tcase_add_test(t, test_weight_gradient_choice);
  tcase_add_test(t, test_workspace_bounded);
  tcase_add_test(t, test_parallel_team);
  tcase_add_test(t, test_parallel_pool_reuse);
  tcase_add_test(t, test_parallel_after_fork);
  tcase_add_test(t, test_parallel_for);
  tcase_add_test(t, test_parallel_dealer);
  tcase_add_test(t, test_winograd_weight_gradient_nested);
  suite_add_tcase(s, t);
  TCase *a = tcase_create("accuracy");
  tcase_add_test(a, test_winograd_points);
  tcase_add_test(a, test_winograd_accuracy);
  suite_add_tcase(s, a);
  return s;
}

int main(void) {
  SRunner *r = srunner_create(conv_engines_suite());
  srunner_run_all(r, CK_NORMAL);
  int failed = srunner_ntests_failed(r);
  srunner_free(r);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
