/* x86-64: the binary GEMMs of the general path for AVX2 (nibble lookup) and AVX-512
 * VPOPCNTDQ (the POPCNT one is bgemm.c's loop) and LceBconv2d's AVX-512 fast path, each
 * compiled with a function target attribute and picked at run time (bgemm.c), so the
 * library runs on any x86-64 CPU. */
#include "bnn.h"

#if defined(__x86_64__)
#include <immintrin.h>

__attribute__((target("avx2"))) static inline __m256i popcnt256(__m256i v) {
  const __m256i lut = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4, 0, 1, 1, 2, 1, 2, 2, 3, 1,
                                       2, 2, 3, 2, 3, 3, 4);
  const __m256i low = _mm256_set1_epi8(0x0f);
  __m256i lo = _mm256_and_si256(v, low), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), low);
  return _mm256_add_epi8(_mm256_shuffle_epi8(lut, lo), _mm256_shuffle_epi8(lut, hi));
}

__attribute__((target("avx2"))) static inline int hsum256(__m256i v) {
  __m128i s = _mm_add_epi64(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  return (int)(_mm_cvtsi128_si64(s) + _mm_extract_epi64(s, 1));
}

/* 2 rows x 4 columns: byte counts of up to 8 registers summed before one SAD each. */
__attribute__((target("avx2"))) void bgemm_avx2(const uint32_t* a, int m, const uint32_t* b, int nb, int n,
                                                        int32_t* c, int ldc) {
  const int nv = n / 8;
  const __m256i zero = _mm256_setzero_si256();
  int i = 0;
  for (; i < m; i += 2) {
    const int two = i + 1 < m;
    const __m256i* a0 = (const __m256i*)(a + (size_t)i * n);
    const __m256i* a1 = two ? (const __m256i*)(a + (size_t)(i + 1) * n) : a0;
    int j = 0;
    for (; j < nb; j += 4) {
      const __m256i* bj[4];
      for (int q = 0; q < 4; q++) bj[q] = (const __m256i*)(b + (size_t)(j + q < nb ? j + q : j) * n);
      __m256i acc[8];
      for (int q = 0; q < 8; q++) acc[q] = zero;
      for (int k0 = 0; k0 < nv; k0 += 8) {
        int k1 = k0 + 8 < nv ? k0 + 8 : nv;
        __m256i t[8];
        for (int q = 0; q < 8; q++) t[q] = zero;
        for (int k = k0; k < k1; k++) {
          __m256i x0 = _mm256_load_si256(a0 + k), x1 = _mm256_load_si256(a1 + k);
          for (int q = 0; q < 4; q++) {
            __m256i w = _mm256_load_si256(bj[q] + k);
            t[q] = _mm256_add_epi8(t[q], popcnt256(_mm256_xor_si256(x0, w)));
            t[4 + q] = _mm256_add_epi8(t[4 + q], popcnt256(_mm256_xor_si256(x1, w)));
          }
        }
        for (int q = 0; q < 8; q++) acc[q] = _mm256_add_epi64(acc[q], _mm256_sad_epu8(t[q], zero));
      }
      for (int q = 0; q < 4 && j + q < nb; q++) {
        c[i * ldc + j + q] = hsum256(acc[q]);
        if (two) c[(i + 1) * ldc + j + q] = hsum256(acc[4 + q]);
      }
    }
  }
}

/* Sums of the 64-bit lanes of a, b, c, d, as 4 int32 (a tree: 12 instructions for 4,
 * where 4 separate reductions take about 28). */
__attribute__((target("avx512f"))) static inline __m128i reduce4_512(__m512i a, __m512i b, __m512i c, __m512i d) {
  __m512i ab = _mm512_add_epi64(_mm512_unpacklo_epi64(a, b), _mm512_unpackhi_epi64(a, b));
  __m512i cd = _mm512_add_epi64(_mm512_unpacklo_epi64(c, d), _mm512_unpackhi_epi64(c, d));
  __m512i s = _mm512_add_epi64(_mm512_shuffle_i64x2(ab, cd, _MM_SHUFFLE(2, 0, 2, 0)),
                               _mm512_shuffle_i64x2(ab, cd, _MM_SHUFFLE(3, 1, 3, 1)));
  /* s: [a,b] halves in lanes 0,1 and [c,d] halves in lanes 2,3 */
  __m512i w = _mm512_add_epi64(s, _mm512_shuffle_i64x2(s, s, _MM_SHUFFLE(2, 3, 0, 1)));
  __m512i g = _mm512_permutexvar_epi64(_mm512_setr_epi64(0, 1, 4, 5, 0, 1, 4, 5), w);
  return _mm256_castsi256_si128(_mm512_cvtepi64_epi32(g));
}

/* 4 rows x 4 columns of 512-bit XOR + VPOPCNTQ, 16 accumulators; an 8-word tail is
 * read with a masked load. */
__attribute__((target("avx512f,avx512vpopcntdq"))) void bgemm_avx512(const uint32_t* a, int m,
                                                                           const uint32_t* b, int nb, int n,
                                                                           int32_t* c, int ldc) {
  const int nv = n / 16, tail = (n % 16) != 0;
  for (int i = 0; i < m; i += 4) {
    const uint32_t* ar[4];
    int rows = m - i < 4 ? m - i : 4;
    for (int r = 0; r < 4; r++) ar[r] = a + (size_t)(i + (r < rows ? r : 0)) * n;
    for (int j = 0; j < nb; j += 4) {
      int cols = nb - j < 4 ? nb - j : 4;
      const uint32_t* bc[4];
      for (int q = 0; q < 4; q++) bc[q] = b + (size_t)(j + (q < cols ? q : 0)) * n;
      __m512i acc[16];
      for (int q = 0; q < 16; q++) acc[q] = _mm512_setzero_si512();
      for (int k = 0; k < nv + tail; k++) {
        __m512i x[4], w[4];
        if (k < nv) {
          for (int r = 0; r < 4; r++) x[r] = _mm512_loadu_si512(ar[r] + 16 * k);
          for (int q = 0; q < 4; q++) w[q] = _mm512_loadu_si512(bc[q] + 16 * k);
        } else {
          for (int r = 0; r < 4; r++) x[r] = _mm512_maskz_loadu_epi64(0x0f, ar[r] + 16 * k);
          for (int q = 0; q < 4; q++) w[q] = _mm512_maskz_loadu_epi64(0x0f, bc[q] + 16 * k);
        }
        for (int r = 0; r < 4; r++)
          for (int q = 0; q < 4; q++)
            acc[r * 4 + q] = _mm512_add_epi64(acc[r * 4 + q], _mm512_popcnt_epi64(_mm512_xor_si512(x[r], w[q])));
      }
      for (int r = 0; r < rows; r++) {
        int32_t out[4];
        _mm_storeu_si128((__m128i*)out, reduce4_512(acc[r * 4], acc[r * 4 + 1], acc[r * 4 + 2], acc[r * 4 + 3]));
        for (int q = 0; q < cols; q++) c[(i + r) * ldc + j + q] = out[q];
      }
    }
  }
}

/* --- LceBconv2d's fast path on AVX-512 VPOPCNTDQ: 8 pixels x 32 channels per tile ------------
 *
 * Lanes are channels: each 32-bit word of a pixel's receptive field is broadcast to the 16
 * lanes of a register and XORed with that word of 16 channels side by side, and VPOPCNTD
 * adds 16 channels' counts at once. An accumulator is then 16 finished counts in channel
 * order, one float conversion away from the output transform: no horizontal sums, no
 * narrowing (VPMOVQD would compete with VPOPCNT for its port), and no padding at all (a
 * 64-channel 3x3 row, 576 bits, is 18 words; in 512-bit steps per output it would be two
 * steps, one mostly empty). Per word: 8 broadcast loads, 2 filter loads and 16 x (XOR,
 * VPOPCNTD, ADD) for 8 pixels x 32 channels. Receptive fields are read in place, one
 * segment per filter row. The filter of channels [c0, c0 + 32) is stored per word as 32
 * lanes. */

#define X86_ROWS 8
#define X86_REGS 2 /* registers of 16 channels */
#define X86_COLS (16 * X86_REGS)

static void bconv_pack_avx512(Kernel* k) {
  const int tiles = (k->out_c + X86_COLS - 1) / X86_COLS, filter_words = k->taps * k->words_g;
  k->packed_tile_words = (size_t)k->knseg * k->kseg_words * X86_COLS;
  k->packed = (uint32_t*)aligned(sizeof(uint32_t) * k->packed_tile_words * tiles);
  if (!k->packed) return;
  uint32_t* dst = k->packed;
  for (int t = 0; t < tiles; t++)
    for (int kw = 0; kw < k->knseg * k->kseg_words; kw++)
      for (int c = 0; c < X86_COLS; c++) {
        int co = t * X86_COLS + c;
        *dst++ = co < k->out_c && kw < filter_words ? k->filter[(size_t)co * k->row_words + kw] : 0;
      }
}

__attribute__((target("avx512f,avx512vl,avx512vpopcntdq"))) static void bconv_tile_avx512(
    const Kernel* k, const Job* j, const uint32_t* const* a, const size_t* pix, int rows) {
  const int out_c = k->out_c, ksw = k->kseg_words, act = k->p.activation != ACT_NONE;
  const size_t ohw = (size_t)k->out_h * k->out_w, words = k->out_words;
  const __m512 hmin = _mm512_set1_ps(0.5f * (float)(k->ktot - k->clamp_max));
  const __m512 hmax = _mm512_set1_ps(0.5f * (float)(k->ktot - k->clamp_min));
  const __m512 rlo = _mm512_set1_ps(k->residual_min), rhi = _mm512_set1_ps(k->residual_max);
  size_t out_at[X86_ROWS], t_at[X86_ROWS];
  for (int r = 0; r < X86_ROWS; r++) {
    out_at[r] = pix[r] * (k->bitpacked_out ? 4 * words : (size_t)out_c);
    t_at[r] = k->spatial_transform ? pix[r] % ohw * out_c : 0;
  }
  for (int c0 = 0; c0 < out_c; c0 += X86_COLS) {
    const int* w = (const int*)(k->packed + (size_t)(c0 / X86_COLS) * k->packed_tile_words);
    __m512i acc[X86_ROWS][X86_REGS];
    for (int r = 0; r < X86_ROWS; r++)
      for (int z = 0; z < X86_REGS; z++) acc[r][z] = _mm512_setzero_si512();
    for (int s = 0; s < k->knseg; s++) {
      const int* x[X86_ROWS];
      for (int r = 0; r < X86_ROWS; r++) x[r] = (const int*)(a[r] + k->kseg_off[s]);
      for (int q = 0; q < ksw; q++, w += X86_COLS) {
        __m512i w0 = _mm512_load_si512(w), w1 = _mm512_load_si512(w + 16);
        for (int r = 0; r < X86_ROWS; r++) {
          __m512i xb = _mm512_set1_epi32(x[r][q]);
          acc[r][0] = _mm512_add_epi32(acc[r][0], _mm512_popcnt_epi32(_mm512_xor_si512(xb, w0)));
          acc[r][1] = _mm512_add_epi32(acc[r][1], _mm512_popcnt_epi32(_mm512_xor_si512(xb, w1)));
        }
      }
    }
    for (int z = 0; z < X86_REGS; z++) {
      const int cz = c0 + 16 * z, n = out_c - cz < 16 ? out_c - cz : 16;
      if (n <= 0) break;
      const __mmask16 valid = (__mmask16)(n == 16 ? 0xffff : (1u << n) - 1);
      if (k->bitpacked_out) { /* bit c: the count exceeds the channel's threshold; 8 channels a byte */
        const __m512i thr = _mm512_loadu_si512(k->threshold + cz);
        uint8_t* y = (uint8_t*)j->out + cz / 8;
        for (int r = 0; r < rows; r++) {
          __mmask16 bits = _mm512_cmpgt_epi32_mask(acc[r][z], thr);
          y[out_at[r]] = (uint8_t)bits;
          if (n > 8) y[out_at[r] + 1] = (uint8_t)(bits >> 8);
          if (cz + 16 >= out_c) /* the unused bytes of the pixel's last word are 0 */
            for (size_t byte = (cz + n + 7) / 8; byte < 4 * words; byte++) y[out_at[r] + byte - cz / 8] = 0;
        }
        continue;
      }
      /* h = pop, or clamp(pop, (K - hi) / 2, (K - lo) / 2) with a fused activation (the same
       * float as LCE's 0.5 (K - clamp(K - 2 pop))), then y = h m' + b' in two roundings */
      for (int r = 0; r < rows; r++) {
        __m512 h = _mm512_cvtepi32_ps(acc[r][z]);
        if (act) h = _mm512_min_ps(_mm512_max_ps(h, hmin), hmax);
        const float* m = k->multiplier + t_at[r] + cz;
        const float* b = k->bias + t_at[r] + cz;
        __m512 y = _mm512_add_ps(_mm512_mul_ps(h, _mm512_loadu_ps(m)), _mm512_loadu_ps(b));
        if (j->residual) {
          y = _mm512_add_ps(y, _mm512_maskz_loadu_ps(valid, j->residual + out_at[r] + cz));
          if (k->residual_clamp) /* max(y, lo) is lo where both are zeros: +0, as the generic pass */
            y = _mm512_min_ps(_mm512_max_ps(y, rlo), rhi);
        }
        _mm512_mask_storeu_ps((float*)j->out + out_at[r] + cz, valid, y);
      }
    }
  }
}

const CodePath PATH_AVX512 = {.name = "avx512", .bgemm = bgemm_avx512, .tile = bconv_tile_avx512,
                              .pack = bconv_pack_avx512, .tile_rows = X86_ROWS, .tile_cols = X86_COLS,
                              .step_words = 1, .tail_words = 0, .max_k_bits = 1 << 30,
                              .adds_residual = 1};
#endif
