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
 * This header holds what the library's files share; each .c file is one concern:
 *   options.c      errors, the FlexBuffers option reader, op parameters, bnn_check_op
 *   pool.c         the thread pool
 *   bgemm.c        the portable and POPCNT binary GEMMs, the run-time choice of code path
 *   bgemm_x86.c    AVX2 and AVX-512 VPOPCNTDQ binary GEMMs and the AVX-512 tile kernel of
 *                  LceBconv2d's fast path (x86-64)
 *   bgemm_neon.c   the NEON tile kernel of LceBconv2d's fast path and binary GEMM (aarch64)
 *   quantize.c     LceQuantize, LceDequantize (float32, int8 and bool values)
 *   maxpool.c      LceBMaxPool2d
 *   bconv.c        LceBconv2d: prepare, the general path (im2col rows, binary GEMM)
 *                  and the fast path's driver (direct addressing, tile kernels)
 *   transform.c    LceBconv2d's output transform on the general path (float, int8 and
 *                  bit-packed outputs; the tile kernels have their own, vectorised)
 *   delegate.c     tensor helpers, the delegate kernels and the TFLite delegate
 *
 * Build: cc -O3 -shared -fPIC *.c -lpthread -lm (see converters/litert/toolchain.py).
 * x86-64 code paths for AVX2 and AVX-512 VPOPCNTDQ are compiled with function target
 * attributes and chosen at run time with __builtin_cpu_supports, so the library runs on
 * any x86-64 CPU; aarch64 uses NEON, which every ARMv8-A core has. Everything not
 * marked EXPORT stays inside the library (-fvisibility=hidden).
 */
#ifndef BNN_H_
#define BNN_H_

#define _GNU_SOURCE
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "tflite_c.h"

#define EXPORT __attribute__((visibility("default")))
#define ALIGN 64
/* Patch and filter rows are padded to a multiple of 8 words (32 bytes, one AVX2
 * register; the AVX-512 path takes a half-register tail): the padding words are 0 in
 * both, so their XOR adds nothing. Rows start 64-byte aligned when ldr is even. */
#define LANE_WORDS 8

/* --- options.c: errors and op parameters ---------------------------------------------- */

extern char g_error[512];
void set_error(const char* fmt, ...);
EXPORT const char* bnn_last_error(void);

enum { OP_QUANTIZE = 0, OP_DEQUANTIZE = 1, OP_BCONV2D = 2, OP_BMAXPOOL2D = 3, OP_UNKNOWN = -1 };
extern const char* const OP_NAMES[4];

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

int op_code(const char* name);
int parse_params(int op, const uint8_t* data, size_t len, OpParams* p);
EXPORT int bnn_check_op(const char* name, const uint8_t* options, size_t length);

/* --- pool.c: thread pool --------------------------------------------------------------- */

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

Pool* pool_create(int threads);
void pool_destroy(Pool* p);
void pool_run(Pool* p, RangeFn fn, void* arg, int total);

/* --- bgemm*.c: binary GEMM micro-kernels ---------------------------------------------- */

/* counts[i * ldc + j] = popcount(a_i ^ b_j) over n words (n a multiple of LANE_WORDS,
 * rows 32-byte aligned). */
typedef void (*BgemmFn)(const uint32_t* a, int m, const uint32_t* b, int nb, int n, int32_t* c, int ldc);

void bgemm_portable(const uint32_t* a, int m, const uint32_t* b, int nb, int n, int32_t* c, int ldc);
#if defined(__x86_64__)
void bgemm_popcnt(const uint32_t* a, int m, const uint32_t* b, int nb, int n, int32_t* c, int ldc);
void bgemm_avx2(const uint32_t* a, int m, const uint32_t* b, int nb, int n, int32_t* c, int ldc);
void bgemm_avx512(const uint32_t* a, int m, const uint32_t* b, int nb, int n, int32_t* c, int ldc);
#endif

struct Kernel;
struct Job;

/* LceBconv2d's fast path, one tile: `rows` (<= tile_rows) output pixels (flat indices `pix`,
 * their receptive fields at a[r] + seg_off[s] for each segment s, see Kernel) times every
 * output channel, through the output transform into the op's output. Functions on this
 * path are named bconv_* or bgemm_*: eval/bench_arm64.py counts them by name. */
typedef void (*BconvTileFn)(const struct Kernel* k, const struct Job* j, const uint32_t* const* a,
                            const size_t* pix, int rows);

/* A code path: the binary GEMM of the general path and, where the ISA has one, the fast
 * path's tile kernel with the filter layout it reads (pack). */
typedef struct {
  const char* name;
  BgemmFn bgemm;
  BconvTileFn tile;             /* NULL: the general path only */
  void (*pack)(struct Kernel* k); /* k->filter rows to k->packed */
  int tile_rows, tile_cols;     /* pixels and channels per tile */
  int step_words;               /* words per K step; im2col rows are padded to it */
  int tail_words;               /* a segment may end in a tail of this many words (0: none) */
  int max_k_bits;               /* longest receptive field the kernel's counters hold */
  int adds_residual;            /* the tile kernel adds Job.residual to float outputs itself */
} CodePath;

