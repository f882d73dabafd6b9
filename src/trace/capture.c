/* The one capture of every family (see capture.h): buffers for each attention kind a run produces (zeroed
 * full matrices, in the output file's pages when they are large; or a lazy kind's queries and keys), the
 * views the forward pass writes through, and the trace they become: model metadata, attention sets or lazy
 * kinds with the parameters of their scores, value norms, logits. */
#include "capture.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

int av_cap_init(av_run_capture *c, const av_model *m, const av_run_params *p, av_err *err) {
    memset(c, 0, sizeof *c);
    c->m = m;
    c->p = p;
    if (p->dtype != AV_DTYPE_F32 && p->dtype != AV_DTYPE_F16)
        return av_errf(err, "traces store attention as F32 or F16, not %s", av_dtype_name(p->dtype));
    return 0;
}

/* The pooled overview a lazy kind keeps (docs/TRACE_FORMAT.md, "Overviews"): p->pool_cells cells a side, or
 * by default AV_POOL_CELLS when a side has AV_POOL_AUTO_MIN tokens (shorter ones recompute quickly). */
enum { AV_POOL_CELLS = 256, AV_POOL_AUTO_MIN = 4096, AV_POOL_MAX_CELLS = 4096 };

static void pool_shape(const av_run_params *p, cap_kind *k) {
    int cells = p->pool_cells;
    if (!p->lazy || cells < 0) return;
    if (cells == 0)
        cells = k->n_query >= AV_POOL_AUTO_MIN || k->n_key >= AV_POOL_AUTO_MIN ? AV_POOL_CELLS : 0;
    cells = cells > AV_POOL_MAX_CELLS ? AV_POOL_MAX_CELLS : cells;
    k->pool_rows = cells < k->n_query ? cells : k->n_query;
    k->pool_cols = cells < k->n_key ? cells : k->n_key;
}

void av_cap_declare(av_run_capture *c, av_attn_kind kind, int stack, int cross, int n_query, int n_key) {
    const av_stack *st = &c->m->stacks[stack];
    cap_kind *k = &c->kinds[kind];
    *k = (cap_kind){.stack = stack,
                    .cross = cross,
                    .n_layers = st->n_layers,
                    .n_heads = st->cfg.n_heads,
                    .n_kv_heads = st->cfg.n_kv_heads,
                    .head_dim = st->cfg.head_dim,
                    .n_query = n_query,
                    .n_key = n_key};
    pool_shape(c->p, k);
}

/* n buffers of per floats each, zeroed when zero (fresh pages); NULL with a message when memory runs out. */
static float **alloc_bufs(int n, size_t per, int zero, av_err *err) {
    float **b = calloc((size_t)(n > 0 ? n : 1), sizeof *b);
    for (int i = 0; b && i < n; i++)
        if (!(b[i] = zero ? calloc(per ? per : 1, sizeof(float)) : malloc(sizeof(float) * (per ? per : 1)))) {
            for (int k = 0; k < i; k++)
                free(b[k]);
            free(b);
            b = NULL;
        }
    if (!b) av_errf(err, "out of memory");
    return b;
}

static void free_bufs(float **b, int n) {
    for (int i = 0; b && i < n; i++)
        free(b[i]);
    free(b);
}

/* Bytes of one plane of each buffer of kind k: queries, keys, one pooled overview (max or sum). */
static size_t q_bytes(const cap_kind *k) {
    return sizeof(float) * (size_t)k->n_heads * (size_t)k->n_query * (size_t)k->head_dim;
}
static size_t k_bytes(const cap_kind *k) {
    return sizeof(float) * (size_t)k->n_kv_heads * (size_t)k->n_key * (size_t)k->head_dim;
}
static size_t pool_bytes(const cap_kind *k) {
    return sizeof(float) * (size_t)k->n_heads * (size_t)k->pool_rows * (size_t)k->pool_cols;
}

/* A lazy run's output file, laid out as av_trace_save writes it: first av_lazy_save's F32 tensors (queries
 * and keys of every kind, their pooled overviews, relative biases; the value norms, logits and the rest
 * follow after the mapping): its size, and with base, the queries, keys and pools of every kind assigned
 * their windows. */
