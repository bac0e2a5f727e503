/* Binary GEMM: the portable micro-kernel and the choice of code path (the SIMD kernels
 * are in bgemm_x86.c and bgemm_neon.c). */
#include "bnn.h"

#include <string.h>

/* The portable loop, inlined into each caller so that it is compiled for the caller's
 * target: __builtin_popcountll is the POPCNT instruction in bgemm_popcnt, a bit-twiddling
 * sequence in bgemm_portable. */
static inline __attribute__((always_inline)) void bgemm_loop(const uint32_t* a, int m, const uint32_t* b, int nb,
                                                             int n, int32_t* c, int ldc) {
  int n64 = n / 2;
  for (int i = 0; i < m; i++) {
    const uint64_t* ai = (const uint64_t*)(a + (size_t)i * n);
    int j = 0;
    for (; j + 4 <= nb; j += 4) {
      const uint64_t* b0 = (const uint64_t*)(b + (size_t)j * n);
      const uint64_t* b1 = b0 + n64;
      const uint64_t* b2 = b1 + n64;
      const uint64_t* b3 = b2 + n64;
      int s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      for (int k = 0; k < n64; k++) {
        uint64_t x = ai[k];
        s0 += __builtin_popcountll(x ^ b0[k]);
        s1 += __builtin_popcountll(x ^ b1[k]);
        s2 += __builtin_popcountll(x ^ b2[k]);
        s3 += __builtin_popcountll(x ^ b3[k]);
      }
      c[i * ldc + j] = s0;
      c[i * ldc + j + 1] = s1;
      c[i * ldc + j + 2] = s2;
      c[i * ldc + j + 3] = s3;
    }
    for (; j < nb; j++) {
      const uint64_t* bj = (const uint64_t*)(b + (size_t)j * n);
      int s = 0;
      for (int k = 0; k < n64; k++) s += __builtin_popcountll(ai[k] ^ bj[k]);
      c[i * ldc + j] = s;
    }
  }
}

void bgemm_portable(const uint32_t* a, int m, const uint32_t* b, int nb, int n, int32_t* c, int ldc) {
  bgemm_loop(a, m, b, nb, n, c, ldc);
}

#if defined(__x86_64__)
__attribute__((target("popcnt"))) void bgemm_popcnt(const uint32_t* a, int m, const uint32_t* b, int nb, int n,
                                                    int32_t* c, int ldc) {
  bgemm_loop(a, m, b, nb, n, c, ldc);
}
#endif

static const CodePath PATH_PORTABLE = {.name = "portable", .bgemm = bgemm_portable};
#if defined(__x86_64__)
static const CodePath PATH_POPCNT = {.name = "popcnt", .bgemm = bgemm_popcnt};
static const CodePath PATH_AVX2 = {.name = "avx2", .bgemm = bgemm_avx2};
#endif

const CodePath* g_path = NULL;

/* Forces a code path ("portable", "popcnt", "avx2", "avx512", "neon"), for tests; returns 0
 * when this CPU or build does not have it. An empty name picks the best one. */
EXPORT int bnn_select_path(const char* name) {
  const CodePath* chosen = &PATH_PORTABLE;
  int want_best = !name || !*name;
#if defined(__x86_64__)
  __builtin_cpu_init();
  int has_popcnt = __builtin_cpu_supports("popcnt");
  int has_avx2 = __builtin_cpu_supports("avx2");
  int has_avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
                   __builtin_cpu_supports("avx512vpopcntdq");
  if (want_best) {
    if (has_avx512) chosen = &PATH_AVX512;
    else if (has_avx2) chosen = &PATH_AVX2;
    else if (has_popcnt) chosen = &PATH_POPCNT;
  } else if (strcmp(name, "avx512") == 0) {
    if (!has_avx512) return 0;
    chosen = &PATH_AVX512;
  } else if (strcmp(name, "avx2") == 0) {
    if (!has_avx2) return 0;
    chosen = &PATH_AVX2;
  } else if (strcmp(name, "popcnt") == 0) {
    if (!has_popcnt) return 0;
    chosen = &PATH_POPCNT;
  } else if (strcmp(name, "portable") != 0) {
    return 0;
  }
#elif defined(__aarch64__)
  if (want_best || strcmp(name, "neon") == 0) chosen = &PATH_NEON;
  else if (strcmp(name, "portable") != 0) return 0;
#else
  if (!want_best && strcmp(name, "portable") != 0) return 0;
#endif
  g_path = chosen;
  return 1;
}

EXPORT const char* bnn_path(void) {
  if (!g_path) bnn_select_path(NULL);
  return g_path->name;
}