#define MAX_TILE_ROWS 8
#define MAX_TILE_COLS 32

#if defined(__x86_64__)
extern const CodePath PATH_AVX512;
#elif defined(__aarch64__)
void bgemm_neon(const uint32_t* a, int m, const uint32_t* b, int nb, int n, int32_t* c, int ldc);
extern const CodePath PATH_NEON;
#endif

extern const CodePath* g_path;
EXPORT int bnn_select_path(const char* name);
EXPORT const char* bnn_path(void);

/* --- The kernel of one LCE node ---------------------------------------------------------- */

typedef struct Kernel {
  OpParams p;
  int node_index;
  int inputs[5], n_inputs;
  int output;
  int residual; /* a fused ADD's other input (float32, the output's shape), -1: none */
  int residual_clamp; /* the fused ADD's activation clamps the sum to [residual_min, residual_max] */
  float residual_min, residual_max;
  Pool* pool; /* the delegate's */
  const CodePath* path; /* chosen when the delegate was made */
  /* LceQuantize input / LceDequantize output, set in prepare: float32, int8 or bool values. An int8
   * sign is x < zero_point; int8 +1 and -1 are LCE's zero point +- round(1 / scale), saturated. */
  TfLiteType value_type;
  int32_t zero_point;
  int8_t plus_one, minus_one;
  /* LceBconv2d, set in prepare */
  int batch, in_h, in_w, in_words, out_h, out_w, out_c, out_words;
  int groups, cin_g, words_g, cout_g, taps, row_words, pad_top, pad_left, ktot;
  uint32_t* filter;  /* [out_c][row_words] */
  int32_t* tap_pop;  /* [out_c][taps]: popcount of each tap's filter words (zero padding) */
  float* multiplier; /* [out_c] (or [out_h][out_w][out_c]), tile_cols floats of slack; int8 output:
                      * with the output scale folded in */
  float* bias;       /* the same; int8 output: with the output scale and zero point folded in */
  int32_t* threshold; /* [out_c], tile_cols of slack (INT32_MAX: bit 0) */
  int spatial_transform; /* multiplier and bias per output position */
  int clamp_min, clamp_max;
  int bitpacked_out;
  int int8_out;          /* int8 output: the transform works on x = 2 * popcount, clamped to [x_min, x_max] */
  int32_t x_min, x_max;
  int scratch_per_thread; /* words */
  uint32_t* scratch;
  int32_t* counts;
  int threads;
  /* the fast path (fast != 0): each output pixel's receptive field read in place from the
   * input (or its zero-bordered copy xpad) as nseg segments of seg_words words at word
   * offsets seg_off[] from the pixel's first tap; with im2col, those segments are copied
   * into one row of kpad words first (one kernel segment). */
  int fast, im2col;
  int hp, wp;         /* rows and columns of the input as read (xpad's when it exists) */
  uint32_t* xpad;     /* the input with its padding, NULL: the input tensor itself */
  int nseg, seg_words, kpad;
  int32_t* seg_off;   /* [nseg] */
  int knseg, kseg_words; /* the segments the tile kernel reads */
  int32_t* kseg_off;  /* [knseg] */
  uint32_t* packed;   /* the filter in the tile kernel's layout */
  size_t packed_tile_words; /* words of `packed` per tile of tile_cols channels */
} Kernel;

/* One invocation: what each thread of the pool reads and writes. */
typedef struct Job {
  TfLiteContext* ctx;
  Kernel* k;
  const void* in;
  void* out;
  const float* residual; /* added to every float output (a fused ADD), NULL: none */
} Job;

/* --- delegate.c: tensor helpers ---------------------------------------------------------- */

int64_t num_elements(const TfLiteTensor* t);
size_t type_size(TfLiteType t);
TfLiteStatus fail(TfLiteContext* ctx, const char* fmt, ...);
TfLiteStatus ensure_shape(TfLiteContext* ctx, TfLiteTensor* t, const int* dims, int n);
void same_or_valid(int in, int k, int s, int d, int padding, int* out, int* pad);
void* aligned(size_t bytes);
const TfLiteTensor* optional_input(TfLiteContext* ctx, Kernel* k, int i);

/* --- The ops ----------------------------------------------------------------------------- */

uint32_t pack32(const float* x);
void quantize_rows(void* arg, int begin, int end, int thread);
void dequantize_rows(void* arg, int begin, int end, int thread);
TfLiteStatus prepare_quantize(TfLiteContext* ctx, Kernel* k);

void maxpool_rows(void* arg, int begin, int end, int thread);
TfLiteStatus prepare_maxpool(TfLiteContext* ctx, Kernel* k);

void free_conv(Kernel* k);
TfLiteStatus prepare_bconv(TfLiteContext* ctx, Kernel* k);
void bconv_invoke(Pool* pool, Job* job);
void bconv_transform(const Kernel* k, const Job* j, int b, int oy, int g, int32_t* counts);
void bconv_int8_pixel(const Kernel* k, const int32_t* counts, int g, int padded_taps, const float* multiplier,
                      const float* bias, int8_t* out);

#endif /* BNN_H_ */
