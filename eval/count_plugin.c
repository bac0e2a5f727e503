/* An instruction-counting TCG plugin for qemu-user (qemu 7.2's plugin API, version 1),
 * for eval/bench_arm64.py.
 *
 * Every translated block gets an inline counter (QEMU_PLUGIN_INLINE_ADD_U64: no call into
 * the plugin per execution). The guest brackets what it wants counted with two marker
 * syscalls (number MARK_SYSCALL, first argument 1 = start, 2 = stop; the kernel-side
 * syscall fails with ENOSYS and has no effect): at start every counter is zeroed, at stop
 * each block executed since is written to the file named by the plugin argument
 * out=PATH, one line per block:
 *
 *   <guest address> <instructions in the block> <executions> <file offset> <mapped file>
 *
 * The mapped file and its offset come from this process's /proc/self/maps, read at stop:
 * in user-mode emulation a guest address is the host address minus a fixed base, and
 * qemu_plugin_insn_haddr gives the host address of a block's first instruction, so each
 * block is attributed to the library it was loaded from (bnnzoo's kernels, LiteRT,
 * libc, ...) without the guest's help. Counts are exact for a single-threaded guest
 * (the counters are not atomic).
 *
 * The API is declared here (as converters/litert/tflite_c.h does for TFLite's): Debian's
 * qemu-user 7.2 is built with plugin support but no package ships qemu-plugin.h.
 * Build: cc -O2 -shared -fPIC -o count_plugin.so count_plugin.c
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- qemu-plugin.h (qemu 7.2), the parts used ------------------------------------------ */

typedef uint64_t qemu_plugin_id_t;
typedef struct qemu_info_t qemu_info_t;
struct qemu_plugin_tb;
struct qemu_plugin_insn;
enum qemu_plugin_op { QEMU_PLUGIN_INLINE_ADD_U64 };
typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb* tb);
typedef void (*qemu_plugin_vcpu_syscall_cb_t)(qemu_plugin_id_t id, unsigned int vcpu_index, int64_t num,
                                              uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5,
                                              uint64_t a6, uint64_t a7, uint64_t a8);
typedef void (*qemu_plugin_udata_cb_t)(qemu_plugin_id_t id, void* userdata);

void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_tb_trans_cb_t cb);
void qemu_plugin_register_vcpu_tb_exec_inline(struct qemu_plugin_tb* tb, enum qemu_plugin_op op, void* ptr,
                                              uint64_t imm);
void qemu_plugin_register_vcpu_syscall_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_syscall_cb_t cb);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, qemu_plugin_udata_cb_t cb, void* userdata);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb* tb);
uint64_t qemu_plugin_tb_vaddr(const struct qemu_plugin_tb* tb);
struct qemu_plugin_insn* qemu_plugin_tb_get_insn(const struct qemu_plugin_tb* tb, size_t idx);
void* qemu_plugin_insn_haddr(const struct qemu_plugin_insn* insn);
void qemu_plugin_outs(const char* string);

#define QEMU_PLUGIN_EXPORT __attribute__((visibility("default")))
QEMU_PLUGIN_EXPORT int qemu_plugin_version = 1;

/* --- the plugin ---------------------------------------------------------------------------- */

#define MARK_SYSCALL 0x4242 /* far above aarch64's last syscall number */
#define CHUNK 65536

typedef struct {
  uint64_t count; /* first: the inline add's target */
  uint64_t vaddr;
  uintptr_t haddr;
  uint32_t insns;
} Block;

typedef struct Chunk {
  Block blocks[CHUNK];
  size_t used;
  struct Chunk* next;
} Chunk;

static Chunk* g_chunks; /* blocks never move: their counters are baked into translated code */
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static char* g_out;
static int g_marks;

static Block* new_block(void) {
  if (!g_chunks || g_chunks->used == CHUNK) {
    Chunk* c = (Chunk*)calloc(1, sizeof *c);
    if (!c) return NULL;
    c->next = g_chunks;
    g_chunks = c;
  }
  return &g_chunks->blocks[g_chunks->used++];
}

static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb* tb) {
  (void)id;
  size_t n = qemu_plugin_tb_n_insns(tb);
  if (n == 0) return;
  pthread_mutex_lock(&g_lock);
  Block* b = new_block();
  if (b) {
    b->vaddr = qemu_plugin_tb_vaddr(tb);
    b->haddr = (uintptr_t)qemu_plugin_insn_haddr(qemu_plugin_tb_get_insn(tb, 0));
    b->insns = (uint32_t)n;
  }
  pthread_mutex_unlock(&g_lock);
  if (b) qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &b->count, 1);
}

