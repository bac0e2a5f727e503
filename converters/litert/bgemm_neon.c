/* Binary GEMM micro-kernel for aarch64 (NEON, part of every ARMv8-A core). */
#include "bnn.h"

#if defined(__aarch64__)
#include <arm_neon.h>

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
