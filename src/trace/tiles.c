/* Reading parts of a head: single rows and pooled tiles, from stored matrices (F32 or F16) or recomputed
 * exactly from a lazy kind's queries and keys (lazy.c). Everything here is read-only on the trace, so
 * concurrent readers are safe. */
#include "kernels/kernels.h"
#include "trace.h"

#include <stdlib.h>
#include <string.h>

enum { ROWS_BLOCK = 128 }; /* query rows computed together (a lazy kind: one GEMM each) */

static const av_attn_set *find_set(const av_trace *t, av_attn_kind kind, int layer) {
    for (int i = 0; i < t->n_sets; i++)
        if (t->sets[i].layer == layer && t->sets[i].kind == kind) return &t->sets[i];
    return NULL;
}

int av_trace_is_lazy(const av_trace *t) { return t->lazy; }

/* The lazy attention of kind, or NULL when it is stored whole (or absent). */
static const av_lazy_kind *lazy_of(const av_trace *t, av_attn_kind kind) {
    const av_lazy_kind *lz = (unsigned)kind < AV_ATTN_KIND_COUNT ? &t->lazy_kinds[kind] : NULL;
    return lz && lz->n_layers && lz->lazy ? lz : NULL;
}

/* The shape of kind's matrices: heads, queries, keys (zeros when the trace has none). */
static av_attn_view kind_shape(const av_trace *t, av_attn_kind kind) {
    const av_lazy_kind *lz = lazy_of(t, kind);
    const av_attn_set *s = lz ? NULL : find_set(t, kind, 0);
    return lz ? (av_attn_view){lz->n_heads, lz->n_query, lz->n_key, NULL} : s ? s->view : (av_attn_view){0};
}

int av_trace_n_heads(const av_trace *t, av_attn_kind kind) { return kind_shape(t, kind).n_heads; }
int av_trace_n_query(const av_trace *t, av_attn_kind kind) { return kind_shape(t, kind).n_query; }
int av_trace_n_key(const av_trace *t, av_attn_kind kind) { return kind_shape(t, kind).n_key; }

/* Where rows come from: a stored set, or a lazy kind recomputed; and whether rows are renormalized
 * without their first key. */
typedef struct source {
    const av_attn_set *set;
    const av_lazy_kind *lazy;
    int layer, n_heads, exclude_first;
} source;

/* Rows [q0, q0+nq) of one head into out (nq, n_key): exact softmax probabilities, zeros where masked;
 * with exclude_first, keys 1.. of each row rescaled to sum 1. */
static void head_rows(const source *src, int head, int q0, int nq, int n_key, float *out) {
    if (src->lazy) {
        av_lazy_rows(src->lazy, src->layer, head, q0, nq, out);
    } else {
        const av_attn_set *set = src->set;
        size_t base = ((size_t)head * (size_t)set->view.n_query + (size_t)q0) * (size_t)n_key;
        if (set->view.data) {
            memcpy(out, set->view.data + base, sizeof(float) * (size_t)nq * (size_t)n_key);
        } else { /* F16 in the mapped file: convert just these rows */
            av_dequantize(AV_DTYPE_F16, set->f16 + base, out, (int64_t)nq * n_key);
        }
    }
    for (int i = 0; src->exclude_first && i < nq; i++) {
        float *row = out + (size_t)i * (size_t)n_key;
        double sum = 0;
        for (int k = 1; k < n_key; k++)
            sum += row[k];
        float f = sum > 0 ? (float)(1.0 / sum) : 1.0f;
        for (int k = 1; k < n_key; k++)
            row[k] *= f;
    }
}

static int check_args(const av_trace *t, av_attn_kind kind, int layer, int head, source *src, av_err *err) {
    int n_layers = av_trace_n_layers(t, kind);
    if (n_layers == 0) return av_errf(err, "the trace has no '%s' attention", av_attn_kind_name(kind));
    if (layer < 0 || layer >= n_layers)
        return av_errf(err, "layer %d is out of range: the trace has layers 0..%d", layer, n_layers - 1);
    *src = (source){lazy_of(t, kind) ? NULL : find_set(t, kind, layer), lazy_of(t, kind), layer,
                    av_trace_n_heads(t, kind), 0};
    if (!src->lazy && !src->set) return av_errf(err, "layer %d is missing", layer);
    /* callers size buffers by the kind's shape (layer 0's): a layer of another shape is never read (loaders
     * and av_trace_add_attn refuse such traces; this guards against any other builder) */
    av_attn_view shape = kind_shape(t, kind);
    if (src->set && (src->set->view.n_heads != shape.n_heads || src->set->view.n_query != shape.n_query ||
                     src->set->view.n_key != shape.n_key))
        return av_errf(err, "layer %d of '%s' has another shape than layer 0", layer,
                       av_attn_kind_name(kind));
    if (head != AV_HEADS_MEAN && head != AV_HEADS_MAX && head != AV_HEADS_MIN &&
        (head < 0 || head >= src->n_heads))
        return av_errf(err, "head %d is out of range: heads 0..%d, or mean/max/min", head, src->n_heads - 1);
    return 0;
}

