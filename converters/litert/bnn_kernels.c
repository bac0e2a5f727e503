/* bnnzoo's own kernels for Larq Compute Engine's four custom ops (LceQuantize,
 * LceDequantize, LceBconv2d, LceBMaxPool2d), written from the ops' semantics and
 * loaded into the LiteRT (ai-edge-litert) interpreter as a TFLite delegate.
 *
 * Conventions (those of LCE's flatbuffers, checked against LCE's reference kernel by
 * tests/test_litert.py): activations are bit-packed 32 channels per int32 word along
 * the last axis, channel c in bit c % 32 of word c / 32, bit 1 for a negative value
 * (sign -1), unused bits of the last word 0. A binary convolution accumulates the
 * ±1 dot product  K - 2 * popcount(x ^ w)  over its receptive field.
 *
 * Build: cc -O3 -shared -fPIC bnn_kernels.c -lpthread (see converters/litert/toolchain.py).
 * x86-64 code paths for AVX2 and AVX-512 VPOPCNTDQ are compiled with function target
 * attributes and chosen at run time with __builtin_cpu_supports, so the library runs on
 * any x86-64 CPU; aarch64 uses NEON, which every ARMv8-A core has.
 */
#define _GNU_SOURCE
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tflite_c.h"

#if defined(__x86_64__)
#include <immintrin.h>
#elif defined(__aarch64__)
#include <arm_neon.h>
#endif

#define EXPORT __attribute__((visibility("default")))
#define ALIGN 64
/* Patch and filter rows are padded to a multiple of 8 words (32 bytes, one AVX2
 * register; the AVX-512 path takes a half-register tail): the padding words are 0 in
 * both, so their XOR adds nothing. Rows start 64-byte aligned when ldr is even. */
#define LANE_WORDS 8

static char g_error[512];

static void set_error(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(g_error, sizeof g_error, fmt, ap);
  va_end(ap);
}

/* The last error message (for the Python wrapper: TFLite's own reporter goes to stderr). */
EXPORT const char* bnn_last_error(void) { return g_error; }

/* ------------------------------------------------------------------------------------
 * A minimal FlexBuffers reader: the ops' options are a flexbuffer map of scalars.
 * ------------------------------------------------------------------------------------ */

enum {
  FBT_NULL = 0, FBT_INT = 1, FBT_UINT = 2, FBT_FLOAT = 3, FBT_KEY = 4, FBT_STRING = 5,
  FBT_INDIRECT_INT = 6, FBT_INDIRECT_UINT = 7, FBT_INDIRECT_FLOAT = 8, FBT_MAP = 9,
  FBT_VECTOR = 10, FBT_BOOL = 26,
};

typedef struct {
  const uint8_t* buf;
  size_t len;
} FlexBuf;

static int fb_in(const FlexBuf* b, size_t pos, size_t n) { return pos <= b->len && n <= b->len - pos; }

static uint64_t fb_uint(const uint8_t* p, int width) {
  uint64_t v = 0;
  for (int i = 0; i < width; i++) v |= (uint64_t)p[i] << (8 * i);
  return v;
}

static int64_t fb_int(const uint8_t* p, int width) {
  uint64_t v = fb_uint(p, width);
  if (width < 8 && (v >> (8 * width - 1)) & 1) v |= ~(uint64_t)0 << (8 * width);
  return (int64_t)v;
}

typedef struct {
  int n;
  const char* keys[32];
  int types[32];
  double values[32]; /* every option of LCE's ops is a number */
  int numeric[32];
} FlexMap;

/* Reads one scalar of type `type` stored at `pos` with parent width `width`. */
static int fb_scalar(const FlexBuf* b, size_t pos, int width, int packed, double* out) {
  int type = packed >> 2, cw = 1 << (packed & 3);
  if (!fb_in(b, pos, width)) return 0;
  const uint8_t* p = b->buf + pos;
  switch (type) {
    case FBT_INT: *out = (double)fb_int(p, width); return 1;
    case FBT_UINT: case FBT_BOOL: *out = (double)fb_uint(p, width); return 1;
    case FBT_FLOAT:
      if (width == 4) { float f; memcpy(&f, p, 4); *out = f; return 1; }
      if (width == 8) { double d; memcpy(&d, p, 8); *out = d; return 1; }
      return 0;
    case FBT_INDIRECT_INT: case FBT_INDIRECT_UINT: case FBT_INDIRECT_FLOAT: {
      uint64_t off = fb_uint(p, width);
      if (off > pos) return 0;
      size_t q = pos - off;
      if (!fb_in(b, q, cw)) return 0;
      if (type == FBT_INDIRECT_INT) *out = (double)fb_int(b->buf + q, cw);
      else if (type == FBT_INDIRECT_UINT) *out = (double)fb_uint(b->buf + q, cw);
      else if (cw == 4) { float f; memcpy(&f, b->buf + q, 4); *out = f; }
      else if (cw == 8) { double d; memcpy(&d, b->buf + q, 8); *out = d; }
      else return 0;
      return 1;
    }
    default: return 0;
  }
}

