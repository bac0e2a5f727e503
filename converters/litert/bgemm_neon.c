/* aarch64 (NEON, part of every ARMv8-A core): LceBconv2d's fast-path tile kernel with its
 * output transforms, and the binary GEMM of the general path. */
#include "bnn.h"

#if defined(__aarch64__)
#include <arm_neon.h>
#include <stdint.h>
#include <string.h>

/* --- Fast path: 4 pixels x 8 channels per tile ----------------------------------------------
 *
 * K steps of 128 bits. For pixel r and channel pair (c, c + 1), CNT(x_r ^ w_c) and
 * CNT(x_r ^ w_c+1) are summed bytewise in pairs by one ADDP (its low half from channel c, its
 * high half from c + 1), and UADALP adds those bytes in pairs into 16-bit lanes: one
 * accumulator holds two channels of one pixel (lanes 0-3: c, lanes 4-7: c + 1), and per two
 * EOR/CNT there is one ADDP and one UADALP (UADALP issues on one of the Cortex-A72's two SIMD
 * pipes; one per CNT would bound the loop by it). So the reduction at the end is three ADDP
 * per pixel, which leave its 8 channels in order in one register: no transposition. 4 x 4
 * accumulators, 4 activation and 4 filter registers: 28 of the 32. A segment may end in a
 * 64-bit tail: a pixel's tail loaded into both halves of a register meets two channels' tails
 * at once, and UADALP takes their CNT directly, so a 64-channel 3x3 row (6 words) costs what
 * its bits cost. 16-bit lanes hold any receptive field below 65536 bits (max_k_bits).
 *
 * The filter of channels [c0, c0 + 8) is stored for each K step as 8 x 16 bytes (one LD1 of 4
 * registers, twice), a tail as the 8 channels' 8 bytes (one LD1). */

#define NEON_ROWS 4
#define NEON_COLS 8

static void bconv_pack_neon(Kernel* k) {
  const int ksw = k->kseg_words, nq = ksw / 4, tail = ksw % 4 != 0;
  const int tiles = (k->out_c + NEON_COLS - 1) / NEON_COLS;
  const int filter_words = k->taps * k->words_g; /* of k->filter's row_words; the rest is 0 */
  k->packed_tile_words = (size_t)k->knseg * (nq * 4 + tail * 2) * NEON_COLS;
  k->packed = (uint32_t*)aligned(sizeof(uint32_t) * k->packed_tile_words * tiles);
  if (!k->packed) return;
  for (int t = 0; t < tiles; t++) {
    uint32_t* dst = k->packed + (size_t)t * k->packed_tile_words;
    for (int s = 0; s < k->knseg; s++)
      for (int q = 0; q < nq + tail; q++) {
        const int n = q < nq ? 4 : 2; /* words per channel: a full step, or the tail */
        for (int c = 0; c < NEON_COLS; c++, dst += n) {
          int co = t * NEON_COLS + c;
          for (int w = 0; w < n; w++) {
            int kw = s * ksw + 4 * q + w;
            dst[w] = co < k->out_c && kw < filter_words ? k->filter[(size_t)co * k->row_words + kw] : 0;
          }
        }
      }
  }
}

/* Pixel X against the channel pair in registers WL, WH into accumulator A (T0, T1 scratch): the
 * 6 instructions per pixel and pair of a full K step. */
#define BNN_STEP(X, WL, WH, A, T0, T1)                                                          \
  "eor " T0 ".16b, " X ".16b, " WL ".16b\n eor " T1 ".16b, " X ".16b, " WH ".16b\n"               \
  "cnt " T0 ".16b, " T0 ".16b\n cnt " T1 ".16b, " T1 ".16b\n addp " T0 ".16b, " T0 ".16b, " T1 ".16b\n" \
  "uadalp " A ".8h, " T0 ".16b\n"

