/* Thread pool: row ranges of one op run on `threads` threads (the caller is one). */
#include "bnn.h"

#include <stdlib.h>

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

Pool* pool_create(int threads) {
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

void pool_destroy(Pool* p) {
  if (!p) return;
  pthread_mutex_lock(&p->mu);
  p->stop = 1;
  pthread_cond_broadcast(&p->start);
  pthread_mutex_unlock(&p->mu);
  for (int t = 1; t < p->threads; t++) pthread_join(p->workers[t], NULL);
  free(p->workers);
  free(p);
}

void pool_run(Pool* p, RangeFn fn, void* arg, int total) {
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
