/* LceBconv2d: prepare (filter repacking, output transform constants, scratch) and two
 * ways to run it:
 *
 * - the fast path, where the code path has a tile kernel (NEON) and the op has one group
 *   and no zero padding to correct: each output pixel's receptive field is read in place
 *   (direct addressing) from the input, or from a copy of it with its padding rows and
 *   columns when it has padding, as a few contiguous segments (one per filter row, or per
 *   tap when dilated); the tile kernel takes tile_rows pixels (of the flattened output, so
 *   a tile may span output rows and a small map wastes no work) times all channels, and
 *   applies the output transform to the counts in its registers. A segment length the
 *   kernel cannot step through (an odd number of words) is copied into a padded row per
 *   pixel first (im2col), in whole segments;
 * - the general path (every other op): per output row an im2col copy, the code path's
 *   binary GEMM into a counts buffer and the output transform of transform.c. */
#include "bnn.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void free_conv(Kernel* k) {
  free(k->filter);
  free(k->tap_pop);
  free(k->multiplier);
  free(k->bias);
  free(k->threshold);
  free(k->scratch);
  free(k->counts);
  free(k->xpad);
  free(k->seg_off);
  free(k->kseg_off);
  free(k->packed);
  k->filter = k->scratch = k->xpad = k->packed = NULL;
  k->tap_pop = k->threshold = k->counts = k->seg_off = k->kseg_off = NULL;
  k->multiplier = k->bias = NULL;
  k->fast = 0;
}

/* Sets up the fast path when the code path has one and the op fits it (its tile kernels write
 * float32 or bit-packed outputs; int8 outputs take the general path); 0: use the general path,
 * -1: out of memory. */
static int setup_fast(Kernel* k, TfLiteType out_type) {
  const OpParams* p = &k->p;
  const CodePath* path = k->path;
  const int kh = p->filter_h, kw = p->filter_w;
  if (!path || !path->tile || k->groups != 1 || k->ktot > path->max_k_bits) return 0;
  if (out_type != kTfLiteFloat32 && !(out_type == kTfLiteInt32 && k->bitpacked_out)) return 0;
  int rows_read = (k->out_h - 1) * p->stride_h + (kh - 1) * p->dil_h + 1;
  int cols_read = (k->out_w - 1) * p->stride_w + (kw - 1) * p->dil_w + 1;
  int padded = k->pad_top > 0 || k->pad_left > 0 || rows_read > k->in_h + k->pad_top ||
               cols_read > k->in_w + k->pad_left;
  if (padded && p->pad_values == 0) return 0; /* zero padding: border pixels need corrections */
  k->hp = padded ? (rows_read > k->in_h + k->pad_top ? rows_read : k->in_h + k->pad_top) : k->in_h;
  k->wp = padded ? (cols_read > k->in_w + k->pad_left ? cols_read : k->in_w + k->pad_left) : k->in_w;
  if (padded) { /* zero words (+1 values) around the input, copied in at every invoke */
    k->xpad = (uint32_t*)aligned(sizeof(uint32_t) * (size_t)k->batch * k->hp * k->wp * k->in_words);
    if (!k->xpad) return -1;
  }
  /* segments: a filter row's taps are contiguous in memory unless dilated */
  k->nseg = p->dil_w == 1 ? kh : kh * kw;
  k->seg_words = p->dil_w == 1 ? kw * k->in_words : k->in_words;
  k->seg_off = (int32_t*)malloc(sizeof(int32_t) * k->nseg);
  if (!k->seg_off) return -1;
  for (int s = 0; s < k->nseg; s++) {
    int ky = p->dil_w == 1 ? s : s / kw, kx = p->dil_w == 1 ? 0 : s % kw;
    k->seg_off[s] = (int32_t)(((size_t)ky * p->dil_h * k->wp + (size_t)kx * p->dil_w) * k->in_words);
  }
  int rest = k->seg_words % path->step_words;
  k->im2col = rest != 0 && rest != path->tail_words;
  if (k->im2col) { /* one kernel segment: the copied row, padded to whole steps */
    int words = k->nseg * k->seg_words;
    k->kpad = (words + path->step_words - 1) / path->step_words * path->step_words;
    k->knseg = 1;
    k->kseg_words = k->kpad;
    k->kseg_off = (int32_t*)calloc(1, sizeof(int32_t));
  } else {
    k->kpad = k->nseg * k->seg_words;
    k->knseg = k->nseg;
    k->kseg_words = k->seg_words;
    k->kseg_off = (int32_t*)malloc(sizeof(int32_t) * k->nseg);
    if (k->kseg_off) memcpy(k->kseg_off, k->seg_off, sizeof(int32_t) * k->nseg);
  }
  if (!k->kseg_off) return -1;
  path->pack(k);
  if (!k->packed) return -1;
  k->threads = k->pool ? k->pool->threads : 1;
  k->scratch_per_thread = k->im2col ? path->tile_rows * k->kpad : 0;
  if (k->im2col) {
    k->scratch = (uint32_t*)aligned(sizeof(uint32_t) * (size_t)k->threads * k->scratch_per_thread);
    if (!k->scratch) return -1;
  }
  k->fast = 1;
  return 1;
}