/* Rows for a head or reduced over heads; tmp: (nq, n_key) scratch used for reductions. */
static void rows_any(const source *src, int head, int q0, int nq, int n_key, float *out, float *tmp) {
    if (head >= 0) {
        head_rows(src, head, q0, nq, n_key, out);
        return;
    }
    int H = src->n_heads;
    size_t n = (size_t)nq * (size_t)n_key;
    head_rows(src, 0, q0, nq, n_key, out);
    for (int h = 1; h < H; h++) {
        head_rows(src, h, q0, nq, n_key, tmp);
        av_heads_fold(out, tmp, n, head);
    }
    for (size_t i = 0; head == AV_HEADS_MEAN && i < n; i++)
        out[i] /= (float)H;
}

int av_trace_attn_row(const av_trace *t, av_attn_kind kind, int layer, int head, int q, float *out,
                      av_err *err) {
    source src;
    if (check_args(t, kind, layer, head, &src, err)) return -1;
    int nq = av_trace_n_query(t, kind), nk = av_trace_n_key(t, kind);
    if (q < 0 || q >= nq) return av_errf(err, "query %d is out of range: queries 0..%d", q, nq - 1);
    float *tmp = head < 0 ? malloc(sizeof(float) * (size_t)nk) : NULL;
    if (head < 0 && !tmp) return av_errf(err, "out of memory");
    rows_any(&src, head, q, 1, nk, out, tmp);
    free(tmp);
    return 0;
}

typedef struct tile_job {
    const source *src;
    int head, q0, q1, k0, k1, out_rows, out_cols, n_key;
    av_pool pool;
    float *out;
    int failed;
} tile_job;

/* First query of output row r. Every output row covers at least one query (out_rows <= q1 - q0). */
static int row_start(const tile_job *j, int64_t r) {
    return j->q0 + (int)(r * (j->q1 - j->q0) / j->out_rows);
}

/* Output rows [r0, r1): their queries are computed ROWS_BLOCK at a time (one GEMM each, so K is packed
 * once per block, not once per output row) and pooled into the cells of the row each query belongs to. */
static void tile_rows(void *ctx, int tid, int64_t r0, int64_t r1) {
    tile_job *j = ctx;
    int span_k = j->k1 - j->k0, C = j->out_cols;
    size_t n_cells = (size_t)(r1 - r0) * (size_t)C;
    float *rows = malloc(sizeof(float) * ROWS_BLOCK * (size_t)j->n_key);     /* (ROWS_BLOCK, n_key) */
    float *tmp = malloc(sizeof(float) * ROWS_BLOCK * (size_t)j->n_key);      /* (ROWS_BLOCK, n_key) */
    double *acc = calloc(n_cells, sizeof(double));                           /* (r1 - r0, C) */
    int *lo = malloc(sizeof(int) * 2 * (size_t)C), *hi = lo ? lo + C : NULL; /* (C) key range of each cell */
    if (!rows || !tmp || !acc || !lo) {
        j->failed = 1;
        goto done;
    }
    for (int c = 0; c < C; c++) {
        lo[c] = j->k0 + (int)((int64_t)c * span_k / C);
        hi[c] = j->k0 + (int)((int64_t)(c + 1) * span_k / C);
    }
    int q_end = row_start(j, r1);
    int64_t r = r0;
    for (int qs = row_start(j, r0); qs < q_end; qs += ROWS_BLOCK) {
        int nq = q_end - qs < ROWS_BLOCK ? q_end - qs : ROWS_BLOCK;
        rows_any(j->src, j->head, qs, nq, j->n_key, rows, tmp);
        for (int i = 0; i < nq; i++) {
            int q = qs + i;
            while (q >= row_start(j, r + 1))
                r++;
            double *a = acc + (size_t)(r - r0) * (size_t)C;
            const float *row = rows + (size_t)i * (size_t)j->n_key;
            /* a causal lazy row is exactly 0 past its own position: skip those keys */
            int kend = j->src->lazy && j->src->lazy->causal && q + 1 < j->k1 ? q + 1 : j->k1;
            for (int c = 0; c < C && lo[c] < kend; c++) {
                int kb = hi[c] < kend ? hi[c] : kend;
                if (j->pool == AV_POOL_MAX) {
                    float m = (float)a[c];
                    for (int k = lo[c]; k < kb; k++)
                        m = row[k] > m ? row[k] : m;
                    a[c] = m;
                } else {
                    float sum = 0;
                    for (int k = lo[c]; k < kb; k++)
                        sum += row[k];
                    a[c] += sum;
                }
            }
        }
    }
    for (int64_t rr = r0; rr < r1; rr++)
        for (int c = 0; c < C; c++) {
            double v = acc[(size_t)(rr - r0) * (size_t)C + (size_t)c];
            if (j->pool == AV_POOL_MEAN)
                v /= (double)(row_start(j, rr + 1) - row_start(j, rr)) * (double)(hi[c] - lo[c]);
            j->out[(size_t)rr * (size_t)C + (size_t)c] = (float)v;
        }
done:
    free(rows);
    free(tmp);
    free(acc);
    free(lo);
}

