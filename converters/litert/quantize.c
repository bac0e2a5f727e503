/* LceQuantize (float32, int8 or bool values to bit-packed words) and LceDequantize (bit-packed
 * words to ±1 float32, int8 or bool values), as LCE's kernels compute them: an int8 value is
 * negative below the tensor's zero point, a bool false is -1; an int8 +1 or -1 is the zero point
 * plus or minus round(1 / scale), saturated. */
#include "bnn.h"

#include <math.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#elif defined(__aarch64__)
#include <arm_neon.h>
#endif

/* 32 floats to one word: bit b set where x[b] < 0 (so -0.0 and +0.0 are both +1). */
uint32_t pack32(const float* x) {
#if defined(__x86_64__)
  const __m128 zero = _mm_setzero_ps();
  uint32_t bits = 0;
  for (int i = 0; i < 8; i++) bits |= (uint32_t)_mm_movemask_ps(_mm_cmplt_ps(_mm_loadu_ps(x + 4 * i), zero)) << (4 * i);
  return bits;
#elif defined(__aarch64__)
  /* 32 sign masks narrowed to bytes, each byte ANDed with its bit, then three pairwise
   * byte additions sum every 8 bytes into one: the word's 4 bytes (22 instructions). */
  uint8x16_t m[2];
  for (int h = 0; h < 2; h++) {
    const float* p = x + 16 * h;
    uint16x8_t lo = vuzp1q_u16(vreinterpretq_u16_u32(vcltzq_f32(vld1q_f32(p))),
                               vreinterpretq_u16_u32(vcltzq_f32(vld1q_f32(p + 4))));
    uint16x8_t hi = vuzp1q_u16(vreinterpretq_u16_u32(vcltzq_f32(vld1q_f32(p + 8))),
                               vreinterpretq_u16_u32(vcltzq_f32(vld1q_f32(p + 12))));
    m[h] = vandq_u8(vuzp1q_u8(vreinterpretq_u8_u16(lo), vreinterpretq_u8_u16(hi)),
                    vreinterpretq_u8_u64(vdupq_n_u64(0x8040201008040201ull)));
  }
  uint8x16_t s = vpaddq_u8(m[0], m[1]);
  s = vpaddq_u8(s, s);
  s = vpaddq_u8(s, s);
  return vgetq_lane_u32(vreinterpretq_u32_u8(s), 0);
#else
  uint32_t bits = 0;
  for (int b = 0; b < 32; b++) bits |= (uint32_t)(x[b] < 0.0f) << b;
  return bits;
#endif
}

/* Sign bits of one row of int8 (below zero_point) or bool (false, stored as byte 0) values. */
static void pack_bytes_row(const uint8_t* x, int c, int words, TfLiteType type, int32_t zero_point, int32_t* y) {
  for (int w = 0; w < words; w++) {
    uint32_t bits = 0;
    int n = c - 32 * w < 32 ? c - 32 * w : 32;
    const uint8_t* xw = x + 32 * w;
    if (type == kTfLiteInt8) {
      for (int b = 0; b < n; b++) bits |= (uint32_t)((int32_t)(int8_t)xw[b] < zero_point) << b;
    } else {
      for (int b = 0; b < n; b++) bits |= (uint32_t)(xw[b] == 0) << b;
    }
    y[w] = (int32_t)bits;
  }
}

void quantize_rows(void* arg, int begin, int end, int thread) {
  (void)thread;
  Job* j = (Job*)arg;
  Kernel* k = j->k;
  const float* x = (const float*)j->in;
  int32_t* y = (int32_t*)j->out;
  int c = k->out_c, words = k->out_words, full = c / 32;
  if (k->value_type != kTfLiteFloat32) {
    for (int r = begin; r < end; r++)
      pack_bytes_row((const uint8_t*)j->in + (size_t)r * c, c, words, k->value_type, k->zero_point,
                     y + (size_t)r * words);
    return;
  }
  for (int r = begin; r < end; r++) {
    const float* xr = x + (size_t)r * c;
    int32_t* yr = y + (size_t)r * words;
    for (int w = 0; w < full; w++) yr[w] = (int32_t)pack32(xr + 32 * w);
    if (full < words) {
      uint32_t bits = 0;
      for (int b = 0; b < c - 32 * full; b++) bits |= (uint32_t)(xr[32 * full + b] < 0.0f) << b;
      yr[full] = (int32_t)bits;
    }
  }
}