static size_t lazy_layout(av_run_capture *c, unsigned char *base) {
    size_t off = 0;
    for (int part = 0; part < 3; part++)
        for (int i = 0; i < AV_ATTN_KIND_COUNT; i++) {
            cap_kind *k = &c->kinds[i];
            for (int l = 0; part == 0 && l < k->n_layers; l++) {
                if (base) k->q[l] = (float *)(base + off), k->k[l] = (float *)(base + off + q_bytes(k));
                off += q_bytes(k) + k_bytes(k);
            }
            for (int l = 0; part == 1 && k->pool_rows && l < k->n_layers; l++) {
                if (base)
                    k->pool[l].max = (float *)(base + off),
                    k->pool[l].sum = (float *)(base + off + pool_bytes(k));
                off += 2 * pool_bytes(k);
            }
            if (part == 2 && k->n_layers && !k->cross && c->m->stacks[k->stack].rel.table.data)
                off += sizeof(float) * (size_t)k->n_heads * (size_t)(k->n_query + k->n_key - 1);
        }
    return off;
}

/* Whether c captures full attention stored as F16. */
static int full_f16(const av_run_capture *c) { return !c->p->lazy && c->p->dtype == AV_DTYPE_F16; }

/* Full traces of at least 4x the header room go straight into the output file (av_st_prealloc), and so do
 * lazy runs' queries, keys and overviews; small files would be mostly header. F16 ones only when nothing
 * reads them before the file is written (write_out): they are converted on their way there. attn_bytes: the
 * attention in f32. */
static int open_prealloc(av_run_capture *c, size_t attn_bytes, int n_labels, int n_tensors, av_err *err) {
    const av_run_params *p = c->p;
    size_t room = 65536 + (size_t)n_labels * 128 + (size_t)n_tensors * 512; /* labels, ids, tensor entries */
    size_t bytes = p->lazy ? lazy_layout(c, NULL) : full_f16(c) ? attn_bytes / 2 : attn_bytes;
    if (!p->output_path || (full_f16(c) && !c->write_out) || bytes < 4 * room) return 0;
    if (!(c->pre = calloc(1, sizeof *c->pre))) return av_errf(err, "out of memory");
    int r = av_st_prealloc_open(c->pre, p->output_path, room, bytes, err);
    if (r != 0) { /* 1: the file cannot be mapped; keep the capture in memory */
        free(c->pre);
        c->pre = NULL;
    }
    c->mapped = c->pre != NULL;
    return r < 0 ? -1 : 0;
}

/* Full buffers of one kind: in the mapping at *off (or the F16 capture's coordinates), or calloc'd (fresh
 * zero pages either way). */
static int alloc_full(av_run_capture *c, cap_kind *k, size_t *off, av_err *err) {
    size_t per = (size_t)k->n_heads * (size_t)k->n_query * (size_t)k->n_key;
    if (!c->pre) {
        if ((k->attn = alloc_bufs(k->n_layers, per, 1, err))) return 0;
        return av_errf(err,
                       "out of memory: the full trace needs %zu MiB (%d layers x %d heads x %d x %d floats); "
                       "try a lazy trace (--lazy)",
                       (per * sizeof(float) * (size_t)k->n_layers) >> 20, k->n_layers, k->n_heads, k->n_query,
                       k->n_key);
    }
    if (!(k->attn = calloc((size_t)k->n_layers, sizeof *k->attn))) return av_errf(err, "out of memory");
    unsigned char *base = c->coords ? c->coords : c->pre->map + c->pre->room;
    for (int l = 0; l < k->n_layers; l++, *off += per * sizeof(float))
        k->attn[l] = (float *)(base + *off);
    return 0;
}

/* Query/key buffers of one kind (and its pools): windows of the output file when it is mapped (assigned by
 * lazy_layout), else malloc'd (pools zeroed). */
static int alloc_qk(av_run_capture *c, cap_kind *k, av_err *err) {
    int L = k->n_layers;
    if (k->pool_rows && !(k->pool = calloc((size_t)L, sizeof *k->pool))) return av_errf(err, "out of memory");
    for (int l = 0; k->pool && l < L; l++)
        k->pool[l] = (av_attn_pool){NULL, NULL, k->pool_rows, k->pool_cols, k->n_query, k->n_key};
    if (c->pre && c->p->lazy) {
        k->q = calloc((size_t)L, sizeof *k->q);
        k->k = calloc((size_t)L, sizeof *k->k);
        return k->q && k->k ? 0 : av_errf(err, "out of memory");
    }
    size_t plane = pool_bytes(k) / sizeof(float);
    if (!(k->q = alloc_bufs(L, q_bytes(k) / sizeof(float), 0, err)) ||
        !(k->k = alloc_bufs(L, k_bytes(k) / sizeof(float), 0, err)))
        return av_errf(err, "out of memory for the trace's queries and keys (%d x %d)", k->n_query, k->n_key);
    for (int l = 0; k->pool && l < L; l++)
        if (!(k->pool[l].max = calloc(plane, sizeof(float))) ||
            !(k->pool[l].sum = calloc(plane, sizeof(float))))
            return av_errf(err, "out of memory");
    return 0;
}