/* Output rows [r0, r1) of a tile of exact cells (one query and one key each): the rows themselves, no
 * pooling (the same values a 1 x 1 cell pools to), straight into out when they span every key. Nothing is
 * allocated for one head's rows over every key: callers that read a layer block by block (head statistics)
 * made three allocations of ~1 MB per block otherwise, each trimmed back to the system on free. */
static void exact_rows(void *ctx, int tid, int64_t r0, int64_t r1) {
    tile_job *j = ctx;
    int span = j->k1 - j->k0, whole = span == j->n_key;
    size_t block = (size_t)ROWS_BLOCK * (size_t)j->n_key;
    float *rows = whole ? NULL : malloc(sizeof(float) * block); /* (ROWS_BLOCK, n_key) */
    float *tmp = j->head < 0 ? malloc(sizeof(float) * block) : NULL;
    if ((!whole && !rows) || (j->head < 0 && !tmp)) {
        j->failed = 1;
        goto done;
    }
    for (int64_t r = r0; r < r1; r += ROWS_BLOCK) {
        int nq = r1 - r < ROWS_BLOCK ? (int)(r1 - r) : ROWS_BLOCK;
        float *dst = j->out + (size_t)r * (size_t)span; /* (nq, span) */
        rows_any(j->src, j->head, j->q0 + (int)r, nq, j->n_key, whole ? dst : rows, tmp);
        for (int i = 0; !whole && i < nq; i++)
            memcpy(dst + (size_t)i * (size_t)span, rows + (size_t)i * (size_t)j->n_key + j->k0,
                   sizeof(float) * (size_t)span);
    }
done:
    free(rows);
    free(tmp);
}

/* ---- answers from a lazy kind's pooled overview ---- */

int av_trace_overview_cells(const av_trace *t, av_attn_kind kind, int *rows, int *cols) {
    const av_lazy_kind *lz = lazy_of(t, kind);
    *rows = lz && lz->pool_max ? lz->pool_rows : 0;
    *cols = lz && lz->pool_max ? lz->pool_cols : 0;
    return 0;
}

/* Whether p can be answered from the overview: the whole matrix, cells that are unions of stored ones, and a
 * head / pooling pair the stored planes determine. */
static int from_overview(const av_lazy_kind *lz, const av_tile_params *p) {
    return lz && lz->pool_max && !p->exclude_first && p->q0 == 0 && p->q1 == lz->n_query && p->k0 == 0 &&
           p->k1 == lz->n_key && lz->pool_rows % p->out_rows == 0 && lz->pool_cols % p->out_cols == 0 &&
           (p->head >= 0 || (p->head == AV_HEADS_MEAN && p->pool == AV_POOL_MEAN) ||
            (p->head == AV_HEADS_MAX && p->pool == AV_POOL_MAX));
}

/* The tokens each of n cells over m tokens covers: out[i] = (i+1)*m/n - i*m/n. */
static void cell_sizes(int n, int m, double *out) {
    for (int i = 0; i < n; i++)
        out[i] = (double)((int64_t)(i + 1) * m / n - (int64_t)i * m / n);
}

/* Output cells from the stored cells they cover, of one head or over heads: the max of the maxima, or the
 * mean of the means weighted by the tokens each stored cell covers (every head's cells alike). */