/* Parses the root map; returns 0 and sets g_error on a malformed buffer. */
static int fb_read_map(const uint8_t* data, size_t len, FlexMap* m, const char* op) {
  FlexBuf b = {data, len};
  memset(m, 0, sizeof *m);
  if (len == 0) return 1; /* no options */
  if (len < 3) goto bad;
  int root_width = data[len - 1];
  int root_packed = data[len - 2];
  if (root_width != 1 && root_width != 2 && root_width != 4 && root_width != 8) goto bad;
  if ((size_t)root_width + 2 > len) goto bad;
  size_t root_pos = len - 2 - root_width;
  if ((root_packed >> 2) != FBT_MAP) goto bad;
  int width = 1 << (root_packed & 3);
  uint64_t off = fb_uint(data + root_pos, root_width);
  if (off > root_pos) goto bad;
  size_t vals = root_pos - off;
  if (vals < 3 * (size_t)width) goto bad;
  uint64_t n = fb_uint(data + vals - width, width);
  uint64_t keys_off = fb_uint(data + vals - 3 * width, width);
  int keys_width = (int)fb_uint(data + vals - 2 * width, width);
  if (n > 32 || (keys_width != 1 && keys_width != 2 && keys_width != 4 && keys_width != 8)) goto bad;
  if (keys_off > vals - 3 * width) goto bad;
  size_t keys = vals - 3 * width - keys_off;
  if (!fb_in(&b, vals, n * width + n) || !fb_in(&b, keys, n * keys_width)) goto bad;
  m->n = (int)n;
  for (uint64_t i = 0; i < n; i++) {
    size_t kp = keys + i * keys_width;
    uint64_t ko = fb_uint(data + kp, keys_width);
    if (ko > kp) goto bad;
    size_t ks = kp - ko;
    if (!memchr(data + ks, 0, len - ks)) goto bad;
    m->keys[i] = (const char*)(data + ks);
    int packed = data[vals + n * width + i];
    m->types[i] = packed >> 2;
    m->numeric[i] = fb_scalar(&b, vals + i * width, width, packed, &m->values[i]);
  }
  return 1;
bad:
  set_error("%s: its options are not a flexbuffer map (corrupt flatbuffer?)", op);
  return 0;
}

/* Looks up `key`; records that it was consumed. */
static int fb_get(const FlexMap* m, const char* key, double* v, unsigned* used) {
  for (int i = 0; i < m->n; i++)
    if (strcmp(m->keys[i], key) == 0 && m->numeric[i]) {
      *v = m->values[i];
      *used |= 1u << i;
      return 1;
    }
  return 0;
}

/* ------------------------------------------------------------------------------------
 * Op parameters parsed from the options (shared by the checker and the kernels).
 * ------------------------------------------------------------------------------------ */

enum { OP_QUANTIZE = 0, OP_DEQUANTIZE = 1, OP_BCONV2D = 2, OP_BMAXPOOL2D = 3, OP_UNKNOWN = -1 };
static const char* const OP_NAMES[] = {"LceQuantize", "LceDequantize", "LceBconv2d", "LceBMaxPool2d"};

/* TFLite schema enums, as LCE's converter writes them. */
enum { PAD_SAME = 0, PAD_VALID = 1 };
enum { ACT_NONE = 0, ACT_RELU = 1, ACT_RELU_N1_TO_1 = 2, ACT_RELU6 = 3 };

typedef struct {
  int op;
  int channels_in;
  int stride_h, stride_w, dil_h, dil_w;
  int filter_h, filter_w; /* max pool */
  int padding, pad_values, activation;
} OpParams;

static int op_code(const char* name) {
  if (!name) return OP_UNKNOWN;
  for (int i = 0; i < 4; i++)
    if (strcmp(name, OP_NAMES[i]) == 0) return i;
  return OP_UNKNOWN;
}

static int parse_params(int op, const uint8_t* data, size_t len, OpParams* p) {
  FlexMap m;
  const char* name = OP_NAMES[op];
  memset(p, 0, sizeof *p);
  p->op = op;
  p->stride_h = p->stride_w = p->dil_h = p->dil_w = 1;
  p->padding = PAD_VALID;
  if (!fb_read_map(data, len, &m, name)) return 0;
  unsigned used = 0;
  double v;
#define INT_OPT(key, field, lo, hi)                                                                  \
  if (fb_get(&m, key, &v, &used)) {                                                                  \
    if (v != floor(v) || v < (lo) || v > (hi)) {                                                     \
      set_error("%s: option %s=%g is not implemented (supported: %d..%d)", name, key, v, lo, hi);    \
      return 0;                                                                                      \
    }                                                                                                \
    p->field = (int)v;                                                                               \
  }
  if (op == OP_BCONV2D) {
    INT_OPT("channels_in", channels_in, 1, 1 << 24);
    INT_OPT("stride_height", stride_h, 1, 1024);
    INT_OPT("stride_width", stride_w, 1, 1024);
    INT_OPT("dilation_height_factor", dil_h, 1, 1024);
    INT_OPT("dilation_width_factor", dil_w, 1, 1024);
    INT_OPT("padding", padding, PAD_SAME, PAD_VALID);
    INT_OPT("pad_values", pad_values, 0, 1);
    INT_OPT("fused_activation_function", activation, ACT_NONE, ACT_RELU6);
    if (p->channels_in == 0) {
      set_error("%s: option channels_in is missing", name);
      return 0;
    }
  } else if (op == OP_BMAXPOOL2D) {
    INT_OPT("stride_height", stride_h, 1, 1024);
    INT_OPT("stride_width", stride_w, 1, 1024);
    INT_OPT("filter_height", filter_h, 1, 1024);
    INT_OPT("filter_width", filter_w, 1, 1024);
    INT_OPT("padding", padding, PAD_SAME, PAD_VALID);
    if (p->filter_h == 0 || p->filter_w == 0) {
      set_error("%s: options filter_height and filter_width are required", name);
      return 0;
    }
  }
#undef INT_OPT
  for (int i = 0; i < m.n; i++)
    if (!(used & (1u << i))) {
      set_error("%s: option %s is not implemented by bnnzoo's kernels", name, m.keys[i]);
      return 0;
    }
  return 1;
}

/* Checks one op's options without a TFLite context: what the Python wrapper calls on
 * every custom op of a flatbuffer before building an interpreter. Returns 0 and the
 * message in bnn_last_error() when the op or an option is not implemented. */
EXPORT int bnn_check_op(const char* name, const uint8_t* options, size_t length) {
  int op = op_code(name);
  OpParams p;
  if (op == OP_UNKNOWN) {
    set_error("custom op %s is not implemented by bnnzoo's kernels", name ? name : "(null)");
    return 0;
  }
  return parse_params(op, options, length, &p);
}

/* ------------------------------------------------------------------------------------
 * Thread pool: row ranges of one op run on `threads` threads (the caller is one).
 * ------------------------------------------------------------------------------------ */

