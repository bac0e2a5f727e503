/* Binary GEMM micro-kernels for x86-64: POPCNT, AVX2 (nibble lookup) and AVX-512
 * VPOPCNTDQ, each compiled with a function target attribute and picked at run time
 * (bgemm.c), so the library runs on any x86-64 CPU. */
#include "bnn.h"

#if defined(__x86_64__)
#include <immintrin.h>

__attribute__((target("popcnt"))) void bgemm_popcnt(const uint32_t* a, int m, const uint32_t* b, int nb,
                                                           int n, int32_t* c, int ldc) {
  bgemm_portable(a, m, b, nb, n, c, ldc); /* the same loop, with the popcnt instruction */
}

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
#endif
