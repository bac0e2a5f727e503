/* Errors, the ops' options (a minimal FlexBuffers reader) and the op parameters parsed
 * from them: one parser for the Python wrapper's check (bnn_check_op) and the kernels. */
#include "bnn.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

char g_error[512];

void set_error(const char* fmt, ...) {
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

const char* const OP_NAMES[4] = {"LceQuantize", "LceDequantize", "LceBconv2d", "LceBMaxPool2d"};

int op_code(const char* name) {
  if (!name) return OP_UNKNOWN;
  for (int i = 0; i < 4; i++)
    if (strcmp(name, OP_NAMES[i]) == 0) return i;
  return OP_UNKNOWN;
}

int parse_params(int op, const uint8_t* data, size_t len, OpParams* p) {
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
