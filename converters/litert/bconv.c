/* LceBconv2d: prepare (filter repacking, output transform constants, scratch) and the
 * per-row loop (im2col, binary GEMM, output transform in transform.c). */
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
  k->filter = NULL;
  k->tap_pop = k->threshold = k->counts = NULL;
  k->multiplier = k->bias = NULL;
  k->scratch = NULL;
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
  if (out->type != kTfLiteInt32 && out->type != kTfLiteFloat32)
    return fail(ctx, "LceBconv2d: output type %d is not implemented (float32 or bit-packed int32)", out->type);
  switch (p->activation) {
    case ACT_RELU: k->clamp_min = 0, k->clamp_max = 1 << 30; break;
    case ACT_RELU_N1_TO_1: k->clamp_min = -1, k->clamp_max = 1; break;
    case ACT_RELU6: k->clamp_min = 0, k->clamp_max = 6; break;
    default: k->clamp_min = -(1 << 30), k->clamp_max = 1 << 30;
  }
  if (k->bitpacked_out) {
    if (!thr || thr->type != kTfLiteInt32 || !thr->data.raw || num_elements(thr) != k->out_c)
      return fail(ctx, "LceBconv2d: bit-packed output needs an int32 output_threshold of %d values", k->out_c);
    if (p->pad_values == 0 && p->padding == PAD_SAME)
      return fail(ctx, "LceBconv2d: bit-packed output with pad_values=0 and SAME padding is not implemented");
    k->threshold = (int32_t*)aligned(sizeof(int32_t) * k->out_c);
    memcpy(k->threshold, thr->data.i32, sizeof(int32_t) * k->out_c);
  } else {
    /* Per channel ([C]) or, where learned spatial scales were folded in (Real-to-Binary's
     * strong baseline), per output position and channel ([OH, OW, C]). */
    int64_t per_channel = k->out_c, per_pixel = (int64_t)k->out_h * k->out_w * k->out_c;
    if (!mul || !bias || mul->type != kTfLiteFloat32 || bias->type != kTfLiteFloat32 || !mul->data.raw ||
        !bias->data.raw)
      return fail(ctx, "LceBconv2d: float output needs constant float32 post_activation_multiplier and bias");
    int64_t nm = num_elements(mul), nb = num_elements(bias);
    if ((nm != per_channel && nm != per_pixel) || (nb != per_channel && nb != per_pixel))
      return fail(ctx, "LceBconv2d: post_activation_multiplier/bias of %lld/%lld values for %d channels of %dx%d "
                  "is not implemented", (long long)nm, (long long)nb, k->out_c, k->out_h, k->out_w);
    int64_t n = nm > nb ? nm : nb;
    k->spatial_transform = n == per_pixel && per_pixel != per_channel;
    k->multiplier = (float*)aligned(sizeof(float) * n);
    k->bias = (float*)aligned(sizeof(float) * n);
    if (!k->multiplier || !k->bias) return fail(ctx, "LceBconv2d: out of memory");
    /* y = dot * m + b = pop * (-2 m) + (K m + b): LCE's reference kernel evaluates the
     * second form, with K m + b in one rounding; so do we, to agree bit for bit. */
    for (int64_t i = 0; i < n; i++) {
      float m = mul->data.f[nm == n ? i : i % k->out_c], b = bias->data.f[nb == n ? i : i % k->out_c];
      k->multiplier[i] = -2.0f * m;
      k->bias[i] = fmaf((float)k->ktot, m, b);
    }
  }
  k->out_words = (k->out_c + 31) / 32;
  int dims[4] = {k->batch, k->out_h, k->out_w, k->bitpacked_out ? k->out_words : k->out_c};
  if (ensure_shape(ctx, out, dims, 4) != kTfLiteOk) return kTfLiteError;

  /* Per-thread scratch: the patches of one output row, per group, and their counts. */
  k->threads = k->pool ? k->pool->threads : 1;
  k->scratch_per_thread = k->out_w * k->row_words;
  k->scratch = (uint32_t*)aligned(sizeof(uint32_t) * (size_t)k->threads * k->scratch_per_thread);
  k->counts = (int32_t*)aligned(sizeof(int32_t) * (size_t)k->threads * k->out_w * k->cout_g);
  if (!k->scratch || !k->counts) return fail(ctx, "LceBconv2d: out of memory");
  return kTfLiteOk;
}

void bconv_rows(void* arg, int begin, int end, int thread) {
  Job* j = (Job*)arg;
  Kernel* k = j->k;
  const OpParams* p = &k->p;
  const uint32_t* x = (const uint32_t*)j->in;
  uint32_t* patches = k->scratch + (size_t)thread * k->scratch_per_thread;
  int32_t* counts = k->counts + (size_t)thread * k->out_w * k->cout_g;
  const int kh = p->filter_h, kw = p->filter_w, wg = k->words_g, rw = k->row_words;
  BgemmFn bgemm = k->bgemm;
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
  }
}