typedef void (*RangeFn)(void* arg, int begin, int end, int thread);

typedef struct {
  int threads;
  pthread_t* workers;
  pthread_mutex_t mu;
  pthread_cond_t start, done;
  int generation, pending, stop;
  RangeFn fn;
  void* arg;
  int total;
} Pool;

typedef struct {
  Pool* pool;
  int index;
} Worker;

static void pool_range(Pool* p, int t, int* b, int* e) {
  *b = (int)((long)p->total * t / p->threads);
  *e = (int)((long)p->total * (t + 1) / p->threads);
}

static void* pool_main(void* a) {
  Worker* w = (Worker*)a;
  Pool* p = w->pool;
  int seen = 0;
  for (;;) {
    pthread_mutex_lock(&p->mu);
    while (p->generation == seen && !p->stop) pthread_cond_wait(&p->start, &p->mu);
    if (p->stop) { pthread_mutex_unlock(&p->mu); break; }
    seen = p->generation;
    pthread_mutex_unlock(&p->mu);
    int b, e;
    pool_range(p, w->index, &b, &e);
    if (b < e) p->fn(p->arg, b, e, w->index);
    pthread_mutex_lock(&p->mu);
    if (--p->pending == 0) pthread_cond_signal(&p->done);
    pthread_mutex_unlock(&p->mu);
  }
  free(w);
  return NULL;
}

static Pool* pool_create(int threads) {
  Pool* p = (Pool*)calloc(1, sizeof *p);
  if (!p) return NULL;
  p->threads = threads < 1 ? 1 : threads;
  pthread_mutex_init(&p->mu, NULL);
  pthread_cond_init(&p->start, NULL);
  pthread_cond_init(&p->done, NULL);
  p->workers = (pthread_t*)calloc(p->threads, sizeof(pthread_t));
  for (int t = 1; t < p->threads; t++) {
    Worker* w = (Worker*)malloc(sizeof *w);
    w->pool = p;
    w->index = t;
    if (pthread_create(&p->workers[t], NULL, pool_main, w) != 0) { /* run on fewer threads */
      free(w);
      p->threads = t;
      break;
    }
  }
  return p;
}

static void pool_destroy(Pool* p) {
  if (!p) return;
  pthread_mutex_lock(&p->mu);
  p->stop = 1;
  pthread_cond_broadcast(&p->start);
  pthread_mutex_unlock(&p->mu);
  for (int t = 1; t < p->threads; t++) pthread_join(p->workers[t], NULL);
  free(p->workers);
  free(p);
}

static void pool_run(Pool* p, RangeFn fn, void* arg, int total) {
  if (!p || p->threads == 1 || total < 2) {
    fn(arg, 0, total, 0);
    return;
  }
  pthread_mutex_lock(&p->mu);
  p->fn = fn;
  p->arg = arg;
  p->total = total;
  p->pending = p->threads - 1;
  p->generation++;
  pthread_cond_broadcast(&p->start);
  pthread_mutex_unlock(&p->mu);
  int b, e;
  pool_range(p, 0, &b, &e);
  if (b < e) fn(arg, b, e, 0);
  pthread_mutex_lock(&p->mu);
  while (p->pending > 0) pthread_cond_wait(&p->done, &p->mu);
  pthread_mutex_unlock(&p->mu);
}

/* ------------------------------------------------------------------------------------
 * Binary GEMM micro-kernels: counts[i * ldc + j] = popcount(a_i ^ b_j) over n words
 * (n a multiple of LANE_WORDS, rows 32-byte aligned).
 * ------------------------------------------------------------------------------------ */

typedef void (*BgemmFn)(const uint32_t* a, int m, const uint32_t* b, int nb, int n, int32_t* c, int ldc);

