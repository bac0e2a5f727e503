/* aarch64 (NEON, part of every ARMv8-A core): LceBconv2d's fast-path tile kernel with its
 * output transforms, and the binary GEMM of the general path. */
#include "bnn.h"

#if defined(__aarch64__)
#include <arm_neon.h>
#include <stdint.h>
#include <string.h>

/* --- Fast path: 4 pixels x 8 channels per tile ----------------------------------------------
 *
 * K steps of 128 bits. For pixel pair (r0, r1) and channel c, CNT(x_r0 ^ w_c) and
 * CNT(x_r1 ^ w_c) are summed bytewise in pairs by one ADDP (its low half from the first,
 * its high half from the second), and UADALP adds those bytes in pairs into 16-bit lanes:
 * one accumulator holds two outputs (lanes 0-3: r0, lanes 4-7: r1), and per two EOR/CNT
 * there is one ADDP and one UADALP (UADALP issues on one of the Cortex-A72's two SIMD
 * pipes; one per CNT would bound the loop by it). 2 x 8 accumulators, 4 activation and 8
 * filter registers: 28 of the 32. A segment may end in a 64-bit tail: the tails of two
 * pixels share one register (low and high half) against the filter tail stored twice,
 * and UADALP takes their CNT directly, so a 64-channel 3x3 row (6 words) costs what its
 * bits cost. 16-bit lanes hold any receptive field below 65536 bits (max_k_bits).
 *
 * The filter of channels [c0, c0 + 8) is stored for each K step as 8 x 16 bytes (one
 * LD1 of 4 registers, twice), tails as their 8 bytes twice. */

#define NEON_ROWS 4
#define NEON_COLS 8

static void bconv_pack_neon(Kernel* k) {
  const int ksw = k->kseg_words, nq = ksw / 4, tail = ksw % 4 != 0;
  const int tiles = (k->out_c + NEON_COLS - 1) / NEON_COLS;
  const int filter_words = k->taps * k->words_g; /* of k->filter's row_words; the rest is 0 */
  k->packed_tile_words = (size_t)k->knseg * (nq + tail) * NEON_COLS * 4;
  k->packed = (uint32_t*)aligned(sizeof(uint32_t) * k->packed_tile_words * tiles);
  if (!k->packed) return;
  for (int t = 0; t < tiles; t++) {
    uint32_t* dst = k->packed + (size_t)t * k->packed_tile_words;
    for (int s = 0; s < k->knseg; s++)
      for (int q = 0; q < nq + tail; q++)
        for (int c = 0; c < NEON_COLS; c++, dst += 4) {
          int co = t * NEON_COLS + c;
          for (int w = 0; w < 4; w++) {
            int kw = s * ksw + 4 * q + (q == nq ? w % 2 : w); /* a tail's two words, twice */
            dst[w] = co < k->out_c && kw < filter_words ? k->filter[(size_t)co * k->row_words + kw] : 0;
          }
        }
  }
}

/* One filter column (register W) against the four pixels in v0-v3 into accumulators A (pixels
 * 0, 1) and B (pixels 2, 3): the 12 instructions per column of a full K step. */
#define BNN_STEP_COL(W, A, B)                                                          \
  "eor v8.16b, v0.16b, " W ".16b\n eor v9.16b, v1.16b, " W ".16b\n"                    \
  "eor v10.16b, v2.16b, " W ".16b\n eor v11.16b, v3.16b, " W ".16b\n"                  \
  "cnt v8.16b, v8.16b\n cnt v9.16b, v9.16b\n cnt v10.16b, v10.16b\n cnt v11.16b, v11.16b\n" \
  "addp v8.16b, v8.16b, v9.16b\n addp v10.16b, v10.16b, v11.16b\n"                   \
  "uadalp " A ".8h, v8.16b\n uadalp " B ".8h, v10.16b\n"

/* The same for a tail: v0 holds pixels 0 and 1, v2 pixels 2 and 3, W the filter tail twice. */
#define BNN_TAIL_COL(W, A, B)                                                  \
  "eor v8.16b, v0.16b, " W ".16b\n eor v10.16b, v2.16b, " W ".16b\n"           \
  "cnt v8.16b, v8.16b\n cnt v10.16b, v10.16b\n"                                \
  "uadalp " A ".8h, v8.16b\n uadalp " B ".8h, v10.16b\n"