/* ---- full attention written past the page cache ---- */

static float *sink_take(void *ctx) { return av_direct_take(((av_run_capture *)ctx)->direct); }

/* The F16 place in the output file of the f32 address a in an F16 capture's coordinates. */
static unsigned char *f16_place(const av_run_capture *c, const av_st_prealloc *pre, const void *a) {
    return pre->map + pre->room + ((const unsigned char *)a - c->coords) / 2;
}

/* n rows' floats, bound for dst, go to the file: as they are, or converted to F16 in place */
static void sink_put(void *ctx, float *rows, const float *dst, size_t n) {
    av_run_capture *c = ctx;
    if (c->coords) {
        av_f32_to_f16_n(rows, (uint16_t *)rows, n);
        av_direct_put(c->direct, rows, n * sizeof(uint16_t),
                      (uint64_t)(f16_place(c, c->pre, dst) - c->pre->map));
        return;
    }
    av_direct_put(c->direct, rows, n * sizeof(float), (uint64_t)((const unsigned char *)dst - c->pre->map));
}

/* Staging buffers: each holds whole blocks of query rows, as many as fit in about DIRECT_BUF_BYTES (a head of
 * 512 tokens: one 1 MiB write, where blocks of 128 rows made four, each a request to the device). There are
 * enough for a whole layer of attention and one more per thread, up to DIRECT_STAGING_BYTES (at least
 * DIRECT_BUFS_PER_THREAD per thread): a layer's heads then never wait for the device, their writes drain
 * while the next layer's projections run. With 3 per thread the attention of the 1.1 B model at 512 tokens
 * waited on the VM's disk (~1 GB/s direct): 0.61-0.93 s of its forward against 0.36-0.52 s with a layer's
 * worth (docs/BENCHMARKS.md, session 30). */
enum { DIRECT_BUFS_PER_THREAD = 3, DIRECT_BUF_BYTES = 2 << 20, DIRECT_STAGING_BYTES = 64 << 20 };

/* Floats of a staging buffer for kind k: its rows of whole query blocks that fit DIRECT_BUF_BYTES (at least
 * one block), no more than a head has. */
static size_t direct_buf_floats(const cap_kind *k) {
    size_t row = (size_t)k->n_key, qb = AV_ATTN_QUERY_BLOCK;
    size_t fit = DIRECT_BUF_BYTES / sizeof(float) / row / qb, head = ((size_t)k->n_query + qb - 1) / qb;
    return (fit < 1 ? 1 : fit < head ? fit : head) * qb * row;
}

/* Staging buffers of buf_floats one layer of kind k fills: each head's blocks, as many per buffer as fit (as
 * av_attn_head_blocks hands them over). */
static size_t direct_bufs_per_layer(const cap_kind *k, size_t buf_floats) {
    size_t qb = AV_ATTN_QUERY_BLOCK, head = ((size_t)k->n_query + qb - 1) / qb;
    size_t per = buf_floats / (qb * (size_t)k->n_key);
    per = per < 1 ? 1 : per;
    return (size_t)k->n_heads * ((head + per - 1) / per);
}

/* A full capture in the output file goes through a direct writer when the run allows it (write_out) and the
 * file system takes direct writes; ATTNVIZ_DIRECT_IO=0 keeps an F32 one in the mapping (comparisons,
 * benchmarks). An F16 one always goes through the writer's staging (its rows are converted there): into the
 * mapping when the file system takes no direct writes or ATTNVIZ_DIRECT_IO=0. */