static void bgemm_portable(const uint32_t* a, int m, const uint32_t* b, int nb, int n, int32_t* c, int ldc) {
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

#if defined(__x86_64__)
__attribute__((target("popcnt"))) static void bgemm_popcnt(const uint32_t* a, int m, const uint32_t* b, int nb,
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
__attribute__((target("avx2"))) static void bgemm_avx2(const uint32_t* a, int m, const uint32_t* b, int nb, int n,
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
__attribute__((target("avx512f,avx512vpopcntdq"))) static void bgemm_avx512(const uint32_t* a, int m,
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

#if defined(__aarch64__)
/* 2 rows x 4 columns: VCNT byte counts widened pairwise into 16-bit lanes. */
static void bgemm_neon(const uint32_t* a, int m, const uint32_t* b, int nb, int n, int32_t* c, int ldc) {
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

static BgemmFn g_bgemm = NULL;
static const char* g_bgemm_name = "portable";

/* Forces a code path ("portable", "popcnt", "avx2", "avx512", "neon"), for tests; returns 0
 * when this CPU or build does not have it. An empty name picks the best one. */
EXPORT int bnn_select_path(const char* name) {
  BgemmFn fn = bgemm_portable;
  const char* chosen = "portable";
  int want_best = !name || !*name;
#if defined(__x86_64__)
  __builtin_cpu_init();
  int has_popcnt = __builtin_cpu_supports("popcnt");
  int has_avx2 = __builtin_cpu_supports("avx2");
  int has_avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vpopcntdq");
  if (want_best) {
    if (has_avx512) fn = bgemm_avx512, chosen = "avx512";
    else if (has_avx2) fn = bgemm_avx2, chosen = "avx2";
    else if (has_popcnt) fn = bgemm_popcnt, chosen = "popcnt";
  } else if (strcmp(name, "avx512") == 0) {
    if (!has_avx512) return 0;
    fn = bgemm_avx512, chosen = "avx512";
  } else if (strcmp(name, "avx2") == 0) {
    if (!has_avx2) return 0;
    fn = bgemm_avx2, chosen = "avx2";
  } else if (strcmp(name, "popcnt") == 0) {
    if (!has_popcnt) return 0;
    fn = bgemm_popcnt, chosen = "popcnt";
  } else if (strcmp(name, "portable") != 0) {
    return 0;
  }
#elif defined(__aarch64__)
  if (want_best || strcmp(name, "neon") == 0) fn = bgemm_neon, chosen = "neon";
  else if (strcmp(name, "portable") != 0) return 0;
#else
  if (!want_best && strcmp(name, "portable") != 0) return 0;
#endif
  g_bgemm = fn;
  g_bgemm_name = chosen;
  return 1;
}

EXPORT const char* bnn_path(void) {
  if (!g_bgemm) bnn_select_path(NULL);
  return g_bgemm_name;
}

/* ------------------------------------------------------------------------------------
 * Kernels
 * ------------------------------------------------------------------------------------ */

typedef struct {
  OpParams p;
  int node_index;
  int inputs[5], n_inputs;
  int output;
  Pool* pool; /* the delegate's */
  BgemmFn bgemm;
  /* LceBconv2d, set in prepare */
  int batch, in_h, in_w, in_words, out_h, out_w, out_c, out_words;
  int groups, cin_g, words_g, cout_g, taps, row_words, pad_top, pad_left, ktot;
  uint32_t* filter;  /* [out_c][row_words] */
  int32_t* tap_pop;  /* [out_c][taps]: popcount of each tap's filter words (zero padding) */
  float* multiplier; /* [out_c] */
  float* bias;       /* [out_c] */
  int32_t* threshold;
  int spatial_transform; /* multiplier and bias per output position */
  int clamp_min, clamp_max;
  int bitpacked_out;
  int scratch_per_thread; /* words */
  uint32_t* scratch;
  int32_t* counts;
  int threads;
} Kernel;

typedef struct {
  TfLiteContext* ctx;
  Kernel* k;
  const void* in;
  void* out;
} Job;

static int64_t num_elements(const TfLiteTensor* t) {
  int64_t n = 1;
  for (int i = 0; i < t->dims->size; i++) n *= t->dims->data[i];
  return n;
}

static size_t type_size(TfLiteType t) {
  switch (t) {
    case kTfLiteFloat32: case kTfLiteInt32: return 4;
    case kTfLiteInt64: return 8;
    case kTfLiteInt16: case kTfLiteFloat16: return 2;
    case kTfLiteInt8: case kTfLiteUInt8: case kTfLiteBool: return 1;
    default: return 0;
  }
}

static TfLiteStatus fail(TfLiteContext* ctx, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(g_error, sizeof g_error, fmt, ap);
  va_end(ap);
  ctx->ReportError(ctx, "%s", g_error);
  return kTfLiteError;
}

static TfLiteStatus ensure_shape(TfLiteContext* ctx, TfLiteTensor* t, const int* dims, int n) {
  int same = t->dims && t->dims->size == n;
  for (int i = 0; same && i < n; i++) same = t->dims->data[i] == dims[i];
  if (same) return kTfLiteOk;
  TfLiteIntArray* a = (TfLiteIntArray*)malloc(sizeof(int) * (1 + n)); /* TfLiteIntArrayFree is free() */
  a->size = n;
  memcpy(a->data, dims, sizeof(int) * n);
  return ctx->ResizeTensor(ctx, t, a);
}

/* --- LceQuantize / LceDequantize --------------------------------------------------- */

/* 32 floats to one word: bit b set where x[b] < 0 (so -0.0 and +0.0 are both +1). */
static inline uint32_t pack32(const float* x) {
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

static void quantize_rows(void* arg, int begin, int end, int thread) {
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

static void dequantize_rows(void* arg, int begin, int end, int thread) {
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

static TfLiteStatus prepare_quantize(TfLiteContext* ctx, Kernel* k) {
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

/* --- LceBMaxPool2d ------------------------------------------------------------------ */

static void same_or_valid(int in, int k, int s, int d, int padding, int* out, int* pad) {
  int eff = (k - 1) * d + 1;
  if (padding == PAD_SAME) {
    *out = (in + s - 1) / s;
    int total = (*out - 1) * s + eff - in;
    *pad = total > 0 ? total / 2 : 0;
  } else {
    *out = in >= eff ? (in - eff) / s + 1 : 0;
    *pad = 0;
  }
}

static void maxpool_rows(void* arg, int begin, int end, int thread) {
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

static TfLiteStatus prepare_maxpool(TfLiteContext* ctx, Kernel* k) {
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

/* --- LceBconv2d ------------------------------------------------------------------- */

static void free_conv(Kernel* k) {
  free(k->filter);
  free(k->tap_pop);
  free(k->multiplier);
  free(k->bias);
  free(k->threshold);
  free(k->scratch);
  free(k->counts);
  k->filter = NULL;
  k->tap_pop = k->threshold = k->counts = NULL;
  k->multiplier = k->bias = NULL;
  k->scratch = NULL;
}

static void* aligned(size_t bytes) {
  void* p = NULL;
  if (posix_memalign(&p, ALIGN, bytes ? bytes : ALIGN) != 0) return NULL;
  memset(p, 0, bytes);
  return p;
}

static const TfLiteTensor* optional_input(TfLiteContext* ctx, Kernel* k, int i) {
  if (i >= k->n_inputs || k->inputs[i] < 0) return NULL;
  return &ctx->tensors[k->inputs[i]];
}

static TfLiteStatus prepare_bconv(TfLiteContext* ctx, Kernel* k) {
  const OpParams* p = &k->p;
  TfLiteTensor* in = &ctx->tensors[k->inputs[0]];
  const TfLiteTensor* filt = optional_input(ctx, k, 1);
  TfLiteTensor* out = &ctx->tensors[k->output];
  free_conv(k);
  if (in->type != kTfLiteInt32 || !in->dims || in->dims->size != 4)
    return fail(ctx, "LceBconv2d: input must be bit-packed int32 NHWC (got type %d)", in->type);
  if (!filt || !filt->dims || filt->dims->size != 4 || !filt->data.raw)
    return fail(ctx, "LceBconv2d: the filter must be a constant 4-D tensor");
  if (filt->type != kTfLiteInt32 && filt->type != kTfLiteFloat32)
    return fail(ctx, "LceBconv2d: filter type %d is not implemented", filt->type);
  k->batch = in->dims->data[0];
  k->in_h = in->dims->data[1];
  k->in_w = in->dims->data[2];
  k->in_words = in->dims->data[3];
  k->out_c = filt->dims->data[0];
  int kh = filt->dims->data[1], kw = filt->dims->data[2], fdepth = filt->dims->data[3];
  int cin = p->channels_in;
  if ((cin + 31) / 32 != k->in_words)
    return fail(ctx, "LceBconv2d: channels_in=%d does not match %d input words", cin, k->in_words);
  int cin_g;
  if (filt->type == kTfLiteFloat32) {
    cin_g = fdepth;
  } else if (fdepth == k->in_words) {
    cin_g = cin;
  } else {
    cin_g = 32 * fdepth; /* grouped: LCE needs channels per group a multiple of 32 */
  }
  if (cin % cin_g != 0 || (cin / cin_g > 1 && cin_g % 32 != 0))
    return fail(ctx, "LceBconv2d: channels_in=%d with filter depth %d is not implemented", cin, fdepth);
  k->groups = cin / cin_g;
  k->cin_g = cin_g;
  k->words_g = (cin_g + 31) / 32;
  if (k->out_c % k->groups != 0) return fail(ctx, "LceBconv2d: %d outputs in %d groups", k->out_c, k->groups);
  k->cout_g = k->out_c / k->groups;
  k->taps = kh * kw;
  k->row_words = (k->taps * k->words_g + LANE_WORDS - 1) / LANE_WORDS * LANE_WORDS;
  k->ktot = k->taps * cin_g;
  same_or_valid(k->in_h, kh, p->stride_h, p->dil_h, p->padding, &k->out_h, &k->pad_top);
  same_or_valid(k->in_w, kw, p->stride_w, p->dil_w, p->padding, &k->out_w, &k->pad_left);
  k->p.filter_h = kh;
  k->p.filter_w = kw;

  /* The filter, repacked: one zero-padded row of words per output channel. */
  k->filter = (uint32_t*)aligned(sizeof(uint32_t) * (size_t)k->out_c * k->row_words);
  k->tap_pop = (int32_t*)aligned(sizeof(int32_t) * (size_t)k->out_c * k->taps);
  if (!k->filter || !k->tap_pop) return fail(ctx, "LceBconv2d: out of memory");
  for (int co = 0; co < k->out_c; co++)
    for (int t = 0; t < k->taps; t++) {
      uint32_t* dst = k->filter + (size_t)co * k->row_words + t * k->words_g;
      int pop = 0;
      for (int w = 0; w < k->words_g; w++) {
        uint32_t bits;
        if (filt->type == kTfLiteInt32) {
          bits = (uint32_t)filt->data.i32[((size_t)co * k->taps + t) * fdepth + w];
        } else {
          bits = 0;
          for (int b = 0; b < 32 && 32 * w + b < cin_g; b++)
            bits |= (uint32_t)(filt->data.f[((size_t)co * k->taps + t) * fdepth + 32 * w + b] < 0) << b;
        }
        if (32 * (w + 1) > cin_g) bits &= (cin_g % 32) ? ((1u << (cin_g % 32)) - 1) : 0xffffffffu;
        dst[w] = bits;
        pop += __builtin_popcount(bits);
      }
      k->tap_pop[(size_t)co * k->taps + t] = pop;
    }

  /* Output transform. */
  const TfLiteTensor* mul = optional_input(ctx, k, 2);
  const TfLiteTensor* bias = optional_input(ctx, k, 3);
  const TfLiteTensor* thr = optional_input(ctx, k, 4);
  k->bitpacked_out = out->type == kTfLiteInt32;
  if (out->type != kTfLiteInt32 && out->type != kTfLiteFloat32)
    return fail(ctx, "LceBconv2d: output type %d is not implemented (float32 or bit-packed int32)", out->type);
  switch (p->activation) {
    case ACT_RELU: k->clamp_min = 0, k->clamp_max = 1 << 30; break;
    case ACT_RELU_N1_TO_1: k->clamp_min = -1, k->clamp_max = 1; break;
    case ACT_RELU6: k->clamp_min = 0, k->clamp_max = 6; break;
    default: k->clamp_min = -(1 << 30), k->clamp_max = 1 << 30;
  }
  if (k->bitpacked_out) {
    if (!thr || thr->type != kTfLiteInt32 || !thr->data.raw || num_elements(thr) != k->out_c)
      return fail(ctx, "LceBconv2d: bit-packed output needs an int32 output_threshold of %d values", k->out_c);
    if (p->pad_values == 0 && p->padding == PAD_SAME)
      return fail(ctx, "LceBconv2d: bit-packed output with pad_values=0 and SAME padding is not implemented");
    k->threshold = (int32_t*)aligned(sizeof(int32_t) * k->out_c);
    memcpy(k->threshold, thr->data.i32, sizeof(int32_t) * k->out_c);
  } else {
    /* Per channel ([C]) or, where learned spatial scales were folded in (Real-to-Binary's
     * strong baseline), per output position and channel ([OH, OW, C]). */
    int64_t per_channel = k->out_c, per_pixel = (int64_t)k->out_h * k->out_w * k->out_c;
    if (!mul || !bias || mul->type != kTfLiteFloat32 || bias->type != kTfLiteFloat32 || !mul->data.raw ||
        !bias->data.raw)
      return fail(ctx, "LceBconv2d: float output needs constant float32 post_activation_multiplier and bias");
    int64_t nm = num_elements(mul), nb = num_elements(bias);
    if ((nm != per_channel && nm != per_pixel) || (nb != per_channel && nb != per_pixel))
      return fail(ctx, "LceBconv2d: post_activation_multiplier/bias of %lld/%lld values for %d channels of %dx%d "
                  "is not implemented", (long long)nm, (long long)nb, k->out_c, k->out_h, k->out_w);
    int64_t n = nm > nb ? nm : nb;
    k->spatial_transform = n == per_pixel && per_pixel != per_channel;
    k->multiplier = (float*)aligned(sizeof(float) * n);
    k->bias = (float*)aligned(sizeof(float) * n);
    if (!k->multiplier || !k->bias) return fail(ctx, "LceBconv2d: out of memory");
    /* y = dot * m + b = pop * (-2 m) + (K m + b): LCE's reference kernel evaluates the
     * second form, with K m + b in one rounding; so do we, to agree bit for bit. */
    for (int64_t i = 0; i < n; i++) {
      float m = mul->data.f[nm == n ? i : i % k->out_c], b = bias->data.f[nb == n ? i : i % k->out_c];
      k->multiplier[i] = -2.0f * m;
      k->bias[i] = fmaf((float)k->ktot, m, b);
    }
  }
  k->out_words = (k->out_c + 31) / 32;
  int dims[4] = {k->batch, k->out_h, k->out_w, k->bitpacked_out ? k->out_words : k->out_c};
  if (ensure_shape(ctx, out, dims, 4) != kTfLiteOk) return kTfLiteError;

  /* Per-thread scratch: the patches of one output row, per group, and their counts. */
  k->threads = k->pool ? k->pool->threads : 1;
  k->scratch_per_thread = k->out_w * k->row_words;
  k->scratch = (uint32_t*)aligned(sizeof(uint32_t) * (size_t)k->threads * k->scratch_per_thread);
  k->counts = (int32_t*)aligned(sizeof(int32_t) * (size_t)k->threads * k->out_w * k->cout_g);
  if (!k->scratch || !k->counts) return fail(ctx, "LceBconv2d: out of memory");
  return kTfLiteOk;
}

static void bconv_rows(void* arg, int begin, int end, int thread) {
  Job* j = (Job*)arg;
  Kernel* k = j->k;
  const OpParams* p = &k->p;
  const uint32_t* x = (const uint32_t*)j->in;
  uint32_t* patches = k->scratch + (size_t)thread * k->scratch_per_thread;
  int32_t* counts = k->counts + (size_t)thread * k->out_w * k->cout_g;
  const int kh = p->filter_h, kw = p->filter_w, wg = k->words_g, rw = k->row_words;
  BgemmFn bgemm = k->bgemm;
  for (int row = begin; row < end; row++) {
    int b = row / k->out_h, oy = row % k->out_h;
    const uint32_t* xb = x + (size_t)b * k->in_h * k->in_w * k->in_words;
    for (int g = 0; g < k->groups; g++) {
      /* im2col of this row: out-of-bounds taps stay 0 words, i.e. +1 values */
      for (int ox = 0; ox < k->out_w; ox++) {
        uint32_t* dst = patches + (size_t)ox * rw;
        int t = 0;
        for (int ky = 0; ky < kh; ky++) {
          int iy = oy * p->stride_h - k->pad_top + ky * p->dil_h;
          for (int kx = 0; kx < kw; kx++, t++) {
            int ix = ox * p->stride_w - k->pad_left + kx * p->dil_w;
            uint32_t* d = dst + t * wg;
            if (iy < 0 || iy >= k->in_h || ix < 0 || ix >= k->in_w) {
              for (int w = 0; w < wg; w++) d[w] = 0;
            } else {
              const uint32_t* src = xb + ((size_t)iy * k->in_w + ix) * k->in_words + g * wg;
              for (int w = 0; w < wg; w++) d[w] = src[w];
            }
          }
        }
      }
      const uint32_t* fg = k->filter + (size_t)g * k->cout_g * rw;
      bgemm(patches, k->out_w, fg, k->cout_g, rw, counts, k->cout_g);
      /* output transform */
      for (int ox = 0; ox < k->out_w; ox++) {
        int32_t* cnt = counts + (size_t)ox * k->cout_g;
        int valid_taps = k->taps;
        int border = 0;
        if (p->pad_values == 0) {
          int iy0 = oy * p->stride_h - k->pad_top, ix0 = ox * p->stride_w - k->pad_left;
          border = iy0 < 0 || ix0 < 0 || iy0 + (kh - 1) * p->dil_h >= k->in_h || ix0 + (kw - 1) * p->dil_w >= k->in_w;
        }
        if (border) {
          /* zero padding: padded taps contribute 0, not the ±1 of a 0 word */
          valid_taps = 0;
          int t = 0;
          for (int ky = 0; ky < kh; ky++) {
            int iy = oy * p->stride_h - k->pad_top + ky * p->dil_h;
            for (int kx = 0; kx < kw; kx++, t++) {
              int ix = ox * p->stride_w - k->pad_left + kx * p->dil_w;
              if (iy < 0 || iy >= k->in_h || ix < 0 || ix >= k->in_w) {
                for (int c = 0; c < k->cout_g; c++) cnt[c] -= k->tap_pop[(size_t)(g * k->cout_g + c) * k->taps + t];
              } else {
                valid_taps++;
              }
            }
          }
        }
        int kvalid = valid_taps * k->cin_g;
        size_t pix = ((size_t)b * k->out_h + oy) * k->out_w + ox;
        if (k->bitpacked_out) {
          uint32_t* yo = (uint32_t*)j->out + pix * k->out_words;
          for (int c = 0; c < k->cout_g; c++) {
            int co = g * k->cout_g + c;
            /* LCE's thresholds compare the XOR popcount itself (bit 1: more mismatches) */
            uint32_t bit = (uint32_t)(cnt[c] > k->threshold[co]);
            if ((co & 31) == 0) yo[co >> 5] = 0;
            yo[co >> 5] |= bit << (co & 31);
          }
        } else {
          float* yo = (float*)j->out + pix * k->out_c;
          size_t t0 = k->spatial_transform ? ((size_t)oy * k->out_w + ox) * k->out_c : 0;
          const float* mul = k->multiplier + t0;
          const float* bias = k->bias + t0;
          if (!border && p->activation == ACT_NONE) { /* kvalid == ktot: y = pop * m' + b' */
            for (int c = 0; c < k->cout_g; c++) {
              int co = g * k->cout_g + c;
              yo[co] = (float)cnt[c] * mul[co] + bias[co];
            }
            continue;
          }
          for (int c = 0; c < k->cout_g; c++) {
            int co = g * k->cout_g + c;
            int32_t acc = kvalid - 2 * cnt[c];
            acc = acc < k->clamp_min ? k->clamp_min : acc > k->clamp_max ? k->clamp_max : acc;
            /* in popcount space, rounded as LCE's reference kernel rounds (bit-exact) */
            yo[co] = 0.5f * (float)(k->ktot - acc) * mul[co] + bias[co];
          }
        }
      }
    }
  }
}

/* --- Kernel registration ------------------------------------------------------------- */

typedef struct {
  Pool* pool;
  int threads;
  BgemmFn bgemm; /* the code path chosen when the delegate was made */
} DelegateData;

static void* kernel_init(TfLiteContext* ctx, const char* buffer, size_t length) {
  (void)length;
  const TfLiteDelegateParams* params = (const TfLiteDelegateParams*)buffer;
  if (!params || params->nodes_to_replace->size != 1) {
    set_error("bnnzoo delegate: a kernel must replace exactly one node");
    return NULL;
  }
  int index = params->nodes_to_replace->data[0];
  TfLiteNode* node;
  TfLiteRegistration* reg;
  if (ctx->GetNodeAndRegistration(ctx, index, &node, &reg) != kTfLiteOk) return NULL;
  Kernel* k = (Kernel*)calloc(1, sizeof *k);
  if (!k) return NULL;
  k->node_index = index;
  /* own copies: the original node is gone from the plan once replaced */
  if (!parse_params(op_code(reg->custom_name), (const uint8_t*)node->custom_initial_data,
                    (size_t)node->custom_initial_data_size, &k->p)) {
    ctx->ReportError(ctx, "%s", g_error);
    free(k);
    return NULL;
  }
  k->n_inputs = node->inputs->size < 5 ? node->inputs->size : 5;
  for (int i = 0; i < k->n_inputs; i++) k->inputs[i] = node->inputs->data[i];
  for (int i = k->n_inputs; i < 5; i++) k->inputs[i] = -1;
  k->output = node->outputs->data[0];
  k->pool = ((DelegateData*)params->delegate->data_)->pool;
  k->bgemm = ((DelegateData*)params->delegate->data_)->bgemm;
  return k;
}

static void kernel_free(TfLiteContext* ctx, void* buffer) {
  (void)ctx;
  Kernel* k = (Kernel*)buffer;
  if (!k) return;
  free_conv(k);
  free(k);
}

static TfLiteStatus kernel_prepare(TfLiteContext* ctx, TfLiteNode* node) {
  Kernel* k = (Kernel*)node->user_data;
  if (!k) return fail(ctx, "bnnzoo delegate: kernel not initialised (%s)", g_error);
  switch (k->p.op) {
    case OP_QUANTIZE: case OP_DEQUANTIZE: return prepare_quantize(ctx, k);
    case OP_BMAXPOOL2D: return prepare_maxpool(ctx, k);
    case OP_BCONV2D: return prepare_bconv(ctx, k);
  }
  return kTfLiteError;
}

/* Wall time spent in each op type since the last bnn_profile(reset), for benchmarks. */
static double g_seconds[4];
static long g_calls[4];

EXPORT void bnn_profile(double* seconds, long* calls, int reset) {
  for (int i = 0; i < 4; i++) {
    if (seconds) seconds[i] = g_seconds[i];
    if (calls) calls[i] = g_calls[i];
    if (reset) g_seconds[i] = 0, g_calls[i] = 0;
  }
}

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static TfLiteStatus kernel_invoke_timed(TfLiteContext* ctx, TfLiteNode* node);

static TfLiteStatus kernel_invoke(TfLiteContext* ctx, TfLiteNode* node) {
  double t = now();
  TfLiteStatus s = kernel_invoke_timed(ctx, node);
  Kernel* k = (Kernel*)node->user_data;
  if (k) {
    g_seconds[k->p.op] += now() - t;
    g_calls[k->p.op]++;
  }
  return s;
}

static TfLiteStatus kernel_invoke_timed(TfLiteContext* ctx, TfLiteNode* node) {
  Kernel* k = (Kernel*)node->user_data;
  TfLiteTensor* in = &ctx->tensors[k->inputs[0]];
  TfLiteTensor* out = &ctx->tensors[k->output];
  if (!in->data.raw || !out->data.raw) return fail(ctx, "%s: unallocated tensor", OP_NAMES[k->p.op]);
  if (!g_bgemm) bnn_select_path(NULL);
  Job job = {ctx, k, in->data.raw, out->data.raw};
  switch (k->p.op) {
    case OP_QUANTIZE: case OP_DEQUANTIZE: {
      int rows = (int)(num_elements(in) / in->dims->data[in->dims->size - 1]);
      pool_run(k->pool, k->p.op == OP_QUANTIZE ? quantize_rows : dequantize_rows, &job, rows);
      break;
    }
    case OP_BMAXPOOL2D: pool_run(k->pool, maxpool_rows, &job, k->batch * k->out_h); break;
    case OP_BCONV2D: pool_run(k->pool, bconv_rows, &job, k->batch * k->out_h); break;
  }
  return kTfLiteOk;
}

/* --- Delegate ------------------------------------------------------------------------ */

/* Checks our struct declarations against the interpreter's: every tensor's byte size
 * must agree with its type and dims (TfLiteTensor's size and field offsets), and each
 * claimed node's inputs must be valid tensor indices of the expected types. */
static TfLiteStatus check_layout(TfLiteContext* ctx) {
  if (ctx->tensors_size == 0 || ctx->tensors_size > (1u << 24) || !ctx->tensors)
    return fail(ctx, "bnnzoo delegate: TfLiteContext layout mismatch (tensors_size=%zu)", ctx->tensors_size);
  int checked = 0;
  for (size_t i = 0; i < ctx->tensors_size; i++) {
    const TfLiteTensor* t = &ctx->tensors[i];
    size_t es = type_size(t->type);
    if ((int)t->type < 0 || (int)t->type > 64) return fail(ctx, "bnnzoo delegate: TfLiteTensor layout mismatch (type)");
    if (!es || !t->dims) continue;
    if (t->dims->size < 0 || t->dims->size > 8)
      return fail(ctx, "bnnzoo delegate: TfLiteTensor layout mismatch (dims of tensor %zu)", i);
    int dynamic = 0;
    for (int d = 0; d < t->dims->size; d++) dynamic |= t->dims->data[d] < 0;
    if (dynamic || t->allocation_type == kTfLiteDynamic) continue;
    if (t->bytes != (size_t)num_elements(t) * es)
      return fail(ctx, "bnnzoo delegate: TfLiteTensor layout mismatch (tensor %zu: %zu bytes for %lld elements)", i,
                  t->bytes, (long long)num_elements(t));
    checked++;
  }
  if (!checked) return fail(ctx, "bnnzoo delegate: no tensor to check the TfLiteTensor layout against");
  return kTfLiteOk;
}

static TfLiteStatus delegate_prepare(TfLiteContext* ctx, TfLiteDelegate* delegate) {
  TfLiteIntArray* plan;
  if (ctx->GetExecutionPlan(ctx, &plan) != kTfLiteOk) return kTfLiteError;
  if (check_layout(ctx) != kTfLiteOk) return kTfLiteError;
  int n = plan->size;
  int* claimed = (int*)malloc(sizeof(int) * (n ? n : 1));
  int count = 0;
  for (int i = 0; i < n; i++) {
    TfLiteNode* node;
    TfLiteRegistration* reg;
    int index = plan->data[i];
    if (ctx->GetNodeAndRegistration(ctx, index, &node, &reg) != kTfLiteOk) continue;
    if (reg->builtin_code != 32 /* BuiltinOperator_CUSTOM */ || !reg->custom_name) continue;
    int op = op_code(reg->custom_name);
    if (op == OP_UNKNOWN || strncmp(reg->custom_name, "Lce", 3) != 0) continue;
    if (!node->inputs || !node->outputs || node->outputs->size != 1 || node->inputs->size < 1 ||
        node->inputs->size > 5) {
      free(claimed);
      return fail(ctx, "bnnzoo delegate: TfLiteNode layout mismatch at %s (node %d)", reg->custom_name, index);
    }
    for (int q = 0; q < node->inputs->size; q++)
      if (node->inputs->data[q] >= (int)ctx->tensors_size) {
        free(claimed);
        return fail(ctx, "bnnzoo delegate: TfLiteNode layout mismatch at %s (node %d)", reg->custom_name, index);
      }
    OpParams p;
    if (!parse_params(op, (const uint8_t*)node->custom_initial_data, (size_t)node->custom_initial_data_size, &p)) {
      free(claimed);
      ctx->ReportError(ctx, "%s", g_error);
      return kTfLiteError;
    }
    claimed[count++] = index;
  }
  TfLiteRegistration reg;
  memset(&reg, 0, sizeof reg);
  reg.init = kernel_init;
  reg.free = kernel_free;
  reg.prepare = kernel_prepare;
  reg.invoke = kernel_invoke;
  reg.builtin_code = 32;
  reg.custom_name = "BnnzooLceDelegate";
  reg.version = 1;
  TfLiteStatus status = kTfLiteOk;
  /* one node per delegate kernel: the tensors between our ops stay interpreter tensors */
  for (int i = 0; i < count && status == kTfLiteOk; i++) {
    struct {
      int size;
      int data[1];
    } one = {1, {claimed[i]}};
    status = ctx->ReplaceNodeSubsetsWithDelegateKernels(ctx, reg, (const TfLiteIntArray*)&one, delegate);
  }
  free(claimed);
  return status;
}

EXPORT TfLiteDelegate* tflite_plugin_create_delegate(char** keys, char** values, size_t n,
                                                     void (*report_error)(const char*)) {
  int threads = 1, path_given = 0;
  for (size_t i = 0; i < n; i++) {
    if (strcmp(keys[i], "num_threads") == 0) {
      threads = atoi(values[i]);
      if (threads < 1 || threads > 256) {
        if (report_error) report_error("bnnzoo delegate: num_threads must be 1..256");
        return NULL;
      }
    } else if (strcmp(keys[i], "path") == 0) {
      if (!bnn_select_path(values[i])) {
        if (report_error) report_error("bnnzoo delegate: code path not available on this CPU");
        return NULL;
      }
      path_given = 1;
    } else {
      if (report_error) report_error("bnnzoo delegate: unknown option (num_threads, path)");
      return NULL;
    }
  }
  if (!path_given) bnn_select_path(NULL); /* the best path, whatever an earlier delegate forced */
  TfLiteDelegate* d = (TfLiteDelegate*)calloc(1, sizeof *d);
  DelegateData* data = (DelegateData*)calloc(1, sizeof *data);
  data->threads = threads;
  data->bgemm = g_bgemm;
  data->pool = pool_create(threads);
  d->data_ = data;
  d->Prepare = delegate_prepare;
  d->flags = kTfLiteDelegateFlagsAllowDynamicTensors;
  return d;
}

EXPORT void tflite_plugin_destroy_delegate(TfLiteDelegate* d) {
  if (!d) return;
  DelegateData* data = (DelegateData*)d->data_;
  if (data) pool_destroy(data->pool);
  free(data);
  free(d);
}

/* Sizes of the declared structs, for the Python wrapper's sanity check. */
EXPORT int bnn_struct_sizes(size_t* out, int n) {
  size_t s[] = {sizeof(TfLiteTensor), sizeof(TfLiteNode), sizeof(TfLiteRegistration), sizeof(TfLiteDelegate)};
  int m = (int)(sizeof s / sizeof s[0]);
  for (int i = 0; i < n && i < m; i++) out[i] = s[i];
  return m;
}
