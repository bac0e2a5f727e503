/* Self-test of the binary GEMM code paths: every path this CPU has must give the
 * portable path's counts on random inputs of awkward sizes. Built as a program with the
 * library's C files, so it also runs under qemu-aarch64 for the NEON path:
 *
 *   cc -O2 -o selftest selftest.c $(ls *.c | grep -v selftest) -lpthread -lm && ./selftest
 *   aarch64-linux-gnu-gcc -O2 -static -o selftest selftest.c $(ls *.c | grep -v selftest) -lpthread -lm
 *   qemu-aarch64-static ./selftest
 *
 * (toolchain.compile_command builds the same). Prints one line per path and exits 1 on
 * the first mismatch.
 */
#include <stdio.h>
#include <stdlib.h>

#include "bnn.h"

static uint64_t rng = 88172645463325252ull;
static uint32_t next_word(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return (uint32_t)rng;
}

int main(void) {
  static const char* const paths[] = {"popcnt", "avx2", "avx512", "neon"};
  const int sizes[][3] = {{1, 1, 16}, {3, 5, 8}, {7, 9, 32}, {4, 4, 24}, {13, 6, 144}, {6, 9, 72}, {5, 33, 584}, {2, 3, 2304}};
  int tested = 0;
  for (size_t q = 0; q < sizeof paths / sizeof paths[0]; q++) {
    if (!bnn_select_path(paths[q])) continue;
    BgemmFn fast = g_path->bgemm;
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
      int m = sizes[s][0], nb = sizes[s][1], n = sizes[s][2];
      uint32_t* a = (uint32_t*)aligned(sizeof(uint32_t) * m * n);
      uint32_t* b = (uint32_t*)aligned(sizeof(uint32_t) * nb * n);
      int32_t* c0 = (int32_t*)aligned(sizeof(int32_t) * m * nb);
      int32_t* c1 = (int32_t*)aligned(sizeof(int32_t) * m * nb);
      for (int i = 0; i < m * n; i++) a[i] = next_word();
      for (int i = 0; i < nb * n; i++) b[i] = s == 0 ? ~a[i % n] : next_word(); /* size 0: all bits differ */
      bgemm_portable(a, m, b, nb, n, c0, nb);
      fast(a, m, b, nb, n, c1, nb);
      for (int i = 0; i < m * nb; i++)
        if (c0[i] != c1[i]) {
          printf("FAIL %s m=%d nb=%d n=%d at %d: %d != %d\n", paths[q], m, nb, n, i, c1[i], c0[i]);
          return 1;
        }
      free(a), free(b), free(c0), free(c1);
    }
    printf("ok %s\n", paths[q]);
    tested++;
  }
  /* LceQuantize's packing (SSE2 or NEON) against the definition, zeros of both signs included */
  float x[32];
  for (int t = 0; t < 1000; t++) {
    uint32_t expect = 0;
    for (int b = 0; b < 32; b++) {
      uint32_t r = next_word();
      x[b] = (r % 7 == 0) ? ((r & 8) ? -0.0f : 0.0f) : ((float)(int32_t)r / 1e6f);
      expect |= (uint32_t)(x[b] < 0.0f) << b;
    }
    if (pack32(x) != expect) {
      printf("FAIL pack32: %08x != %08x\n", pack32(x), expect);
      return 1;
    }
  }
  printf("ok pack32\n");
  /* what the library picks on this CPU by itself (never a path the CPU lacks: no SIGILL) */
  bnn_select_path(NULL);
  printf("best %s\n", g_path->name);
  printf("%d fast path(s) agree with the portable path\n", tested);
  return 0;
}