TfLiteStatus prepare_bconv(TfLiteContext* ctx, Kernel* k) {
  const OpParams* p = &k->p;
  TfLiteTensor* in = &ctx->tensors[k->inputs[0]];
  const TfLiteTensor* filt = optional_input(ctx, k, 1);
  TfLiteTensor* out = &ctx->tensors[k->output];
  free_conv(k);
  if (in->type != kTfLiteInt32 || !in->dims || in->dims->size != 4)
    return fail(ctx, "LceBconv2d: input must be bit-packed int32 NHWC (got type %d)", in->type);
  if (!filt || !filt->dims || filt->dims->size != 4 || !filt->data.raw)
    return fail(ctx, "LceBconv2d: the filter must be a constant 4-D tensor");
  if (filt->type != kTfLiteInt32 && filt->type != kTfLiteFloat32)
    return fail(ctx, "LceBconv2d: filter type %d is not implemented", filt->type);
  k->batch = in->dims->data[0];
  k->in_h = in->dims->data[1];
  k->in_w = in->dims->data[2];
  k->in_words = in->dims->data[3];
  k->out_c = filt->dims->data[0];
  int kh = filt->dims->data[1], kw = filt->dims->data[2], fdepth = filt->dims->data[3];
  int cin = p->channels_in;
  if ((cin + 31) / 32 != k->in_words)
    return fail(ctx, "LceBconv2d: channels_in=%d does not match %d input words", cin, k->in_words);
  int cin_g;
  if (filt->type == kTfLiteFloat32) {
    cin_g = fdepth;
  } else if (fdepth == k->in_words) {
    cin_g = cin;
  } else {
    cin_g = 32 * fdepth; /* grouped: LCE needs channels per group a multiple of 32 */
  }
  if (cin % cin_g != 0 || (cin / cin_g > 1 && cin_g % 32 != 0))
    return fail(ctx, "LceBconv2d: channels_in=%d with filter depth %d is not implemented", cin, fdepth);
  k->groups = cin / cin_g;
  k->cin_g = cin_g;
  k->words_g = (cin_g + 31) / 32;
  if (k->out_c % k->groups != 0) return fail(ctx, "LceBconv2d: %d outputs in %d groups", k->out_c, k->groups);
  k->cout_g = k->out_c / k->groups;
  k->taps = kh * kw;
  k->row_words = (k->taps * k->words_g + LANE_WORDS - 1) / LANE_WORDS * LANE_WORDS;
  k->ktot = k->taps * cin_g;
  same_or_valid(k->in_h, kh, p->stride_h, p->dil_h, p->padding, &k->out_h, &k->pad_top);
  same_or_valid(k->in_w, kw, p->stride_w, p->dil_w, p->padding, &k->out_w, &k->pad_left);
  k->p.filter_h = kh;
  k->p.filter_w = kw;

  /* The filter, repacked: one zero-padded row of words per output channel. */
  k->filter = (uint32_t*)aligned(sizeof(uint32_t) * (size_t)k->out_c * k->row_words);
  k->tap_pop = (int32_t*)aligned(sizeof(int32_t) * (size_t)k->out_c * k->taps);
  if (!k->filter || !k->tap_pop) return fail(ctx, "LceBconv2d: out of memory");
  for (int co = 0; co < k->out_c; co++)
    for (int t = 0; t < k->taps; t++) {
      uint32_t* dst = k->filter + (size_t)co * k->row_words + t * k->words_g;
      int pop = 0;
      for (int w = 0; w < k->words_g; w++) {
        uint32_t bits;
        if (filt->type == kTfLiteInt32) {
          bits = (uint32_t)filt->data.i32[((size_t)co * k->taps + t) * fdepth + w];
        } else {
          bits = 0;
          for (int b = 0; b < 32 && 32 * w + b < cin_g; b++)
            bits |= (uint32_t)(filt->data.f[((size_t)co * k->taps + t) * fdepth + 32 * w + b] < 0) << b;
        }
        if (32 * (w + 1) > cin_g) bits &= (cin_g % 32) ? ((1u << (cin_g % 32)) - 1) : 0xffffffffu;
        dst[w] = bits;
        pop += __builtin_popcount(bits);
      }
      k->tap_pop[(size_t)co * k->taps + t] = pop;
    }

  /* Output transform. */
  const TfLiteTensor* mul = optional_input(ctx, k, 2);
  const TfLiteTensor* bias = optional_input(ctx, k, 3);
  const TfLiteTensor* thr = optional_input(ctx, k, 4);
  k->bitpacked_out = out->type == kTfLiteInt32;
  k->int8_out = out->type == kTfLiteInt8;
  if (out->type != kTfLiteInt32 && out->type != kTfLiteFloat32 && out->type != kTfLiteInt8)
    return fail(ctx, "LceBconv2d: output type %d is not implemented (float32, int8 or bit-packed int32)", out->type);
  if (k->int8_out && !(out->params.scale > 0.0f))
    return fail(ctx, "LceBconv2d: int8 output needs a positive scale");
  switch (p->activation) {
    case ACT_RELU: k->clamp_min = 0, k->clamp_max = 1 << 30; break;
    case ACT_RELU_N1_TO_1: k->clamp_min = -1, k->clamp_max = 1; break;
    case ACT_RELU6: k->clamp_min = 0, k->clamp_max = 6; break;
    default: k->clamp_min = -(1 << 30), k->clamp_max = 1 << 30;
  }
  if (k->bitpacked_out) {
    if (!thr || thr->type != kTfLiteInt32 || !thr->data.raw || num_elements(thr) != k->out_c)
      return fail(ctx, "LceBconv2d: bit-packed output needs an int32 output_threshold of %d values", k->out_c);
    k->threshold = (int32_t*)aligned(sizeof(int32_t) * (k->out_c + MAX_TILE_COLS));
    if (!k->threshold) return fail(ctx, "LceBconv2d: out of memory");
    memcpy(k->threshold, thr->data.i32, sizeof(int32_t) * k->out_c);
    for (int c = k->out_c; c < k->out_c + MAX_TILE_COLS; c++) k->threshold[c] = INT32_MAX; /* bit 0 */
  } else {
    /* Per channel ([C]) or, where learned spatial scales were folded in (Real-to-Binary's
     * strong baseline), per output position and channel ([OH, OW, C]). */
    int64_t per_channel = k->out_c, per_pixel = (int64_t)k->out_h * k->out_w * k->out_c;
    if (!mul || !bias || mul->type != kTfLiteFloat32 || bias->type != kTfLiteFloat32 || !mul->data.raw ||
        !bias->data.raw)
      return fail(ctx, "LceBconv2d: float and int8 outputs need constant float32 post_activation_multiplier and bias");
    int64_t nm = num_elements(mul), nb = num_elements(bias);
    if ((nm != per_channel && nm != per_pixel) || (nb != per_channel && nb != per_pixel))
      return fail(ctx, "LceBconv2d: post_activation_multiplier/bias of %lld/%lld values for %d channels of %dx%d "
                  "is not implemented", (long long)nm, (long long)nb, k->out_c, k->out_h, k->out_w);
    int64_t n = nm > nb ? nm : nb;
    k->spatial_transform = n == per_pixel && per_pixel != per_channel;
    k->multiplier = (float*)aligned(sizeof(float) * (n + MAX_TILE_COLS));
    k->bias = (float*)aligned(sizeof(float) * (n + MAX_TILE_COLS));
    if (!k->multiplier || !k->bias) return fail(ctx, "LceBconv2d: out of memory");
    /* y = dot * m + b = x * (-m) + (K m + b) with x = 2 * popcount: LCE's reference kernel evaluates the
     * second form, its constants computed in double and rounded to float once, and an int8 output's
     * scale s and zero point z folded in, x * (-m / s) + ((K m + b) / s + z); so do we, to agree bit
     * for bit. Float outputs keep -2 m, for popcount * (-2 m): the same products, exactly. */
    const double s = k->int8_out ? (double)out->params.scale : 1.0, z = k->int8_out ? out->params.zero_point : 0.0;
    for (int64_t i = 0; i < n; i++) {
      double m = mul->data.f[nm == n ? i : i % k->out_c], b = bias->data.f[nb == n ? i : i % k->out_c];
      float x_mul = (float)(-m / s);
      k->multiplier[i] = k->int8_out ? x_mul : 2.0f * x_mul;
      k->bias[i] = (float)((b + (double)k->ktot * m) / s + z);
    }
    /* LCE clamps x (int8 output) to the activation's range in its own space: dot = K - x. */
    int64_t x_min = (int64_t)k->ktot - k->clamp_max, x_max = (int64_t)k->ktot - k->clamp_min;
    k->x_min = (int32_t)(x_min < 0 ? 0 : x_min);
    k->x_max = (int32_t)(x_max > 2 * (int64_t)k->ktot ? 2 * (int64_t)k->ktot : x_max);
  }
  k->out_words = (k->out_c + 31) / 32;
  int dims[4] = {k->batch, k->out_h, k->out_w, k->bitpacked_out ? k->out_words : k->out_c};
  if (ensure_shape(ctx, out, dims, 4) != kTfLiteOk) return kTfLiteError;

  int fast = setup_fast(k, out->type);
  if (fast < 0) return fail(ctx, "LceBconv2d: out of memory");
  if (fast) return kTfLiteOk;

  /* General path. Per-thread scratch: the patches of one output row, per group, and their counts. */
  k->threads = k->pool ? k->pool->threads : 1;
  k->scratch_per_thread = k->out_w * k->row_words;
  k->scratch = (uint32_t*)aligned(sizeof(uint32_t) * (size_t)k->threads * k->scratch_per_thread);
  k->counts = (int32_t*)aligned(sizeof(int32_t) * (size_t)k->threads * k->out_w * k->cout_g);
  if (!k->scratch || !k->counts) return fail(ctx, "LceBconv2d: out of memory");
  return kTfLiteOk;
}