/* A tail: pixel X (its 64 bits in both halves) against the channel pairs' tails in v4-v7. */
#define BNN_TAIL(X, A0, A1, A2, A3, T)                                                                 \
  "eor " T ".16b, " X ".16b, v4.16b\n cnt " T ".16b, " T ".16b\n uadalp " A0 ".8h, " T ".16b\n"            \
  "eor " T ".16b, " X ".16b, v5.16b\n cnt " T ".16b, " T ".16b\n uadalp " A1 ".8h, " T ".16b\n"            \
  "eor " T ".16b, " X ".16b, v6.16b\n cnt " T ".16b, " T ".16b\n uadalp " A2 ".8h, " T ".16b\n"            \
  "eor " T ".16b, " X ".16b, v7.16b\n cnt " T ".16b, " T ".16b\n uadalp " A3 ".8h, " T ".16b\n"

/* A pixel's four accumulators to its 8 int32 counts, channels 0-3 in D0 and 4-7 in D1. */
#define BNN_REDUCE(A0, A1, A2, A3, D0, D1)                                                   \
  "addp v8.8h, " A0 ".8h, " A1 ".8h\n addp v9.8h, " A2 ".8h, " A3 ".8h\n addp v8.8h, v8.8h, v9.8h\n" \
  "uxtl " D0 ".4s, v8.4h\n uxtl2 " D1 ".4s, v8.8h\n"

/* The counts of one tile, 4 pixels (rows at a[r] + kseg_off[s]) x the 8 channels whose packed
 * filter starts at w, into c[pixel][channels 0-3, 4-7] in registers. One assembly block from
 * the zeroed accumulators to the reduced counts: compiled from intrinsics, GCC 12 spilled
 * accumulators inside the K loop and used register-offset loads (two micro-ops each on the
 * A72); here the 16 accumulators live in v16-v31 throughout, every load post-increments its
 * pointer, and the counts come out in v16-v23. Accumulator v16 + 4 r + q: pixel r, channels
 * 2q and 2q + 1. */