static int overview_tile(const av_lazy_kind *lz, const av_tile_params *p, float *out) {
    int R = lz->pool_rows, C = lz->pool_cols, fr = R / p->out_rows, fc = C / p->out_cols;
    int h0 = p->head >= 0 ? p->head : 0, h1 = p->head >= 0 ? p->head + 1 : lz->n_heads,
        mx = p->pool == AV_POOL_MAX;
    const float *planes = (mx ? lz->pool_max : lz->pool_mean)[p->layer];
    double *acc = calloc((size_t)p->out_rows * (size_t)p->out_cols + (size_t)R + (size_t)C, sizeof(double));
    if (!acc) return -1;
    double *rh = acc + (size_t)p->out_rows * (size_t)p->out_cols, *cw = rh + R; /* (R), (C) token counts */
    cell_sizes(R, lz->n_query, rh);
    cell_sizes(C, lz->n_key, cw);
    for (int h = h0; h < h1; h++)
        for (int i = 0; i < R; i++) {
            const float *row = planes + ((size_t)h * (size_t)R + (size_t)i) * (size_t)C;
            double *a = acc + (size_t)(i / fr) * (size_t)p->out_cols;
            for (int j = 0; j < C; j++)
                a[j / fc] =
                    mx ? (row[j] > a[j / fc] ? row[j] : a[j / fc]) : a[j / fc] + row[j] * rh[i] * cw[j];
        }
    for (int r = 0; r < p->out_rows; r++)
        for (int c = 0; c < p->out_cols; c++) {
            double area = 0, *a = acc + (size_t)r * (size_t)p->out_cols + (size_t)c;
            for (int i = r * fr; !mx && i < (r + 1) * fr; i++)
                for (int j = c * fc; j < (c + 1) * fc; j++)
                    area += rh[i] * cw[j];
            out[(size_t)r * (size_t)p->out_cols + (size_t)c] = (float)(mx ? *a : *a / (area * (h1 - h0)));
        }
    free(acc);
    return 0;
}

/* av_trace_attn_tile_ex on n_threads threads (0: one for small tiles, else every thread). */
static int tile_on(const av_trace *t, const av_tile_params *p, int n_threads, float *out, av_err *err) {
    source src;
    if (check_args(t, p->kind, p->layer, p->head, &src, err)) return -1;
    src.exclude_first = p->exclude_first;
    int nq = av_trace_n_query(t, p->kind), nk = av_trace_n_key(t, p->kind);
    if (p->q0 < 0 || p->q1 > nq || p->q0 >= p->q1 || p->k0 < 0 || p->k1 > nk || p->k0 >= p->k1)
        return av_errf(err, "tile [%d, %d) x [%d, %d) is outside the %d x %d attention", p->q0, p->q1, p->k0,
                       p->k1, nq, nk);
    if (p->out_rows <= 0 || p->out_cols <= 0 || p->out_rows > p->q1 - p->q0 || p->out_cols > p->k1 - p->k0)
        return av_errf(err, "tile of %d x %d cells must be at least 1 x 1 and at most the block's %d x %d",
                       p->out_rows, p->out_cols, p->q1 - p->q0, p->k1 - p->k0);
    if (p->pool != AV_POOL_MAX && p->pool != AV_POOL_MEAN) return av_errf(err, "unknown pooling");
    if (from_overview(src.lazy, p))
        return overview_tile(src.lazy, p, out) ? av_errf(err, "out of memory reading the overview") : 0;
    tile_job j = {&src, p->head, p->q0, p->q1, p->k0, p->k1, p->out_rows, p->out_cols, nk, p->pool, out, 0};
    int64_t work = (int64_t)(p->q1 - p->q0) * nk * (p->head < 0 ? src.n_heads : 1);
    int exact = p->out_rows == p->q1 - p->q0 && p->out_cols == p->k1 - p->k0;
    if (!n_threads) n_threads = work > (1 << 16) ? 0 : 1; /* 0: every thread */
    av_parallel_for(n_threads, p->out_rows, exact ? exact_rows : tile_rows, &j);
    return j.failed ? av_errf(err, "out of memory computing a tile") : 0;
}

int av_trace_attn_tile_ex(const av_trace *t, const av_tile_params *p, float *out, av_err *err) {
    return tile_on(t, p, 0, out, err);
}

int av_trace_rows(const av_trace *t, av_attn_kind kind, int layer, int head, int q0, int n, int exclude_first,
                  int n_threads, float *out, av_err *err) {
    int nk = av_trace_n_key(t, kind);
    av_tile_params p = {kind, layer, head, q0, q0 + n, 0, nk, n, nk, AV_POOL_MAX, exclude_first};
    return tile_on(t, &p, n_threads, out, err);
}

int av_trace_attn_tile(const av_trace *t, av_attn_kind kind, int layer, int head, int q0, int q1, int k0,
                       int k1, int out_rows, int out_cols, av_pool pool, float *out, av_err *err) {
    av_tile_params p = {kind, layer, head, q0, q1, k0, k1, out_rows, out_cols, pool, 0};
    return av_trace_attn_tile_ex(t, &p, out, err);
}
