/* LceQuantize (float32 to bit-packed words) and LceDequantize (bit-packed to ±1 floats). */
#include "bnn.h"

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
  static const uint32_t weights[4] = {1, 2, 4, 8};
  const uint32x4_t wv = vld1q_u32(weights);
  uint32_t bits = 0;
  for (int i = 0; i < 8; i++)
    bits |= vaddvq_u32(vandq_u32(vcltq_f32(vld1q_f32(x + 4 * i), vdupq_n_f32(0.0f)), wv)) << (4 * i);
  return bits;
#else
  uint32_t bits = 0;
  for (int b = 0; b < 32; b++) bits |= (uint32_t)(x[b] < 0.0f) << b;
  return bits;
#endif
}

void quantize_rows(void* arg, int begin, int end, int thread) {
  (void)thread;
  Job* j = (Job*)arg;
  Kernel* k = j->k;
  const float* x = (const float*)j->in;
  int32_t* y = (int32_t*)j->out;
  int c = k->out_c, words = k->out_words, full = c / 32;
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
  float* y = (float*)j->out;
  int c = k->out_c, words = k->out_words;
  for (int r = begin; r < end; r++) {
    const uint32_t* xr = x + (size_t)r * words;
    float* yr = y + (size_t)r * c;
    for (int ch = 0; ch < c; ch++) yr[ch] = (xr[ch >> 5] >> (ch & 31)) & 1 ? -1.0f : 1.0f;
  }
}

TfLiteStatus prepare_quantize(TfLiteContext* ctx, Kernel* k) {
  TfLiteTensor* in = &ctx->tensors[k->inputs[0]];
  TfLiteTensor* out = &ctx->tensors[k->output];
  const char* name = OP_NAMES[k->p.op];
  if (!in->dims || in->dims->size < 1 || in->dims->size > 8) return fail(ctx, "%s: input rank not supported", name);
  int n = in->dims->size, dims[8];
  memcpy(dims, in->dims->data, sizeof(int) * n);
  if (k->p.op == OP_QUANTIZE) {
    if (in->type != kTfLiteFloat32)
      return fail(ctx, "%s: input type %d is not implemented (float32 only)", name, in->type);
    if (out->type != kTfLiteInt32) return fail(ctx, "%s: output must be int32", name);
    k->out_c = dims[n - 1];
    k->out_words = (dims[n - 1] + 31) / 32;
    dims[n - 1] = k->out_words;
    return ensure_shape(ctx, out, dims, n);
  }
  if (in->type != kTfLiteInt32) return fail(ctx, "%s: input must be int32", name);
  if (out->type != kTfLiteFloat32)
    return fail(ctx, "%s: output type %d is not implemented (float32 only)", name, out->type);
  if (!out->dims || out->dims->size != n) return fail(ctx, "%s: output rank differs from the input's", name);
  k->out_c = out->dims->data[n - 1];
  k->out_words = dims[n - 1];
  if ((k->out_c + 31) / 32 != k->out_words)
    return fail(ctx, "%s: %d channels do not fit %d words", name, k->out_c, k->out_words);
  return kTfLiteOk;
}