static inline __attribute__((always_inline)) void bconv_counts_neon(const Kernel* k, const uint32_t* const* a,
                                                                    const uint8_t* w, int32x4_t c[NEON_ROWS][2]) {
  const long nq = k->kseg_words / 4, tail = k->kseg_words % 4 != 0;
  const int32_t* offs = k->kseg_off;
  long segs = k->knseg, n, t;
  const uint8_t *p0, *p1, *p2, *p3;
  register int32x4_t c00 __asm__("v16"), c01 __asm__("v17"), c10 __asm__("v18"), c11 __asm__("v19");
  register int32x4_t c20 __asm__("v20"), c21 __asm__("v21"), c30 __asm__("v22"), c31 __asm__("v23");
  __asm__ volatile(
      "movi v16.16b, #0\n movi v17.16b, #0\n movi v18.16b, #0\n movi v19.16b, #0\n"
      "movi v20.16b, #0\n movi v21.16b, #0\n movi v22.16b, #0\n movi v23.16b, #0\n"
      "movi v24.16b, #0\n movi v25.16b, #0\n movi v26.16b, #0\n movi v27.16b, #0\n"
      "movi v28.16b, #0\n movi v29.16b, #0\n movi v30.16b, #0\n movi v31.16b, #0\n"
      "0:\n" /* each segment */
      "ldrsw %[t], [%[offs]], #4\n"
      "add %[p0], %[a0], %[t], lsl #2\n add %[p1], %[a1], %[t], lsl #2\n"
      "add %[p2], %[a2], %[t], lsl #2\n add %[p3], %[a3], %[t], lsl #2\n"
      "cbz %[nq], 2f\n"
      "mov %[n], %[nq]\n"
      "1:\n" /* each full K step: pixel r, pair q into v(16 + 4r + q) */
      "ldr q0, [%[p0]], #16\n ldr q1, [%[p1]], #16\n ldr q2, [%[p2]], #16\n ldr q3, [%[p3]], #16\n"
      "ld1 {v4.16b, v5.16b, v6.16b, v7.16b}, [%[w]], #64\n"
      BNN_STEP("v0", "v4", "v5", "v16", "v8", "v9") BNN_STEP("v1", "v4", "v5", "v20", "v10", "v11")
      BNN_STEP("v2", "v4", "v5", "v24", "v8", "v9") BNN_STEP("v3", "v4", "v5", "v28", "v10", "v11")
      BNN_STEP("v0", "v6", "v7", "v17", "v8", "v9") BNN_STEP("v1", "v6", "v7", "v21", "v10", "v11")
      BNN_STEP("v2", "v6", "v7", "v25", "v8", "v9") BNN_STEP("v3", "v6", "v7", "v29", "v10", "v11")
      "ld1 {v4.16b, v5.16b, v6.16b, v7.16b}, [%[w]], #64\n"
      BNN_STEP("v0", "v4", "v5", "v18", "v8", "v9") BNN_STEP("v1", "v4", "v5", "v22", "v10", "v11")
      BNN_STEP("v2", "v4", "v5", "v26", "v8", "v9") BNN_STEP("v3", "v4", "v5", "v30", "v10", "v11")
      BNN_STEP("v0", "v6", "v7", "v19", "v8", "v9") BNN_STEP("v1", "v6", "v7", "v23", "v10", "v11")
      BNN_STEP("v2", "v6", "v7", "v27", "v8", "v9") BNN_STEP("v3", "v6", "v7", "v31", "v10", "v11")
      "subs %[n], %[n], #1\n"
      "b.ne 1b\n"
      "2:\n"
      "cbz %[tail], 3f\n"
      "ld1r {v0.2d}, [%[p0]]\n ld1r {v1.2d}, [%[p1]]\n ld1r {v2.2d}, [%[p2]]\n ld1r {v3.2d}, [%[p3]]\n"
      "ld1 {v4.16b, v5.16b, v6.16b, v7.16b}, [%[w]], #64\n"
      BNN_TAIL("v0", "v16", "v17", "v18", "v19", "v8") BNN_TAIL("v1", "v20", "v21", "v22", "v23", "v9")
      BNN_TAIL("v2", "v24", "v25", "v26", "v27", "v10") BNN_TAIL("v3", "v28", "v29", "v30", "v31", "v11")
      "3:\n"
      "subs %[segs], %[segs], #1\n"
      "b.ne 0b\n"
      BNN_REDUCE("v16", "v17", "v18", "v19", "v16", "v17")
      BNN_REDUCE("v20", "v21", "v22", "v23", "v18", "v19")
      BNN_REDUCE("v24", "v25", "v26", "v27", "v20", "v21")
      BNN_REDUCE("v28", "v29", "v30", "v31", "v22", "v23")
      : "=&w"(c00), "=&w"(c01), "=&w"(c10), "=&w"(c11), "=&w"(c20), "=&w"(c21), "=&w"(c30), "=&w"(c31),
        [w] "+r"(w), [offs] "+r"(offs), [segs] "+r"(segs), [n] "=&r"(n), [t] "=&r"(t), [p0] "=&r"(p0),
        [p1] "=&r"(p1), [p2] "=&r"(p2), [p3] "=&r"(p3)
      : [a0] "r"(a[0]), [a1] "r"(a[1]), [a2] "r"(a[2]), [a3] "r"(a[3]), [nq] "r"(nq), [tail] "r"(tail)
      : "v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "v8", "v9", "v10", "v11", "v24", "v25", "v26", "v27",
        "v28", "v29", "v30", "v31", "cc", "memory");
  c[0][0] = c00, c[0][1] = c01, c[1][0] = c10, c[1][1] = c11;
  c[2][0] = c20, c[2][1] = c21, c[3][0] = c30, c[3][1] = c31;
}

/* act: 0 none; 1 clamp 2 pop to [lo, hi]; 2 only an upper bound, hi / 2 in pop (RELU: 2 pop >= 0 >
 * K - clamp_max, and hi = K even for any even channels_in), one instruction instead of three. */
enum { ACT_CLAMP = 1, ACT_MIN_POP = 2 };

typedef struct {
  int32x4_t lo, hi;   /* the fused activation's range in 2 pop */
  int32x4_t hi_pop;   /* hi / 2 (ACT_MIN_POP) */
  int rclamp;         /* a fused ADD's clamp, to [rlo, rhi] */
  float32x4_t rlo, rhi;
} OutParams;

