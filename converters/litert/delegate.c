/* The op glue: tensor helpers shared by the kernels, the delegate kernel of each LCE
 * node (init, prepare, invoke) and the TFLite delegate that claims those nodes. */
#include "bnn.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <time.h>

/* --- Tensor helpers ------------------------------------------------------------------ */

int64_t num_elements(const TfLiteTensor* t) {
  int64_t n = 1;
  for (int i = 0; i < t->dims->size; i++) n *= t->dims->data[i];
  return n;
}

size_t type_size(TfLiteType t) {
  switch (t) {
    case kTfLiteFloat32: case kTfLiteInt32: return 4;
    case kTfLiteInt64: return 8;
    case kTfLiteInt16: case kTfLiteFloat16: return 2;
    case kTfLiteInt8: case kTfLiteUInt8: case kTfLiteBool: return 1;
    default: return 0;
  }
}

TfLiteStatus fail(TfLiteContext* ctx, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(g_error, sizeof g_error, fmt, ap);
  va_end(ap);
  ctx->ReportError(ctx, "%s", g_error);
  return kTfLiteError;
}

TfLiteStatus ensure_shape(TfLiteContext* ctx, TfLiteTensor* t, const int* dims, int n) {
  int same = t->dims && t->dims->size == n;
  for (int i = 0; same && i < n; i++) same = t->dims->data[i] == dims[i];
  if (same) return kTfLiteOk;
  TfLiteIntArray* a = (TfLiteIntArray*)malloc(sizeof(int) * (1 + n)); /* TfLiteIntArrayFree is free() */
  a->size = n;
  memcpy(a->data, dims, sizeof(int) * n);
  return ctx->ResizeTensor(ctx, t, a);
}