#define BNN_HALF(COL, A0, A1, A2, A3, B0, B1, B2, B3)                                               \
  "ld1 {v4.16b, v5.16b, v6.16b, v7.16b}, [%[w]], #64\n"                                             \
  COL("v4", A0, B0) COL("v5", A1, B1) COL("v6", A2, B2) COL("v7", A3, B3)

#define BNN_COLS8(COL)                                                          \
  BNN_HALF(COL, "v16", "v17", "v18", "v19", "v24", "v25", "v26", "v27")        \
  BNN_HALF(COL, "v20", "v21", "v22", "v23", "v28", "v29", "v30", "v31")

/* The accumulators of a pixel pair (A0-A7: columns 0-7) to the pair's two rows of 8 int32
 * counts, channels 0-3 then 4-7 of the first pixel in D0, D1, of the second in D2, D3. */
#define BNN_REDUCE(A0, A1, A2, A3, A4, A5, A6, A7, D0, D1, D2, D3)                          \
  "addp v0.8h, " A0 ".8h, " A1 ".8h\n addp v1.8h, " A2 ".8h, " A3 ".8h\n"                   \
  "addp v2.8h, " A4 ".8h, " A5 ".8h\n addp v3.8h, " A6 ".8h, " A7 ".8h\n"                   \
  "addp v0.8h, v0.8h, v1.8h\n addp v1.8h, v2.8h, v3.8h\n"                                  \
  "uzp1 v2.8h, v0.8h, v1.8h\n uzp2 v3.8h, v0.8h, v1.8h\n"                                  \
  "uxtl " D0 ".4s, v2.4h\n uxtl2 " D1 ".4s, v2.8h\n uxtl " D2 ".4s, v3.4h\n uxtl2 " D3 ".4s, v3.8h\n"

/* The counts of one tile, 4 pixels (rows at a[r] + kseg_off[s]) x the 8 channels whose
 * packed filter starts at w, as cnt[pixel][channels 0-3, 4-7], in registers. One assembly
 * block from the zeroed accumulators to the reduced counts: compiled from intrinsics, GCC 12
 * spilled accumulators inside the K loop and used register-offset loads (two micro-ops each
 * on the A72); here the 16 accumulators live in v16-v31 throughout, every load
 * post-increments its pointer, and the counts come out in v16-v23. */
static inline void bconv_counts_neon(const Kernel* k, const uint32_t* const* a, const uint8_t* w,
                                     int32x4_t cnt[NEON_ROWS][2]) {
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
      "1:\n" /* each full K step */
      "ldr q0, [%[p0]], #16\n ldr q1, [%[p1]], #16\n ldr q2, [%[p2]], #16\n ldr q3, [%[p3]], #16\n"
      BNN_COLS8(BNN_STEP_COL)
      "subs %[n], %[n], #1\n"
      "b.ne 1b\n"
      "2:\n"
      "cbz %[tail], 3f\n"
      "ldr d0, [%[p0]]\n ld1 {v0.d}[1], [%[p1]]\n ldr d2, [%[p2]]\n ld1 {v2.d}[1], [%[p3]]\n"
      BNN_COLS8(BNN_TAIL_COL)
      "3:\n"
      "subs %[segs], %[segs], #1\n"
      "b.ne 0b\n"
      BNN_REDUCE("v16", "v17", "v18", "v19", "v20", "v21", "v22", "v23", "v16", "v17", "v18", "v19")
      BNN_REDUCE("v24", "v25", "v26", "v27", "v28", "v29", "v30", "v31", "v20", "v21", "v22", "v23")
      : "=&w"(c00), "=&w"(c01), "=&w"(c10), "=&w"(c11), "=&w"(c20), "=&w"(c21), "=&w"(c30), "=&w"(c31),
        [w] "+r"(w), [offs] "+r"(offs), [segs] "+r"(segs), [n] "=&r"(n), [t] "=&r"(t), [p0] "=&r"(p0),
        [p1] "=&r"(p1), [p2] "=&r"(p2), [p3] "=&r"(p3)
      : [a0] "r"(a[0]), [a1] "r"(a[1]), [a2] "r"(a[2]), [a3] "r"(a[3]), [nq] "r"(nq), [tail] "r"(tail)
      : "v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "v8", "v9", "v10", "v11", "v24", "v25", "v26", "v27",
        "v28", "v29", "v30", "v31", "cc", "memory");
  cnt[0][0] = c00, cnt[0][1] = c01, cnt[1][0] = c10, cnt[1][1] = c11;
  cnt[2][0] = c20, cnt[2][1] = c21, cnt[3][0] = c30, cnt[3][1] = c31;
}