/* The float outputs of one pixel's 8 channels from its counts c0, c1. h = pop, or with a fused
 * activation h = 0.5 (K - clamp(K - 2 pop, lo, hi)) = clamp(2 pop, K - hi, K - lo) / 2: the
 * clamp in integers, the halving exact in the conversion (SCVTF's fraction bits), the same float
 * as LCE's; then y = h m' + b' in two roundings, as LCE's reference kernel computes it, and a
 * fused ADD's residual in a third, as the ADD rounds. */
static inline __attribute__((always_inline)) void bconv_out8_neon(int32x4_t c0, int32x4_t c1, int act,
                                                                  const OutParams* o, float32x4_t m0, float32x4_t m1,
                                                                  float32x4_t b0, float32x4_t b1, const float* res,
                                                                  float* y) {
  float32x4_t h0, h1;
  if (act == ACT_MIN_POP) {
    h0 = vcvtq_f32_s32(vminq_s32(c0, o->hi_pop)), h1 = vcvtq_f32_s32(vminq_s32(c1, o->hi_pop));
  } else if (act) {
    h0 = vcvtq_n_f32_s32(vminq_s32(vmaxq_s32(vshlq_n_s32(c0, 1), o->lo), o->hi), 1);
    h1 = vcvtq_n_f32_s32(vminq_s32(vmaxq_s32(vshlq_n_s32(c1, 1), o->lo), o->hi), 1);
  } else {
    h0 = vcvtq_f32_s32(c0), h1 = vcvtq_f32_s32(c1);
  }
  float32x4_t y0 = vaddq_f32(vmulq_f32(h0, m0), b0);
  float32x4_t y1 = vaddq_f32(vmulq_f32(h1, m1), b1);
  if (res) {
    y0 = vaddq_f32(y0, vld1q_f32(res)), y1 = vaddq_f32(y1, vld1q_f32(res + 4));
    if (o->rclamp) /* FMAX(-0, +0) is +0, as the library's other paths clamp */
      y0 = vminq_f32(vmaxq_f32(y0, o->rlo), o->rhi), y1 = vminq_f32(vmaxq_f32(y1, o->rlo), o->rhi);
  }
  vst1q_f32(y, y0);
  vst1q_f32(y + 4, y1);
}

/* A whole tile's float outputs (4 pixels x 8 channels), straight-line so that the counts stay in
 * registers; act, rclamp, spatial and res != NULL constants where it is inlined (per channel, the
 * multipliers and biases are loaded once for the 4 pixels). */
static inline __attribute__((always_inline)) void bconv_float_tile_neon(
    int32x4_t c[NEON_ROWS][2], int act, int rclamp, int spatial, const OutParams* o, const float* m, const float* b,
    const size_t* t_at, const float* res, float* y, const size_t* out_at) {
  const OutParams p = {o->lo, o->hi, o->hi_pop, rclamp, o->rlo, o->rhi};
  const float32x4_t m0 = vld1q_f32(m), m1 = vld1q_f32(m + 4), b0 = vld1q_f32(b), b1 = vld1q_f32(b + 4);
#pragma GCC unroll 4
  for (int r = 0; r < NEON_ROWS; r++) {
    const float *mr = m + t_at[r], *br = b + t_at[r];
    if (spatial)
      bconv_out8_neon(c[r][0], c[r][1], act, &p, vld1q_f32(mr), vld1q_f32(mr + 4), vld1q_f32(br), vld1q_f32(br + 4),
                      res ? res + out_at[r] : NULL, y + out_at[r]);
    else
      bconv_out8_neon(c[r][0], c[r][1], act, &p, m0, m1, b0, b1, res ? res + out_at[r] : NULL, y + out_at[r]);
  }
}

