/* LceBconv2d's output transform: one output row's XOR popcounts to float or int8 outputs
 * (multiplier, bias, fused activation) or to bit-packed outputs (thresholds). */
#include "bnn.h"

#include <math.h>

/* One output pixel of channel group `g` as int8, as LCE's OutputTransform<int8_t>: x = 2 * the XOR
 * popcount (a zero-padded tap counts channels_in / 2, as LCE's reference kernel counts it),
 * clamped to [x_min, x_max] (the fused activation), y = x * m + b in float (the output scale and
 * zero point folded into m and b), rounded half away from zero (TfLiteRound) and saturated.
 * LCE converts y to int32 before it saturates; here y saturates first, which is the same for
 * every |y| < 2^31. */
void bconv_int8_pixel(const Kernel* k, const int32_t* counts, int g, int padded_taps, const float* multiplier,
                      const float* bias, int8_t* out) {
  const int32_t pad = 2 * padded_taps * (k->cin_g / 2);
  for (int c = 0; c < k->cout_g; c++) {
    int co = g * k->cout_g + c;
    int32_t x = 2 * counts[c] + pad;
    x = x < k->x_min ? k->x_min : x > k->x_max ? k->x_max : x;
    float y = (float)x * multiplier[co] + bias[co];
    out[co] = (int8_t)(!(y < 127.0f) ? 127 : y <= -128.0f ? -128 : (int32_t)roundf(y));
  }
}

/* Writes output row `oy` of image `b`, channel group `g`, from its counts
 * ([out_w][cout_g], corrected here in place for zero-padded border taps). */
void bconv_transform(const Kernel* k, const Job* j, int b, int oy, int g, int32_t* counts) {
  const OpParams* p = &k->p;
  const int kh = p->filter_h, kw = p->filter_w;
  for (int ox = 0; ox < k->out_w; ox++) {
    int32_t* cnt = counts + (size_t)ox * k->cout_g;
    int valid_taps = k->taps;
    int border = 0;
    if (p->pad_values == 0) {
      int iy0 = oy * p->stride_h - k->pad_top, ix0 = ox * p->stride_w - k->pad_left;
      border = iy0 < 0 || ix0 < 0 || iy0 + (kh - 1) * p->dil_h >= k->in_h || ix0 + (kw - 1) * p->dil_w >= k->in_w;
    }
    if (border) {
      /* zero padding: padded taps contribute 0, not the ±1 of a 0 word */
      valid_taps = 0;
      int t = 0;
      for (int ky = 0; ky < kh; ky++) {
        int iy = oy * p->stride_h - k->pad_top + ky * p->dil_h;
        for (int kx = 0; kx < kw; kx++, t++) {
          int ix = ox * p->stride_w - k->pad_left + kx * p->dil_w;
          if (iy < 0 || iy >= k->in_h || ix < 0 || ix >= k->in_w) {
            for (int c = 0; c < k->cout_g; c++) cnt[c] -= k->tap_pop[(size_t)(g * k->cout_g + c) * k->taps + t];
          } else {
            valid_taps++;
          }
        }
      }
    }
    int kvalid = valid_taps * k->cin_g;
    size_t pix = ((size_t)b * k->out_h + oy) * k->out_w + ox;
    if (k->int8_out) {
      size_t t0 = k->spatial_transform ? ((size_t)oy * k->out_w + ox) * k->out_c : 0;
      bconv_int8_pixel(k, cnt, g, k->taps - valid_taps, k->multiplier + t0, k->bias + t0,
                       (int8_t*)j->out + pix * k->out_c);
    } else if (k->bitpacked_out) {
      uint32_t* yo = (uint32_t*)j->out + pix * k->out_words;
      /* a zero-padded tap counts channels_in / 2, as LCE's reference kernel counts it */
      const int32_t pad = (k->taps - valid_taps) * (k->cin_g / 2);
      for (int c = 0; c < k->cout_g; c++) {
        int co = g * k->cout_g + c;
        /* LCE's thresholds compare the XOR popcount itself (bit 1: more mismatches) */
        uint32_t bit = (uint32_t)(cnt[c] + pad > k->threshold[co]);
        if ((co & 31) == 0) yo[co >> 5] = 0;
        yo[co >> 5] |= bit << (co & 31);
      }
    } else {
      float* yo = (float*)j->out + pix * k->out_c;
      size_t t0 = k->spatial_transform ? ((size_t)oy * k->out_w + ox) * k->out_c : 0;
      const float* mul = k->multiplier + t0;
      const float* bias = k->bias + t0;
      if (!border && p->activation == ACT_NONE) { /* kvalid == ktot: y = pop * m' + b' */
        for (int c = 0; c < k->cout_g; c++) {
          int co = g * k->cout_g + c;
          yo[co] = (float)cnt[c] * mul[co] + bias[co];
        }
        continue;
      }
      for (int c = 0; c < k->cout_g; c++) {
        int co = g * k->cout_g + c;
        int32_t acc = kvalid - 2 * cnt[c];
        acc = acc < k->clamp_min ? k->clamp_min : acc > k->clamp_max ? k->clamp_max : acc;
        /* in popcount space, rounded as LCE's reference kernel rounds (bit-exact) */
        yo[co] = 0.5f * (float)(k->ktot - acc) * mul[co] + bias[co];
      }
    }
  }
}