void dequantize_rows(void* arg, int begin, int end, int thread) {
  (void)thread;
  Job* j = (Job*)arg;
  Kernel* k = j->k;
  const uint32_t* x = (const uint32_t*)j->in;
  int c = k->out_c, words = k->out_words;
  if (k->value_type != kTfLiteFloat32) { /* int8 or bool: one byte a value */
    uint8_t plus = (uint8_t)k->plus_one, minus = (uint8_t)k->minus_one;
    for (int r = begin; r < end; r++) {
      const uint32_t* xr = x + (size_t)r * words;
      uint8_t* yr = (uint8_t*)j->out + (size_t)r * c;
      for (int ch = 0; ch < c; ch++) yr[ch] = (xr[ch >> 5] >> (ch & 31)) & 1 ? minus : plus;
    }
    return;
  }
  float* y = (float*)j->out;
  for (int r = begin; r < end; r++) {
    const uint32_t* xr = x + (size_t)r * words;
    float* yr = y + (size_t)r * c;
    for (int ch = 0; ch < c; ch++) yr[ch] = (xr[ch >> 5] >> (ch & 31)) & 1 ? -1.0f : 1.0f;
  }
}

/* The int8 or bool value type of a quantize op's unpacked tensor (k->value_type and its constants). */
static TfLiteStatus value_type(TfLiteContext* ctx, Kernel* k, const TfLiteTensor* t, const char* name,
                               const char* what) {
  k->value_type = t->type;
  k->zero_point = 0;
  k->plus_one = 1, k->minus_one = 0; /* bool: +1 is true (1), -1 false (0) */
  if (t->type == kTfLiteFloat32 || t->type == kTfLiteBool) return kTfLiteOk;
  if (t->type != kTfLiteInt8) return fail(ctx, "%s: %s type %d is not implemented (float32, int8 or bool)", name,
                                          what, t->type);
  k->zero_point = t->params.zero_point;
  if (k->p.op == OP_DEQUANTIZE) {
    if (!(t->params.scale > 0.0f)) return fail(ctx, "%s: int8 output needs a positive scale", name);
    /* as LCE: offset = TfLiteRound(1.0f / scale), in float */
    int32_t offset = (int32_t)roundf(1.0f / t->params.scale);
    int32_t plus = k->zero_point + offset, minus = k->zero_point - offset;
    k->plus_one = (int8_t)(plus > 127 ? 127 : plus);
    k->minus_one = (int8_t)(minus < -128 ? -128 : minus);
  }
  return kTfLiteOk;
}

TfLiteStatus prepare_quantize(TfLiteContext* ctx, Kernel* k) {
  TfLiteTensor* in = &ctx->tensors[k->inputs[0]];
  TfLiteTensor* out = &ctx->tensors[k->output];
  const char* name = OP_NAMES[k->p.op];
  if (!in->dims || in->dims->size < 1 || in->dims->size > 8) return fail(ctx, "%s: input rank not supported", name);
  int n = in->dims->size, dims[8];
  memcpy(dims, in->dims->data, sizeof(int) * n);
  if (k->p.op == OP_QUANTIZE) {
    if (value_type(ctx, k, in, name, "input") != kTfLiteOk) return kTfLiteError;
    if (out->type != kTfLiteInt32) return fail(ctx, "%s: output must be int32", name);
    k->out_c = dims[n - 1];
    k->out_words = (dims[n - 1] + 31) / 32;
    dims[n - 1] = k->out_words;
    return ensure_shape(ctx, out, dims, n);
  }
  if (in->type != kTfLiteInt32) return fail(ctx, "%s: input must be int32", name);
  if (value_type(ctx, k, out, name, "output") != kTfLiteOk) return kTfLiteError;
  if (!out->dims || out->dims->size != n) return fail(ctx, "%s: output rank differs from the input's", name);
  k->out_c = out->dims->data[n - 1];
  k->out_words = dims[n - 1];
  if ((k->out_c + 31) / 32 != k->out_words)
    return fail(ctx, "%s: %d channels do not fit %d words", name, k->out_c, k->out_words);
  return kTfLiteOk;
}