void same_or_valid(int in, int k, int s, int d, int padding, int* out, int* pad) {
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

void* aligned(size_t bytes) {
  void* p = NULL;
  if (posix_memalign(&p, ALIGN, bytes ? bytes : ALIGN) != 0) return NULL;
  memset(p, 0, bytes);
  return p;
}

const TfLiteTensor* optional_input(TfLiteContext* ctx, Kernel* k, int i) {
  if (i >= k->n_inputs || k->inputs[i] < 0) return NULL;
  return &ctx->tensors[k->inputs[i]];
}

/* --- Kernel registration ------------------------------------------------------------- */

typedef struct {
  Pool* pool;
  int threads;
  const CodePath* path; /* the code path chosen when the delegate was made */
  int fuse_add;         /* fuse an ADD of a residual into the LceBconv2d before it */
  int* keep;            /* tensors that must stay interpreter tensors (the graph's outputs) */
  int n_keep;
} DelegateData;

enum { BUILTIN_ADD = 0, BUILTIN_CUSTOM = 32 };

static void* kernel_init(TfLiteContext* ctx, const char* buffer, size_t length) {
  (void)length;
  const TfLiteDelegateParams* params = (const TfLiteDelegateParams*)buffer;
  int n = params ? params->nodes_to_replace->size : 0;
  if (n != 1 && n != 2) {
    set_error("bnnzoo delegate: a kernel replaces one LCE node, or an LceBconv2d and the ADD after it");
    return NULL;
  }
  /* the LCE node, and the fused ADD where there is one (delegate_prepare paired them) */
  int index = -1, add = -1;
  TfLiteNode* node = NULL;
  TfLiteRegistration* reg = NULL;
  for (int i = 0; i < n; i++) {
    TfLiteNode* nd;
    TfLiteRegistration* rg;
    if (ctx->GetNodeAndRegistration(ctx, params->nodes_to_replace->data[i], &nd, &rg) != kTfLiteOk) return NULL;
    if (rg->builtin_code == BUILTIN_CUSTOM) index = params->nodes_to_replace->data[i], node = nd, reg = rg;
    else add = params->nodes_to_replace->data[i];
  }
  if (index < 0 || (n == 2 && add < 0)) {
    set_error("bnnzoo delegate: a kernel replaces one LCE node, or an LceBconv2d and the ADD after it");
    return NULL;
  }
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
  k->residual = -1;
  if (add >= 0) { /* write the ADD's output: y + residual, the conv's own output never materialised */
    TfLiteNode* a;
    TfLiteRegistration* ra;
    ctx->GetNodeAndRegistration(ctx, add, &a, &ra);
    k->residual = a->inputs->data[a->inputs->data[0] == k->output ? 1 : 0];
    k->output = a->outputs->data[0];
    int act = *(const int*)a->builtin_data;
    k->residual_clamp = act != ACT_NONE;
    k->residual_min = act == ACT_RELU_N1_TO_1 ? -1.0f : 0.0f;
    k->residual_max = act == ACT_RELU6 ? 6.0f : act == ACT_RELU_N1_TO_1 ? 1.0f : INFINITY;
  }
  k->pool = ((DelegateData*)params->delegate->data_)->pool;
  k->path = ((DelegateData*)params->delegate->data_)->path;
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
    case OP_BCONV2D: {
      if (prepare_bconv(ctx, k) != kTfLiteOk) return kTfLiteError;
      if (k->residual < 0) return kTfLiteOk;
      const TfLiteTensor *r = &ctx->tensors[k->residual], *out = &ctx->tensors[k->output];
      if (out->type != kTfLiteFloat32 || r->type != kTfLiteFloat32 || num_elements(r) != num_elements(out))
        return fail(ctx, "LceBconv2d: the fused ADD needs float32 tensors of one shape");
      return kTfLiteOk;
    }
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
  if (!g_path) bnn_select_path(NULL);
  Job job = {ctx, k, in->data.raw, out->data.raw, NULL};
  if (k->residual >= 0 && !(job.residual = ctx->tensors[k->residual].data.f))
    return fail(ctx, "%s: unallocated tensor", OP_NAMES[k->p.op]);
  switch (k->p.op) {
    case OP_QUANTIZE: case OP_DEQUANTIZE: {
      int rows = (int)(num_elements(in) / in->dims->data[in->dims->size - 1]);
      pool_run(k->pool, k->p.op == OP_QUANTIZE ? quantize_rows : dequantize_rows, &job, rows);
      break;
    }
    case OP_BMAXPOOL2D: pool_run(k->pool, maxpool_rows, &job, k->batch * k->out_h); break;
    case OP_BCONV2D: bconv_invoke(k->pool, &job); break;
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

static int same_dims(const TfLiteTensor* a, const TfLiteTensor* b) {
  if (!a->dims || !b->dims || a->dims->size != b->dims->size) return 0;
  for (int d = 0; d < a->dims->size; d++)
    if (a->dims->data[d] != b->dims->data[d] || a->dims->data[d] < 0) return 0;
  return 1;
}

/* The ADD node that only adds a residual to LceBconv2d node `conv`'s float output, or -1. Fused,
 * the conv writes y + residual itself (the same float: one rounding either way) and the
 * interpreter runs one op and one pass over memory less. Only where the ADD is the one node
 * that reads the conv's output (`readers`, `reader`: how many nodes read each tensor, and the
 * last of them), that output is not one of the graph's outputs (a layer-by-layer check reads
 * those), and the ADD has no broadcast and no activation but a clamp (RELU, RELU_N1_TO_1, RELU6). */
static int fusable_add(TfLiteContext* ctx, const DelegateData* data, const int* readers, const int* reader,
                       TfLiteNode* conv) {
  int y = conv->outputs->data[0];
  if (!data->fuse_add || readers[y] != 1 || ctx->tensors[y].type != kTfLiteFloat32) return -1;
  for (int i = 0; i < data->n_keep; i++)
    if (data->keep[i] == y) return -1;
  TfLiteNode* node;
  TfLiteRegistration* reg;
  if (ctx->GetNodeAndRegistration(ctx, reader[y], &node, &reg) != kTfLiteOk) return -1;
  if (reg->builtin_code != BUILTIN_ADD || !node->builtin_data || !node->inputs || node->inputs->size != 2 ||
      !node->outputs || node->outputs->size != 1)
    return -1;
  int r = node->inputs->data[node->inputs->data[0] == y ? 1 : 0], out = node->outputs->data[0];
  if (r == y || r < 0 || out < 0) return -1;
  int act = *(const int*)node->builtin_data; /* TfLiteAddParams.activation */
  if (act != ACT_NONE && act != ACT_RELU && act != ACT_RELU_N1_TO_1 && act != ACT_RELU6) return -1;
  const TfLiteTensor *ty = &ctx->tensors[y], *tr = &ctx->tensors[r], *to = &ctx->tensors[out];
  if (tr->type != kTfLiteFloat32 || to->type != kTfLiteFloat32 || !same_dims(ty, tr) || !same_dims(ty, to))
    return -1;
  return reader[y];
}

/* ADD nodes fused by the last delegate_prepare, for the Python wrapper (Interpreter.fused_adds). */
static int g_fused_adds;

EXPORT int bnn_fused_adds(void) { return g_fused_adds; }

static TfLiteStatus delegate_prepare(TfLiteContext* ctx, TfLiteDelegate* delegate) {
  TfLiteIntArray* plan;
  if (ctx->GetExecutionPlan(ctx, &plan) != kTfLiteOk) return kTfLiteError;
  if (check_layout(ctx) != kTfLiteOk) return kTfLiteError;
  const DelegateData* data = (const DelegateData*)delegate->data_;
  int n = plan->size;
  int* claimed = (int*)malloc(sizeof(int) * (n ? n : 1));
  int* fused = (int*)malloc(sizeof(int) * (n ? n : 1)); /* the ADD fused into claimed[i], or -1 */
  int* readers = (int*)calloc(2 * ctx->tensors_size, sizeof(int)); /* nodes reading each tensor */
  int* reader = readers + ctx->tensors_size;                         /* the last of them */
  if (!claimed || !fused || !readers) {
    free(claimed), free(fused), free(readers);
    return fail(ctx, "bnnzoo delegate: out of memory");
  }
  for (int i = 0; i < n; i++) {
    TfLiteNode* node;
    TfLiteRegistration* reg;
    if (ctx->GetNodeAndRegistration(ctx, plan->data[i], &node, &reg) != kTfLiteOk || !node->inputs) continue;
    for (int q = 0; q < node->inputs->size; q++) {
      int t = node->inputs->data[q];
      if (t >= 0 && t < (int)ctx->tensors_size) readers[t]++, reader[t] = plan->data[i];
    }
  }
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
      free(claimed), free(fused), free(readers);
      return fail(ctx, "bnnzoo delegate: TfLiteNode layout mismatch at %s (node %d)", reg->custom_name, index);
    }
    for (int q = 0; q < node->inputs->size; q++)
      if (node->inputs->data[q] >= (int)ctx->tensors_size) {
        free(claimed), free(fused), free(readers);
        return fail(ctx, "bnnzoo delegate: TfLiteNode layout mismatch at %s (node %d)", reg->custom_name, index);
      }
    OpParams p;
    if (!parse_params(op, (const uint8_t*)node->custom_initial_data, (size_t)node->custom_initial_data_size, &p)) {
      free(claimed), free(fused), free(readers);
      ctx->ReportError(ctx, "%s", g_error);
      return kTfLiteError;
    }
    fused[count] = op == OP_BCONV2D ? fusable_add(ctx, data, readers, reader, node) : -1;
    for (int c = 0; c < count && fused[count] >= 0; c++) /* an ADD of two such convs: fused into the first */
      if (fused[c] == fused[count]) fused[count] = -1;
    claimed[count++] = index;
  }
  free(readers);
  g_fused_adds = 0;
  for (int i = 0; i < count; i++) g_fused_adds += fused[i] >= 0;
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
  /* one LCE node per delegate kernel (with its fused ADD): the tensors between our ops stay
   * interpreter tensors */
  for (int i = 0; i < count && status == kTfLiteOk; i++) {
    struct {
      int size;
      int data[2];
    } subset = {fused[i] < 0 ? 1 : 2, {claimed[i], fused[i]}};
    status = ctx->ReplaceNodeSubsetsWithDelegateKernels(ctx, reg, (const TfLiteIntArray*)&subset, delegate);
  }
  free(claimed), free(fused);
  return status;
}

EXPORT TfLiteDelegate* tflite_plugin_create_delegate(char** keys, char** values, size_t n,
                                                     void (*report_error)(const char*)) {
  int threads = 1, path_given = 0, fuse_add = 0;
  const char* keep = "";
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
    } else if (strcmp(keys[i], "fuse_add") == 0) {
      fuse_add = strcmp(values[i], "1") == 0;
    } else if (strcmp(keys[i], "keep") == 0) {
      keep = values[i];
    } else {
      if (report_error) report_error("bnnzoo delegate: unknown option (num_threads, path, fuse_add, keep)");
      return NULL;
    }
  }
  if (!path_given) bnn_select_path(NULL); /* the best path, whatever an earlier delegate forced */
  TfLiteDelegate* d = (TfLiteDelegate*)calloc(1, sizeof *d);
  DelegateData* data = (DelegateData*)calloc(1, sizeof *data);
  data->threads = threads;
  data->path = g_path;
  data->pool = pool_create(threads);
  data->fuse_add = fuse_add;
  /* keep: comma-separated tensor indices */
  data->keep = (int*)malloc(sizeof(int) * (strlen(keep) / 2 + 1));
  for (const char* c = keep; data->keep && *c;) {
    char* end;
    long v = strtol(c, &end, 10);
    if (end == c) break;
    data->keep[data->n_keep++] = (int)v;
    c = *end == ',' ? end + 1 : end;
  }
  d->data_ = data;
  d->Prepare = delegate_prepare;
  d->flags = kTfLiteDelegateFlagsAllowDynamicTensors;
  return d;
}

EXPORT void tflite_plugin_destroy_delegate(TfLiteDelegate* d) {
  if (!d) return;
  DelegateData* data = (DelegateData*)d->data_;
  if (data) pool_destroy(data->pool), free(data->keep);
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