/* The rare tiles: fewer than 4 pixels (the last tile) or fewer than 8 channels (out_c % 8). */
__attribute__((noinline)) static void bconv_float_part_neon(int32x4_t c0, int32x4_t c1, int act, const OutParams* o,
                                                            const float* m, const float* b, const float* res,
                                                            float* yo, int n) {
  float tmp[NEON_COLS], mt[NEON_COLS] = {0}, bt[NEON_COLS] = {0}, rt[NEON_COLS] = {0};
  for (int i = 0; i < n; i++) mt[i] = m[i], bt[i] = b[i], rt[i] = res ? res[i] : 0.0f;
  bconv_out8_neon(c0, c1, act, o, vld1q_f32(mt), vld1q_f32(mt + 4), vld1q_f32(bt), vld1q_f32(bt + 4), res ? rt : NULL,
                  tmp);
  for (int i = 0; i < n; i++) yo[i] = tmp[i];
}

static void bconv_tile_neon(const Kernel* k, const Job* j, const uint32_t* const* a, const size_t* pix, int rows) {
  const int out_c = k->out_c, spatial = k->spatial_transform;
  const size_t ohw = (size_t)k->out_h * k->out_w, words = k->out_words;
  /* the activation's range in 2 pop: [K - clamp_max, K - clamp_min] (int64 first: no overflow) */
  const int64_t lo64 = (int64_t)k->ktot - k->clamp_max, hi64 = (int64_t)k->ktot - k->clamp_min;
  const int32_t lo2 = (int32_t)(lo64 < -(1 << 30) ? -(1 << 30) : lo64);
  const int32_t hi2 = (int32_t)(hi64 > (1 << 30) ? (1 << 30) : hi64);
  const int act = k->p.activation == ACT_NONE ? 0 : lo2 <= 0 && hi2 % 2 == 0 ? ACT_MIN_POP : ACT_CLAMP;
  const OutParams o = {vdupq_n_s32(lo2), vdupq_n_s32(hi2), vdupq_n_s32(hi2 / 2), k->residual_clamp,
                       vdupq_n_f32(k->residual_min), vdupq_n_f32(k->residual_max)};
  const uint8x8_t bit = vcreate_u8(0x8040201008040201ull);
  const float* res = j->residual;
  size_t out_at[NEON_ROWS], t_at[NEON_ROWS]; /* each pixel's first output, its transform row */
  for (int r = 0; r < NEON_ROWS; r++) {
    out_at[r] = pix[r] * (k->bitpacked_out ? 4 * words : (size_t)out_c);
    t_at[r] = spatial ? pix[r] % ohw * out_c : 0;
  }
  for (int c0 = 0; c0 < out_c; c0 += NEON_COLS) {
    int32x4_t cnt[NEON_ROWS][2];
    bconv_counts_neon(k, a, (const uint8_t*)(k->packed + (size_t)(c0 / NEON_COLS) * k->packed_tile_words), cnt);
    if (k->bitpacked_out) {
      /* bit c: the count exceeds the channel's threshold; 8 channels are one output byte */
      const int32x4_t t0 = vld1q_s32(k->threshold + c0), t1 = vld1q_s32(k->threshold + c0 + 4);
      uint8_t* y = (uint8_t*)j->out + c0 / 8;
#pragma GCC unroll 4
      for (int r = 0; r < NEON_ROWS; r++) {
        if (r >= rows) break;
        uint16x8_t m = vcombine_u16(vmovn_u32(vcgtq_s32(cnt[r][0], t0)), vmovn_u32(vcgtq_s32(cnt[r][1], t1)));
        y[out_at[r]] = vaddv_u8(vand_u8(vmovn_u16(m), bit));
      }
      if (c0 + NEON_COLS >= out_c) /* the unused bytes of each pixel's last word are 0 */
        for (int r = 0; r < rows; r++)
          for (size_t byte = c0 / 8 + 1; byte < 4 * words; byte++) ((uint8_t*)j->out)[out_at[r] + byte] = 0;
      continue;
    }
    float* y = (float*)j->out + c0;
    const float *m = k->multiplier + c0, *b = k->bias + c0, *rc = res ? res + c0 : NULL;
    if (rows < NEON_ROWS || out_c - c0 < NEON_COLS) {
      const int n = out_c - c0 < NEON_COLS ? out_c - c0 : NEON_COLS;
#pragma GCC unroll 4
      for (int r = 0; r < NEON_ROWS; r++) /* constant indices: the counts stay in registers */
        if (r < rows)
          bconv_float_part_neon(cnt[r][0], cnt[r][1], act, &o, m + t_at[r], b + t_at[r], rc ? rc + out_at[r] : NULL,
                                y + out_at[r], n);
      continue;
    }
    /* specialised: the fused activation, and a fused ADD with or without its clamp */
#define BNN_TILE_ACT(RES, RCLAMP)                                                                  \
  do {                                                                                             \
    if (spatial)                                                                                   \
      bconv_float_tile_neon(cnt, act ? ACT_CLAMP : 0, RCLAMP, 1, &o, m, b, t_at, RES, y, out_at); \
    else if (act == ACT_MIN_POP)                                                                   \
      bconv_float_tile_neon(cnt, ACT_MIN_POP, RCLAMP, 0, &o, m, b, t_at, RES, y, out_at);         \
    else if (act)                                                                                  \
      bconv_float_tile_neon(cnt, ACT_CLAMP, RCLAMP, 0, &o, m, b, t_at, RES, y, out_at);           \
    else                                                                                           \
      bconv_float_tile_neon(cnt, 0, RCLAMP, 0, &o, m, b, t_at, RES, y, out_at);                   \
  } while (0)
    if (!rc)
      BNN_TILE_ACT(NULL, 0);
    else if (!o.rclamp)
      BNN_TILE_ACT(rc, 0);
    else
      BNN_TILE_ACT(rc, 1);
#undef BNN_TILE_ACT
  }
}