static void open_direct(av_run_capture *c) {
    const char *env = getenv("ATTNVIZ_DIRECT_IO");
    int direct = !(env && !strcmp(env, "0"));
    if (!c->write_out || !c->pre || c->p->lazy || (!direct && !full_f16(c))) return;
    size_t floats = 0, layer = 0;
    for (int i = 0; i < AV_ATTN_KIND_COUNT; i++) {
        size_t f = c->kinds[i].n_layers ? direct_buf_floats(&c->kinds[i]) : 0;
        floats = f > floats ? f : floats;
    }
    if (!floats) return; /* no attention to write */
    for (int i = 0; i < AV_ATTN_KIND_COUNT; i++) {
        size_t n = c->kinds[i].n_layers ? direct_bufs_per_layer(&c->kinds[i], floats) : 0;
        layer = n > layer ? n : layer;
    }
    int threads = c->p->n_threads > 0 ? c->p->n_threads : av_default_threads();
    size_t most = DIRECT_STAGING_BYTES / (sizeof(float) * floats), want = layer + (size_t)threads;
    want = want < most ? want : most;
    int n_bufs = DIRECT_BUFS_PER_THREAD * threads;
    n_bufs = want > (size_t)n_bufs ? (int)want : n_bufs;
    const char *path = c->pre->file.tmp_path;
    if (direct) c->direct = av_direct_open(path, n_bufs, sizeof(float) * floats);
    if (!c->direct && full_f16(c))
        c->direct = av_direct_open_memory(c->pre->map, c->pre->map_len, path, n_bufs, sizeof(float) * floats);
    if (c->direct)
        c->sink = (av_probs_sink){sink_take, sink_put, c, av_direct_buffer_bytes(c->direct) / sizeof(float)};
}

/* An F16 capture in the output file: through the writer, its rows' places named by the coordinates
 * (f32_bytes of address space, inaccessible: a stray store faults instead of landing anywhere); without a
 * writer (out of memory) the file is dropped and the capture stays in memory until it is saved. */