typedef struct {
  uintptr_t start, end;
  uint64_t offset;
  char path[512];
} Mapping;

static Mapping* read_maps(size_t* n) {
  FILE* f = fopen("/proc/self/maps", "r");
  size_t cap = 256;
  Mapping* m = (Mapping*)malloc(cap * sizeof *m);
  *n = 0;
  if (!f || !m) {
    if (f) fclose(f);
    return m;
  }
  char line[1024];
  while (fgets(line, sizeof line, f)) {
    uintptr_t s, e;
    uint64_t off;
    char perms[8], dev[16], path[512] = "";
    unsigned long inode;
    if (sscanf(line, "%" SCNxPTR "-%" SCNxPTR " %7s %" SCNx64 " %15s %lu %511[^\n]", &s, &e, perms, &off, dev, &inode,
               path) < 6)
      continue;
    if (*n == cap) {
      Mapping* bigger = (Mapping*)realloc(m, 2 * cap * sizeof *m);
      if (!bigger) break;
      m = bigger, cap *= 2;
    }
    char* p = path;
    while (*p == ' ') p++;
    m[*n].start = s, m[*n].end = e, m[*n].offset = off;
    snprintf(m[*n].path, sizeof m[*n].path, "%s", *p ? p : "[anonymous]");
    (*n)++;
  }
  fclose(f);
  return m;
}

static void dump(void) {
  FILE* f = fopen(g_out, "w");
  if (!f) {
    qemu_plugin_outs("count_plugin: cannot write its output file\n");
    return;
  }
  size_t nmaps;
  Mapping* maps = read_maps(&nmaps);
  pthread_mutex_lock(&g_lock);
  for (Chunk* c = g_chunks; c; c = c->next)
    for (size_t i = 0; i < c->used; i++) {
      const Block* b = &c->blocks[i];
      if (!b->count) continue;
      const Mapping* hit = NULL;
      for (size_t k = 0; k < nmaps && !hit; k++)
        if (b->haddr >= maps[k].start && b->haddr < maps[k].end) hit = &maps[k];
      fprintf(f, "%" PRIx64 " %u %" PRIu64 " %" PRIx64 " %s\n", b->vaddr, b->insns, b->count,
              hit ? (uint64_t)(b->haddr - hit->start) + hit->offset : 0, hit ? hit->path : "[unmapped]");
    }
  pthread_mutex_unlock(&g_lock);
  free(maps);
  fclose(f);
}

static void on_syscall(qemu_plugin_id_t id, unsigned int vcpu, int64_t num, uint64_t a1, uint64_t a2, uint64_t a3,
                       uint64_t a4, uint64_t a5, uint64_t a6, uint64_t a7, uint64_t a8) {
  (void)id, (void)vcpu, (void)a2, (void)a3, (void)a4, (void)a5, (void)a6, (void)a7, (void)a8;
  if (num != MARK_SYSCALL) return;
  if (a1 == 1) {
    pthread_mutex_lock(&g_lock);
    for (Chunk* c = g_chunks; c; c = c->next)
      for (size_t i = 0; i < c->used; i++) c->blocks[i].count = 0;
    pthread_mutex_unlock(&g_lock);
    g_marks |= 1;
  } else if (a1 == 2 && (g_marks & 1)) {
    dump();
    g_marks |= 2;
  }
}

static void at_exit(qemu_plugin_id_t id, void* data) {
  (void)id, (void)data;
  if (g_marks != 3) qemu_plugin_outs("count_plugin: the guest never marked a start and a stop\n");
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t* info, int argc, char** argv) {
  (void)info;
  for (int i = 0; i < argc; i++)
    if (strncmp(argv[i], "out=", 4) == 0) g_out = strdup(argv[i] + 4);
  if (!g_out) {
    qemu_plugin_outs("count_plugin: give the output file, -plugin count_plugin.so,arg=out=PATH\n");
    return -1;
  }
  qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
  qemu_plugin_register_vcpu_syscall_cb(id, on_syscall);
  qemu_plugin_register_atexit_cb(id, at_exit, NULL);
  return 0;
}