const CodePath PATH_NEON = {.name = "neon", .bgemm = bgemm_neon, .tile = bconv_tile_neon, .pack = bconv_pack_neon,
                            .tile_rows = NEON_ROWS, .tile_cols = NEON_COLS, .step_words = 4, .tail_words = 2,
                            .max_k_bits = 65535, .adds_residual = 1};

/* --- General path ------------------------------------------------------------------------------ */

/* 2 rows x 4 columns: VCNT byte counts widened pairwise into 16-bit lanes. */
void bgemm_neon(const uint32_t* a, int m, const uint32_t* b, int nb, int n, int32_t* c, int ldc) {
  const int nv = n / 4;
  for (int i = 0; i < m; i += 2) {
    const int two = i + 1 < m;
    const uint8_t* a0 = (const uint8_t*)(a + (size_t)i * n);
    const uint8_t* a1 = two ? (const uint8_t*)(a + (size_t)(i + 1) * n) : a0;
    for (int j = 0; j < nb; j += 4) {
      const uint8_t* bj[4];
      for (int q = 0; q < 4; q++) bj[q] = (const uint8_t*)(b + (size_t)(j + q < nb ? j + q : j) * n);
      uint32x4_t acc[8];
      for (int q = 0; q < 8; q++) acc[q] = vdupq_n_u32(0);
      for (int k0 = 0; k0 < nv; k0 += 16) { /* 16 x 16 bytes: 16-bit lanes cannot overflow */
        int k1 = k0 + 16 < nv ? k0 + 16 : nv;
        uint16x8_t t[8];
        for (int q = 0; q < 8; q++) t[q] = vdupq_n_u16(0);
        for (int k = k0; k < k1; k++) {
          uint8x16_t x0 = vld1q_u8(a0 + 16 * k), x1 = vld1q_u8(a1 + 16 * k);
          for (int q = 0; q < 4; q++) {
            uint8x16_t w = vld1q_u8(bj[q] + 16 * k);
            t[q] = vpadalq_u8(t[q], vcntq_u8(veorq_u8(x0, w)));
            t[4 + q] = vpadalq_u8(t[4 + q], vcntq_u8(veorq_u8(x1, w)));
          }
        }
        for (int q = 0; q < 8; q++) acc[q] = vpadalq_u16(acc[q], t[q]);
      }
      for (int q = 0; q < 4 && j + q < nb; q++) {
        c[i * ldc + j + q] = (int)vaddvq_u32(acc[q]);
        if (two) c[(i + 1) * ldc + j + q] = (int)vaddvq_u32(acc[4 + q]);
      }
    }
  }
}
#endif