static int f16_in_file(av_run_capture *c, size_t f32_bytes, av_err *err) {
    void *r = c->direct ? mmap(NULL, f32_bytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
                        : MAP_FAILED;
    if (r != MAP_FAILED) {
        c->coords = r, c->coords_len = f32_bytes;
        return 0;
    }
    int reserve_failed = c->direct != NULL;
    av_direct_close(c->direct, NULL);
    c->direct = NULL;
    av_st_prealloc_free(c->pre);
    free(c->pre);
    c->pre = NULL, c->mapped = 0;
    return reserve_failed
               ? av_errf(err, "cannot reserve %zu MiB of address space for the F16 capture", f32_bytes >> 20)
               : 0;
}

int av_cap_alloc(av_run_capture *c, int n_logits, av_err *err) {
    size_t bytes = 0, off = 0, per;
    int labels = 0, tensors = 0;
    for (int i = 0; i < AV_ATTN_KIND_COUNT; i++) {
        const cap_kind *k = &c->kinds[i];
        if (!k->n_layers) continue;
        if (!av_mul_size((size_t)k->n_heads * (size_t)k->n_query, (size_t)k->n_key, &per) ||
            !av_mul_size(per * sizeof(float), (size_t)k->n_layers, &per) || !av_add_size(bytes, per, &bytes))
            return av_errf(err, "attention size overflows");
        labels += k->n_query + k->n_key; /* queries and keys: up to two label lists, each with ids */
        tensors += 4 * k->n_layers;
    }
    if (open_prealloc(c, bytes, labels, tensors, err)) return -1;
    open_direct(c);
    if (c->pre && full_f16(c) && f16_in_file(c, bytes, err)) return -1;
    for (int i = 0; i < AV_ATTN_KIND_COUNT; i++) {
        cap_kind *k = &c->kinds[i];
        if (!k->n_layers) continue;
        if ((!c->p->lazy && alloc_full(c, k, &off, err)) ||
            ((c->p->lazy || c->p->keep_qk) && alloc_qk(c, k, err)))
            return -1;
    }
    if (c->pre && c->p->lazy) lazy_layout(c, c->pre->map + c->pre->room);
    const cap_kind *self = &c->kinds[AV_ATTN_SELF];
    if (self->n_layers &&
        !(c->vnorm = alloc_bufs(self->n_layers, (size_t)self->n_heads * self->n_query, 0, err)))
        return -1;
    if (c->p->want_logits && c->m->head.n_out && n_logits > 0) {
        if (!(c->logits = malloc(sizeof(float) * (size_t)n_logits * (size_t)c->m->head.n_out)))
            return av_errf(err, "out of memory for logits");
        c->n_logits = n_logits;
    }
    return 0;
}

av_capture av_cap_view(const av_run_capture *c, av_attn_kind kind) {
    const cap_kind *k = &c->kinds[kind];
    if (!k->n_layers) return (av_capture){0};
    return (av_capture){.attn = k->attn,
                        .vnorm = kind == AV_ATTN_SELF ? c->vnorm : NULL,
                        .q = k->q,
                        .k = k->k,
                        .T = k->n_query,
                        .n_key = k->n_key,
                        .zeroed = 1,
                        .pool = k->pool,
                        .sink = c->direct && k->attn ? &c->sink : NULL};
}

/* Drops the pages of [p, p + n) from the process: a shared file mapping keeps their data in the file. */
static void release_pages(const void *p, size_t n) {
    uintptr_t a = (uintptr_t)p & ~(uintptr_t)4095, e = ((uintptr_t)p + n + 4095) & ~(uintptr_t)4095;
    if (p && n) madvise((void *)a, e - a, MADV_DONTNEED);
}

/* A lazy run into its output file: drops the pages of layer l of kind from the process (they stay in the
 * file), so memory does not grow with the queries and keys written so far. No-op otherwise. */
static void release(const av_run_capture *c, av_attn_kind kind, int layer) {
    const cap_kind *k = &c->kinds[kind];
    if (!c->mapped || !c->p->lazy || layer < 0 || layer >= k->n_layers) return;
    release_pages(k->q[layer], q_bytes(k) + k_bytes(k)); /* queries, then keys */
    if (k->pool) release_pages(k->pool[layer].max, 2 * pool_bytes(k));
}

void av_cap_free(av_run_capture *c) {
    for (int i = 0; i < AV_ATTN_KIND_COUNT; i++) {
        cap_kind *k = &c->kinds[i];
        float **in_file[] = {k->attn, k->q, k->k};
        for (size_t b = 0; c->mapped && b < (c->p->lazy ? 3u : 1u); b++) /* keep_qk's q/k are malloc'd */
            if (in_file[b])
                memset(in_file[b], 0, sizeof(float *) * (size_t)k->n_layers); /* the file's pages */
        for (int l = 0; k->pool && !c->mapped && l < k->n_layers; l++) {
            free(k->pool[l].max);
            free(k->pool[l].sum);
        }
        free(k->pool);
        free_bufs(k->attn, k->n_layers);
        free_bufs(k->q, k->n_layers);
        free_bufs(k->k, k->n_layers);
    }
    free_bufs(c->vnorm, c->kinds[AV_ATTN_SELF].n_layers);
    free(c->logits);
    av_direct_close(c->direct, NULL); /* before the file goes */
    if (c->coords) munmap(c->coords, c->coords_len);
    if (c->pre) av_st_prealloc_free(c->pre);
    free(c->pre);
    memset(c, 0, sizeof *c);
}

/* ---- progress ---- */

/* Work of rows [p0, p0 + n) through one layer: the weights' products and the keys each row sees. */
static double chunk_work(const av_cap_progress *r, int p0, int n) {
    double pairs = r->causal ? (double)n * (p0 + 0.5 * (n + 1)) : (double)n * r->n_tokens;
    return r->per_row * n + r->per_pair * pairs;
}

void av_cap_progress_init(av_cap_progress *r, const av_run_capture *c, av_attn_kind kind, int n_tokens) {
    const cap_kind *k = &c->kinds[kind];
    const av_stack *st = &c->m->stacks[k->stack];
    *r = (av_cap_progress){.p = c->p,
                           .c = c,
                           .kind = kind,
                           .n_layers = k->n_layers,
                           .n_tokens = n_tokens,
                           .causal = st->cfg.causal};
    r->per_row = 2.0 * ((double)st->cfg.dim * (st->cfg.n_heads + st->cfg.n_kv_heads) * k->head_dim * 2 +
                        3.0 * st->cfg.dim * st->cfg.hidden);
    r->per_pair = 4.0 * k->n_heads * k->head_dim;
    r->total = r->n_layers * chunk_work(r, 0, n_tokens);
}

void av_cap_on_layer(void *ctx, int layer, int pos0, int n) {
    av_cap_progress *r = ctx;
    release(r->c, r->kind, layer);
    r->done += chunk_work(r, pos0, n);
    if (r->p->progress && layer == r->n_layers - 1) r->p->progress(r->p->progress_ctx, pos0 + n, r->n_tokens);
    if (!r->p->on_progress) return;
    av_progress pr = {layer, r->n_layers, pos0 + n, r->n_tokens, r->done, r->total};
    r->p->on_progress(r->p->on_progress_ctx, &pr);
}

/* ---- the trace ---- */

static int model_meta(const av_model *m, av_trace *t, av_err *err) {
    av_model_info info = av_model_get_info(m);
    return av_trace_set_meta(t, "model", m->name, err) || av_trace_set_meta(t, "arch", m->arch, err) ||
           av_trace_set_meta(t, "family", av_family_name(m->family), err) ||
           av_trace_set_meta(t, "model_format", av_model_format_name(m->format), err) ||
           av_trace_set_meta(t, "created_by", "attnviz " AV_VERSION, err) ||
           av_trace_set_meta_int(t, "n_layers", m->n_layers, err) ||
           av_trace_set_meta_int(t, "n_heads", m->n_heads, err) ||
           av_trace_set_meta_int(t, "n_kv_heads", m->n_kv_heads, err) ||
           (info.n_dec_layers && av_trace_set_meta_int(t, "n_dec_layers", info.n_dec_layers, err));
}

/* The pooled sums of layer l become means: each cell divided by the queries x keys it covers. */
static void pool_means(const cap_kind *k, int l) {
    float *sum = k->pool[l].sum;
    for (int h = 0; h < k->n_heads; h++)
        for (int r = 0; r < k->pool_rows; r++) {
            int64_t rows =
                (int64_t)(r + 1) * k->n_query / k->pool_rows - (int64_t)r * k->n_query / k->pool_rows;
            float *cell = sum + ((size_t)h * (size_t)k->pool_rows + (size_t)r) * (size_t)k->pool_cols;
            for (int c = 0; c < k->pool_cols; c++) {
                int64_t cols =
                    (int64_t)(c + 1) * k->n_key / k->pool_cols - (int64_t)c * k->n_key / k->pool_cols;
                cell[c] = (float)((double)cell[c] / ((double)rows * (double)cols));
            }
        }
}

/* The captured queries and keys of a kind (lazy: its attention; else kept beside the matrices), with what
 * its scores depend on from the blocks that computed it, and its pooled overview. */
static int add_lazy(const av_run_capture *c, cap_kind *k, av_attn_kind kind, av_trace *t, av_err *err) {
    const av_stack *st = &c->m->stacks[k->stack];
    int L = k->n_layers, rel = !k->cross && st->rel.table.data;
    av_lazy_kind lz = {
        .n_layers = L,
        .lazy = c->p->lazy,
        .n_heads = k->n_heads,
        .n_kv_heads = k->n_kv_heads,
        .head_dim = k->head_dim,
        .n_query = k->n_query,
        .n_key = k->n_key,
        .causal = !k->cross && st->cfg.causal,
        .q = (const float **)k->q,
        .k = (const float **)k->k,
        .scale = malloc(sizeof(float) * (size_t)L),
        .softcap = calloc((size_t)L, sizeof(float)),
        .window = calloc((size_t)L, sizeof(int)),
        .rel_bias = rel ? malloc(sizeof(float) * (size_t)k->n_heads * (size_t)(2 * k->n_query - 1)) : NULL,
        .pool_max = k->pool ? calloc((size_t)L, sizeof(float *)) : NULL,
        .pool_mean = k->pool ? calloc((size_t)L, sizeof(float *)) : NULL,
        .pool_rows = k->pool_rows,
        .pool_cols = k->pool_cols,
        .owns_qk = !c->mapped || !c->p->lazy,
        .owns_extras = 1};
    if (!lz.scale || !lz.softcap || !lz.window || (rel && !lz.rel_bias) ||
        (k->pool && (!lz.pool_max || !lz.pool_mean))) { /* the capture still owns (and frees) q, k, pools */
        void *small[] = {lz.scale, lz.softcap, lz.window, (void *)lz.rel_bias, lz.pool_max, lz.pool_mean};
        for (size_t i = 0; i < sizeof small / sizeof small[0]; i++)
            free(small[i]);
        return av_errf(err, "out of memory");
    }
    for (int l = 0; k->pool && l < L; l++) {
        pool_means(k, l);
        lz.pool_max[l] = k->pool[l].max;
        lz.pool_mean[l] = k->pool[l].sum;
        release(c, kind, l);
    }
    k->q = k->k = NULL;
    free(k->pool);
    k->pool = NULL;
    for (int l = 0; l < L; l++) {
        const av_block *B = &st->blocks[l];
        lz.scale[l] = B->attn_scale; /* the forward pass's cross-attention: the same scale, nothing else */
        lz.softcap[l] = k->cross ? 0 : B->attn_softcap;
        lz.window[l] = k->cross ? 0 : B->window;
    }
    if (rel) av_rel_pos_bias(st, k->n_query, (float *)lz.rel_bias); /* self kinds: n_query == n_key */
    return av_trace_set_lazy(t, kind, &lz, err);                    /* owns lz's buffers, also on failure */
}

/* The captured sets of one kind (the trace takes them; those in the file's mapping stay there). */
static int add_sets(const av_run_capture *c, cap_kind *k, av_attn_kind kind, av_trace *t, av_err *err) {
    for (int l = 0; l < k->n_layers; l++) {
        float *a = k->attn[l];
        k->attn[l] = NULL;
        if (c->coords ? av_trace_add_attn_f16(t, kind, l, k->n_heads, k->n_query, k->n_key,
                                              (const uint16_t *)f16_place(c, t->prealloc, a), err)
                      : av_trace_add_attn(t, kind, l, k->n_heads, k->n_query, k->n_key, a, err))
            return -1;
    }
    return 0;
}

int av_cap_finish(av_run_capture *c, av_trace **out, av_err *err) {
    *out = NULL;
    int failed = av_direct_close(c->direct, err); /* every row in the file before anything reads it */
    c->direct = NULL;
    if (failed) return -1;
    av_trace *t = av_trace_new();
    if (!t) return av_errf(err, "out of memory");
    t->store_dtype = c->p->dtype;
    t->prealloc = c->pre; /* the trace now owns the file; its attention sets borrow the mapping */
    c->pre = NULL;
    int rc = model_meta(c->m, t, err);
    for (int i = 0; !rc && i < AV_ATTN_KIND_COUNT; i++) {
        cap_kind *k = &c->kinds[i];
        if (k->n_layers && k->attn) rc = add_sets(c, k, (av_attn_kind)i, t, err);
        if (!rc && k->n_layers && k->q) rc = add_lazy(c, k, (av_attn_kind)i, t, err);
    }
    if (!rc && c->vnorm) {
        rc = av_trace_set_vnorm(t, c->vnorm, c->kinds[AV_ATTN_SELF].n_layers, c->kinds[AV_ATTN_SELF].n_heads,
                                err);
        c->vnorm = NULL;
    }
    if (!rc && c->logits) {
        av_trace_set_logits(t, c->logits, c->n_logits, c->m->head.n_out);
        c->logits = NULL;
    }
    if (rc) {
        av_trace_free(t);
        return -1;
    }
    *out = t;
    return 0;
}

/* ---- labels ---- */

static char *token_label(const av_model *m, const int32_t *ids, size_t n, size_t i) {
    if (m->tok && ids[i] >= 0 && ids[i] < av_tokenizer_vocab_size(m->tok))
        return av_tokenizer_display(m->tok, ids, n, i);
    return av_trace_id_label(ids[i]);
}

int av_cap_set_tokens(const av_model *m, av_trace *t, const int32_t *ids, size_t n, av_err *err) {
    char **labels = calloc(n ? n : 1, sizeof *labels);
    int32_t *copy = malloc(sizeof *copy * (n ? n : 1));
    int ok = labels && copy;
    for (size_t i = 0; ok && i < n; i++)
        ok = (labels[i] = token_label(m, ids, n, i)) != NULL;
    if (!ok) {
        av_strings_free(labels, n);
        free(copy);
        return av_errf(err, "out of memory");
    }
    memcpy(copy, ids, sizeof *copy * n);
    return av_trace_set_tokens(t, labels, copy, (int)n, err);
}

int av_cap_json_list(const av_model *m, av_trace *t, const char *key, const int32_t *ids, size_t n,
                     int as_ids, av_err *err) {
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < n; i++) {
        if (as_ids) {
            json_array_append_new(arr, json_integer(ids[i]));
            continue;
        }
        char *label = token_label(m, ids, n, i);
        json_t *s = label ? json_string(label) : NULL;
        json_array_append_new(arr, s ? s : json_string(AV_UTF8_REPLACEMENT));
        free(label);
    }
    return av_trace_set_meta_json(t, key, arr, JSON_ENSURE_ASCII, err);
}