/* The float transform of 8 channels, h = pop, or with a fused activation h = 0.5 (K -
 * clamp(K - 2 pop, lo, hi)) = clamp(pop, (K - hi) / 2, (K - lo) / 2), the same float exactly
 * (an integer or half-integer); then y = h m' + b' in two roundings, as LCE's reference
 * kernel computes it. */
static inline __attribute__((always_inline)) void bconv_float8_neon(const int32x4_t* cnt, int act, float32x4_t hmin, float32x4_t hmax,
                                     const float* m, const float* b, float32x4_t* y0, float32x4_t* y1) {
  float32x4_t h0 = vcvtq_f32_s32(cnt[0]), h1 = vcvtq_f32_s32(cnt[1]);
  if (act) {
    h0 = vminq_f32(vmaxq_f32(h0, hmin), hmax);
    h1 = vminq_f32(vmaxq_f32(h1, hmin), hmax);
  }
  *y0 = vaddq_f32(vmulq_f32(h0, vld1q_f32(m)), vld1q_f32(b));
  *y1 = vaddq_f32(vmulq_f32(h1, vld1q_f32(m + 4)), vld1q_f32(b + 4));
}

/* A channel tile with fewer than 8 channels (the last one of out_c % 8 != 0). */
__attribute__((noinline)) static void bconv_float_part_neon(const int32x4_t* cnt, int act, float32x4_t hmin,
                                                            float32x4_t hmax, const float* m, const float* b,
                                                            float* yo, int n) {
  float32x4_t y[2];
  float tmp[NEON_COLS];
  bconv_float8_neon(cnt, act, hmin, hmax, m, b, &y[0], &y[1]);
  vst1q_f32(tmp, y[0]);
  vst1q_f32(tmp + 4, y[1]);
  for (int c = 0; c < n; c++) yo[c] = tmp[c];
}

/* The float outputs of a tile's rows, 8 channels each (act a constant where it is inlined). */
static inline __attribute__((always_inline)) void bconv_float_rows_neon(
    const int32x4_t cnt[NEON_ROWS][2], int rows, int act, float32x4_t hmin, float32x4_t hmax, const float* m,
    const float* b, float* y, const size_t* t_at, const size_t* out_at) {
#pragma GCC unroll 4
  for (int r = 0; r < NEON_ROWS; r++) {
    if (r >= rows) break;
    float32x4_t y0, y1;
    bconv_float8_neon(cnt[r], act, hmin, hmax, m + t_at[r], b + t_at[r], &y0, &y1);
    vst1q_f32(y + out_at[r], y0);
    vst1q_f32(y + out_at[r] + 4, y1);
  }
}

static void bconv_tile_neon(const Kernel* k, const Job* j, const uint32_t* const* a, const size_t* pix, int rows) {
  const int out_c = k->out_c, act = k->p.activation != ACT_NONE, spatial = k->spatial_transform;
  const size_t ohw = (size_t)k->out_h * k->out_w, words = k->out_words;
  const float32x4_t hmin = vdupq_n_f32(0.5f * (float)(k->ktot - k->clamp_max));
  const float32x4_t hmax = vdupq_n_f32(0.5f * (float)(k->ktot - k->clamp_min));
  const uint8x8_t bit = vcreate_u8(0x8040201008040201ull);
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
    const float *m = k->multiplier + c0, *b = k->bias + c0;
    if (out_c - c0 < NEON_COLS) {
      for (int r = 0; r < rows; r++)
        bconv_float_part_neon(cnt[r], act, hmin, hmax, m + t_at[r], b + t_at[r], y + out_at[r], out_c - c0);
      continue;
    }
    if (act)
      bconv_float_rows_neon(cnt, rows, 1, hmin, hmax, m, b, y, t_at, out_at);
    else
      bconv_float_rows_neon(cnt, rows, 0, hmin, hmax, m, b, y, t_at, out_at);
  }
}

const CodePath PATH_NEON = {.name = "neon", .bgemm = bgemm_neon, .tile = bconv_tile_neon, .pack = bconv_pack_neon,
                            .tile_rows = NEON_ROWS, .tile_cols = NEON_COLS, .step_words = 4, .tail_words = 2,
                            .max_k_bits = 65535};

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