/* A fused ADD: the residual added to the float outputs of n pixels from flat pixel `pix` on (one
 * rounding, as the ADD it replaces), then its activation's clamp (a zero sum clamped at 0 is +0,
 * as NEON's FMAX and x86's MAXPS give it). */
static void bconv_add_residual(const Kernel* k, const Job* j, size_t pix, int n) {
  float* y = (float*)j->out + pix * k->out_c;
  const float* r = j->residual + pix * k->out_c;
  const size_t count = (size_t)n * k->out_c;
  if (!k->residual_clamp) {
    for (size_t i = 0; i < count; i++) y[i] += r[i];
    return;
  }
  const float lo = k->residual_min, hi = k->residual_max;
  for (size_t i = 0; i < count; i++) {
    float v = y[i] + r[i];
    v = v > lo ? v : lo;
    y[i] = v < hi ? v : hi;
  }
}

static void bconv_rows(void* arg, int begin, int end, int thread) {
  Job* j = (Job*)arg;
  Kernel* k = j->k;
  const OpParams* p = &k->p;
  const uint32_t* x = (const uint32_t*)j->in;
  uint32_t* patches = k->scratch + (size_t)thread * k->scratch_per_thread;
  int32_t* counts = k->counts + (size_t)thread * k->out_w * k->cout_g;
  const int kh = p->filter_h, kw = p->filter_w, wg = k->words_g, rw = k->row_words;
  BgemmFn bgemm = k->path->bgemm;
  for (int row = begin; row < end; row++) {
    int b = row / k->out_h, oy = row % k->out_h;
    const uint32_t* xb = x + (size_t)b * k->in_h * k->in_w * k->in_words;
    for (int g = 0; g < k->groups; g++) {
      /* im2col of this row: out-of-bounds taps stay 0 words, i.e. +1 values */
      for (int ox = 0; ox < k->out_w; ox++) {
        uint32_t* dst = patches + (size_t)ox * rw;
        int t = 0;
        for (int ky = 0; ky < kh; ky++) {
          int iy = oy * p->stride_h - k->pad_top + ky * p->dil_h;
          for (int kx = 0; kx < kw; kx++, t++) {
            int ix = ox * p->stride_w - k->pad_left + kx * p->dil_w;
            uint32_t* d = dst + t * wg;
            if (iy < 0 || iy >= k->in_h || ix < 0 || ix >= k->in_w) {
              for (int w = 0; w < wg; w++) d[w] = 0;
            } else {
              const uint32_t* src = xb + ((size_t)iy * k->in_w + ix) * k->in_words + g * wg;
              for (int w = 0; w < wg; w++) d[w] = src[w];
            }
          }
        }
      }
      const uint32_t* fg = k->filter + (size_t)g * k->cout_g * rw;
      bgemm(patches, k->out_w, fg, k->cout_g, rw, counts, k->cout_g);
      bconv_transform(k, j, b, oy, g, counts);
    }
    if (j->residual) bconv_add_residual(k, j, (size_t)row * k->out_w, k->out_w);
  }
}

