/* LceBMaxPool2d on bit-packed words: the max of ±1 values is an AND of their sign bits. */
#include "bnn.h"

void maxpool_rows(void* arg, int begin, int end, int thread) {
  (void)thread;
  Job* j = (Job*)arg;
  Kernel* k = j->k;
  const uint32_t* x = (const uint32_t*)j->in;
  uint32_t* y = (uint32_t*)j->out;
  int words = k->in_words;
  for (int row = begin; row < end; row++) {
    int b = row / k->out_h, oy = row % k->out_h;
    for (int ox = 0; ox < k->out_w; ox++) {
      uint32_t* yo = y + (((size_t)b * k->out_h + oy) * k->out_w + ox) * words;
      for (int w = 0; w < words; w++) yo[w] = 0xffffffffu; /* max of ±1: -1 (bit 1) only if all are -1 */
      for (int ky = 0; ky < k->p.filter_h; ky++) {
        int iy = oy * k->p.stride_h - k->pad_top + ky;
        if (iy < 0 || iy >= k->in_h) continue;
        for (int kx = 0; kx < k->p.filter_w; kx++) {
          int ix = ox * k->p.stride_w - k->pad_left + kx;
          if (ix < 0 || ix >= k->in_w) continue;
          const uint32_t* xi = x + (((size_t)b * k->in_h + iy) * k->in_w + ix) * words;
          for (int w = 0; w < words; w++) yo[w] &= xi[w];
        }
      }
    }
  }
}

TfLiteStatus prepare_maxpool(TfLiteContext* ctx, Kernel* k) {
  TfLiteTensor* in = &ctx->tensors[k->inputs[0]];
  TfLiteTensor* out = &ctx->tensors[k->output];
  if (in->type != kTfLiteInt32 || out->type != kTfLiteInt32 || !in->dims || in->dims->size != 4)
    return fail(ctx, "LceBMaxPool2d: input and output must be bit-packed int32 NHWC");
  k->batch = in->dims->data[0];
  k->in_h = in->dims->data[1];
  k->in_w = in->dims->data[2];
  k->in_words = in->dims->data[3];
  same_or_valid(k->in_h, k->p.filter_h, k->p.stride_h, 1, k->p.padding, &k->out_h, &k->pad_top);
  same_or_valid(k->in_w, k->p.filter_w, k->p.stride_w, 1, k->p.padding, &k->out_w, &k->pad_left);
  int dims[4] = {k->batch, k->out_h, k->out_w, k->in_words};
  return ensure_shape(ctx, out, dims, 4);
}