/* Copies n words; a function of the bconv path of its own, not libc's memcpy, so that
 * eval/bench_arm64.py counts the copies as the convolution's (GCC would turn the loop into
 * a memcpy call). */
__attribute__((noinline, optimize("no-tree-loop-distribute-patterns"))) static void bconv_copy(
    uint32_t* restrict dst, const uint32_t* restrict src, size_t n) {
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    uint64_t lo, hi;
    memcpy(&lo, src + i, 8);
    memcpy(&hi, src + i + 2, 8);
    memcpy(dst + i, &lo, 8);
    memcpy(dst + i + 2, &hi, 8);
  }
  for (; i < n; i++) dst[i] = src[i];
}

/* Fast path: the input into its zero-bordered copy, rows [begin, end) of batch * in_h. */
static void bconv_pad_rows(void* arg, int begin, int end, int thread) {
  (void)thread;
  Job* j = (Job*)arg;
  const Kernel* k = j->k;
  const size_t row = (size_t)k->in_w * k->in_words;
  for (int r = begin; r < end; r++) {
    int b = r / k->in_h, y = r % k->in_h;
    bconv_copy(k->xpad + (((size_t)b * k->hp + y + k->pad_top) * k->wp + k->pad_left) * k->in_words,
               (const uint32_t*)j->in + (size_t)r * row, row);
  }
}

/* Fast path: tiles [begin, end) of tile_rows output pixels each. */
static void bconv_tiles(void* arg, int begin, int end, int thread) {
  Job* j = (Job*)arg;
  const Kernel* k = j->k;
  const OpParams* p = &k->p;
  const int tr = k->path->tile_rows, ohw = k->out_h * k->out_w, total = k->batch * ohw;
  const uint32_t* x = k->xpad ? k->xpad : (const uint32_t*)j->in;
  uint32_t* patches = k->scratch + (size_t)thread * k->scratch_per_thread;
  const uint32_t* a[MAX_TILE_ROWS];
  size_t pix[MAX_TILE_ROWS];
  const size_t row_step = (size_t)p->stride_h * k->wp * k->in_words, col_step = (size_t)p->stride_w * k->in_words;
  const size_t image = (size_t)k->hp * k->wp * k->in_words;
  int q = begin * tr, b = q / ohw, oy = q % ohw / k->out_w, ox = q % k->out_w; /* then counted up */
  const uint32_t* row = x + b * image + oy * row_step;
  for (int t = begin; t < end; t++) {
    int rows = total - t * tr < tr ? total - t * tr : tr;
    for (int r = 0; r < rows; r++, q++) {
      pix[r] = (size_t)q;
      a[r] = row + ox * col_step;
      if (++ox == k->out_w) {
        ox = 0;
        if (++oy == k->out_h) oy = 0, b++;
        row = x + b * image + oy * row_step;
      }
      if (k->im2col) { /* the segments of this pixel, one after another (the row's padding stays 0) */
        uint32_t* dst = patches + (size_t)r * k->kpad;
        for (int s = 0; s < k->nseg; s++) bconv_copy(dst + s * k->seg_words, a[r] + k->seg_off[s], k->seg_words);
        a[r] = dst;
      }
    }
    for (int r = rows; r < tr; r++) a[r] = a[0], pix[r] = pix[0]; /* computed, not stored */
    k->path->tile(k, j, a, pix, rows);
    if (j->residual && !k->path->adds_residual)
      for (int r = 0; r < rows; r++) bconv_add_residual(k, j, pix[r], 1);
  }
}

void bconv_invoke(Pool* pool, Job* job) {
  const Kernel* k = job->k;
  if (!k->fast) {
    pool_run(pool, bconv_rows, job, k->batch * k->out_h);
    return;
  }
  if (k->xpad) pool_run(pool, bconv_pad_rows, job, k->batch * k->in_h);
  int tr = k->path->tile_rows;
  pool_run(pool, bconv_tiles, job, (k->batch * k->out_h * k->out_w + tr - 1) / tr);
}
