/* Attention streamed over tiles of keys as flash attention does: a block of query rows meets KEY_TILE keys at
 * a time, the tile's scores stay in L2, each row keeps a running maximum and sum, and its output is rescaled
 * when the maximum grows. Nothing of size (rows, n_k) exists, causal tiles past a block's last visible key
 * are skipped, and the scores are av_attention_probs's bit for bit (the same micro-kernel chain). The keys
 * and values are packed once per call into the micro-kernel's panels, shared by the heads of a kv group and
 * by every query block. A capture of the probabilities takes each tile's masked scores into its rows, and
 * each row becomes a softmax when its block is done: av_attention_probs's bits without a second Q K^T. The
 * block's last tile, where each row's maximum is final, computes its exps in the captured rows themselves,
 * so only the keys of earlier tiles are exponentiated a second time.
 *
 * A block's rows are query rows of one head, or, for a single query (token-by-token generation), heads of
 * one kv group: then the micro-kernel multiplies up to a group's worth of rows by each key and value panel
 * instead of one row at a time. Every output is the same chain of operations either way, so the bits do not
 * depend on the blocking.
 *
 * A single query (a step of token-by-token generation) keeps the panels between calls when the caller lends
 * an av_attn_panels: each step then packs only the keys the panels do not hold yet.
 *
 * A pooled overview (lazy traces) is kept per row and cell while the tiles pass, from the row's exps of each
 * tile (no cell has exps of its own): the largest exp(score - ref) of the cell and their sum, with its
 * reference ref (the row's running maximum when the cell last took keys); when the row ends (its final
 * maximum m and sum known) they become probabilities through exp(ref - m) / sum (av_attn_pool_row). */
#include "gemm.h"

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

enum {
    KEY_TILE = 256,          /* keys per tile (a multiple of every kernel's NR): 128 x 256 scores, 128 KiB */
    S_LD = KEY_TILE + 16,    /* row stride of the tile: rows 1 KiB apart would share L1 sets */
    QB = AV_ATTN_QUERY_BLOCK /* query rows per block */
};
_Static_assert(KEY_TILE % 16 == 0, "a tile's exps must be av_exp_shift_sum_from's (16-value chunks)");

typedef struct stream_job {
    const av_attn_args *a;
    const av_ukernel *uk;
    int kp_panels, vp_panels; /* per kv head: panels of NR keys (Q K^T), of NR value columns (P V) */
    int vp_keys;              /* keys a value panel has room for: n_k, or the kept panels' cap */
    int from;                 /* the first key to pack: the kept panels hold the others */
    int group_heads;          /* heads per block of one query (group_heads()), or 0: query rows of a head */
    int *cell_lo;             /* (pool cols + 1) with a pool: its cell bounds (av_attn_pool_bounds) */
    float *kp;                /* (n_kv_heads, kp_panels, head_dim, NR): keys, B panels of Q K^T */
    float *vp;                /* (n_kv_heads, vp_panels, vp_keys, NR): values, B panels of P V */
    float *ws;                /* (threads, ws_floats): the workspaces below */
    size_t ws_floats;
    atomic_int next; /* the next head no thread has claimed */
} stream_job;

/* One thread's workspace for a block of QB query rows. */
typedef struct stream_ws {
    float *s;     /* (QB, S_LD) a tile's scores, then exp(score - row max), 0 where not visible */
    float *qp;    /* (QB / MR + 1, head_dim, MR) the block's queries as A panels (rows of q 4 KiB multiples
                     apart, read in place, would share L1 sets) */
    float *o;     /* (QB, head_dim) unnormalized outputs */
    float *m, *l; /* (QB) running max and sum of each row */
    int *e0;      /* (QB) capture: the key from which the row's captured values are already exp(score - m),
                     computed in its last tile (with the final maximum), or -1 */
    float *cmax, *csum, *cref; /* (QB, pool cols) each row's av_attn_pool_row */
} stream_ws;

static stream_ws workspace(const stream_job *j, int tid) {
    const av_attn_args *a = j->a;
    float *w = j->ws + (size_t)tid * j->ws_floats;
    size_t cells = a->pool ? (size_t)QB * (size_t)a->pool->cols : 0;
    stream_ws s = {.s = w, .qp = w + QB * S_LD};
    s.o = s.qp + (size_t)(QB + j->uk->mr) * (size_t)a->head_dim;
    s.m = s.o + (size_t)QB * (size_t)a->head_dim;
    s.l = s.m + QB;
    s.e0 = (int *)(s.l + QB); /* as many ints as floats */
    s.cmax = s.l + 2 * QB;
    s.csum = s.cmax + cells;
    s.cref = s.csum + cells;
    return s;
}

static size_t workspace_floats(const av_attn_args *a, int mr) {
    size_t cells = a->pool ? (size_t)QB * (size_t)a->pool->cols : 0;
    return (size_t)QB * S_LD + (size_t)(2 * QB + mr) * (size_t)a->head_dim + 3 * QB + 3 * cells;
}

/* The rows of a block: row i is query r0 + i / heads of head h + i % heads, so either query rows of one head
 * (heads 1) or, for one query, consecutive heads of one kv group (heads > 1). In the capture, consecutive
 * rows are cap_ld floats apart: a row (probs_ld) or a head (probs_head_stride). */
typedef struct block_rows {
    int h, r0, heads;
    size_t cap_ld;
} block_rows;

static int row_head(const block_rows *b, int i) { return b->h + i % b->heads; }
static int row_query(const block_rows *b, int i) { return b->r0 + i / b->heads; }

/* Keys [from, n_k) and their values of kv heads [g0, g1) into their panels (the key panel holding `from`
 * whole again: it was packed with fewer keys). */
static void pack_kv(void *ctx, int tid, int64_t g0, int64_t g1) {
    const stream_job *j = ctx;
    const av_attn_args *a = j->a;
    int nr = j->uk->nr, hs = a->head_dim, from = j->from;
    for (int64_t g = g0; g < g1; g++) {
        float *kp = j->kp + (size_t)g * (size_t)j->kp_panels * (size_t)hs * (size_t)nr;
        float *vp = j->vp + (size_t)g * (size_t)j->vp_panels * (size_t)j->vp_keys * (size_t)nr;
        for (int p = from / nr; p * nr < a->n_k; p++) {
            int rows = a->n_k - p * nr < nr ? a->n_k - p * nr : nr;
            j->uk->pack_rows(a->k + (size_t)p * (size_t)nr * (size_t)a->k_stride + (size_t)g * (size_t)hs,
                             a->k_stride, rows, hs, nr, kp + (size_t)p * (size_t)hs * (size_t)nr);
        }
        for (int p = 0; p < j->vp_panels; p++)
            av_pack_cols(a->v + (size_t)from * (size_t)a->v_stride + (size_t)g * (size_t)hs + (size_t)p * nr,
                         a->v_stride, hs - p * nr < nr ? hs - p * nr : nr, a->n_k - from, nr,
                         vp + ((size_t)p * (size_t)j->vp_keys + (size_t)from) * (size_t)nr);
    }
}

/* Block row i's pooled cells. */
static av_attn_pool_row pool_row(const stream_job *j, const stream_ws *w, int i) {
    size_t at = (size_t)i * (size_t)j->a->pool->cols;
    return (av_attn_pool_row){w->cmax + at, w->csum + at, w->cref + at};
}

/* A captured row of query r (its masked scores, written tile by tile) into probabilities: the softmax over
 * its visible keys, as av_attention_probs computes it from the same scores, and 0 past them (up to the keys
 * of its block, n_keys, when the capture starts zeroed and is written in place; else to the row's end). mx:
 * the row's running maximum from the tiles, its largest score (a maximum is exact in any order), so
 * av_softmax's first pass is not repeated; a row where the tiles found none (-inf: nothing visible, or only
 * NaN) goes through av_softmax itself. e0 >= 0: keys [e0, vis) already hold their exponentials (the last
 * tile's, with mx). */
static void capture_softmax(const av_attn_args *a, float *row, int r, int n_keys, float mx, int e0) {
    int vis = av_attn_visible_keys(a, r), end = a->probs_zeroed && !a->probs_sink ? n_keys : a->probs_ld;
    vis = vis > 0 ? vis : 0;
    if (mx == -INFINITY || vis == 0)
        av_softmax(row, vis);
    else /* av_softmax's last two passes */
        av_scale(row, vis,
                 1.0f / (e0 >= 0 ? av_exp_shift_sum_from(row, e0, vis, mx) : av_exp_shift_sum(row, vis, mx)));
    if (end > vis) memset(row + vis, 0, sizeof(float) * (size_t)(end - vis));
}

/* Row i (block row; query row r) of a tile of n_t keys from k0 whose scores are in s: masks, the running
 * maximum (rescaling what the row has so far when it grows), exp, sums and pooled cells; keys it cannot see
 * become 0. A capture has the scores in its row crow instead: they stay there for block()'s softmax and are
 * copied to s, but in the block's last tile (last), whose maximum is the row's, the exps are computed there
 * and copied. */
static void tile_row(const stream_job *j, const stream_ws *w, int h, int i, int r, float *crow, int k0,
                     int n_t, int last) {
    const av_attn_args *a = j->a;
    float *s = w->s + (size_t)i * S_LD, *x = s; /* x: where the tile's scores become exps */
    int vis = av_attn_visible_keys(a, r) - k0, n = vis < n_t ? vis : n_t;
    if (n > 0 && crow) {
        x = crow + k0;
        av_attn_mask_scores(a, h, r, x, k0, k0 + n);
        if (!last) {
            memcpy(s, x, sizeof(float) * (size_t)n);
            x = s;
        }
    } else if (n > 0) {
        av_attn_mask_scores(a, h, r, s, k0, k0 + n);
    }
    if (n > 0) {
        float mt = av_max_value(x, n);
        if (mt > w->m[i]) {
            if (w->m[i] != -INFINITY) {
                float f = expf(w->m[i] - mt);
                w->l[i] *= f;
                av_scale(w->o + (size_t)i * (size_t)a->head_dim, a->head_dim, f);
            }
            w->m[i] = mt;
        }
        if (w->m[i] != -INFINITY) {
            w->l[i] += av_exp_shift_sum(x, n, w->m[i]);
            if (a->pool) {
                av_attn_pool_row cells = pool_row(j, w, i);
                av_attn_pool_add_tile(a->pool, j->cell_lo, &cells, x, k0, n, w->m[i]);
            }
            if (x != s) memcpy(s, x, sizeof(float) * (size_t)n), w->e0[i] = k0;
        } else {
            n = 0; /* nothing visible so far: no weight */
        }
    }
    n = n > 0 ? n : 0;
    memset(s + n, 0, sizeof(float) * (size_t)(n_t - n));
}

/* The nr rows of block b against the keys of tile [k0, k0 + n_t): scores, softmax state, o += P V. cap: the
 * block's captured rows (b->cap_ld apart), or NULL. */
static void tile(const stream_job *j, const stream_ws *w, const block_rows *b, int nr, float *cap, int k0,
                 int n_t) {
    const av_attn_args *a = j->a;
    const av_ukernel *uk = j->uk;
    int hs = a->head_dim, g = b->h / (a->n_heads / a->n_kv_heads), NR = uk->nr;
    const float *kp =
        j->kp + ((size_t)g * (size_t)j->kp_panels + (size_t)(k0 / NR)) * (size_t)hs * (size_t)NR;
    /* s (nr, n_t) = scale * Q (nr, hs) K^T (hs, n_t): each key panel stays in L1 while the row tiles pass. A
     * capture takes the scores straight into its rows (tile_row copies them to s): stores to lines not yet
     * cached, spread over the kernel's arithmetic, where a copy of each row would wait for them */
    float *c = cap ? cap + k0 : w->s;
    int64_t ldc = cap ? (int64_t)b->cap_ld : S_LD;
    for (int jp = 0; jp * NR < n_t; jp++)
        for (int t = 0, i0 = 0, mr; i0 < nr; t++, i0 += mr) { /* row tiles: av_tile_first */
            mr = av_tile_first(nr, uk->mr, t + 1) - i0;
            if (av_attn_visible_keys(a, row_query(b, i0 + mr - 1)) <= k0 + jp * NR) continue; /* tile_row */
            uk->fn(hs, w->qp + (size_t)t * (size_t)uk->mr * (size_t)hs, 0,
                   kp + (size_t)jp * (size_t)hs * (size_t)NR, c + i0 * ldc + jp * NR, ldc, mr,
                   n_t - jp * NR < NR ? n_t - jp * NR : NR, a->scale, 0.0f);
        }
    int last = k0 + n_t == av_attn_visible_keys(a, row_query(b, nr - 1));
    for (int i = 0; i < nr; i++)
        tile_row(j, w, row_head(b, i), i, row_query(b, i), cap ? cap + (size_t)i * b->cap_ld : NULL, k0, n_t,
                 last);
    /* o (nr, hs) += P (nr, n_t) V (n_t, hs) */
    for (int pj = 0; pj < j->vp_panels; pj++) {
        const float *vp =
            j->vp +
            (((size_t)g * (size_t)j->vp_panels + (size_t)pj) * (size_t)j->vp_keys + (size_t)k0) * (size_t)NR;
        for (int t = 0, i0 = 0, mr; i0 < nr; t++, i0 += mr) {
            mr = av_tile_first(nr, uk->mr, t + 1) - i0;
            if (av_attn_visible_keys(a, row_query(b, i0 + mr - 1)) <= k0) continue; /* all 0 */
            uk->fn_rows(n_t, w->s + (size_t)i0 * S_LD, S_LD, vp, w->o + (size_t)i0 * (size_t)hs + pj * NR, hs,
                        mr, hs - pj * NR < NR ? hs - pj * NR : NR, 1.0f, 1.0f);
        }
    }
}

/* The nr rows of block b: every tile of keys they see, then outputs, captured rows and pooled cells; cap:
 * the block's captured rows (b->cap_ld apart), or NULL. */
static void rows_block(const stream_job *j, const stream_ws *w, const block_rows *b, int nr, float *cap) {
    const av_attn_args *a = j->a;
    int hs = a->head_dim, n_keys = av_attn_visible_keys(a, row_query(b, nr - 1));
    const av_attn_pool *p = a->pool;
    int n_cells = p ? av_attn_pool_cells(p, n_keys) : 0;
    memset(w->o, 0, sizeof(float) * (size_t)nr * (size_t)hs);
    int mr = j->uk->mr;
    int64_t q_ld = b->heads > 1 ? hs : a->q_stride; /* a tile's rows: heads of one query, or queries */
    for (int t = 0, i0 = 0, rows; i0 < nr; t++, i0 += rows) { /* the row tiles of tile() */
        rows = av_tile_first(nr, mr, t + 1) - i0;
        j->uk->pack_rows(a->q + (size_t)row_query(b, i0) * (size_t)a->q_stride +
                             (size_t)row_head(b, i0) * (size_t)hs,
                         q_ld, rows, hs, mr, w->qp + (size_t)t * (size_t)mr * (size_t)hs);
    }
    for (int i = 0; i < nr; i++) {
        w->m[i] = -INFINITY;
        w->l[i] = 0;
        w->e0[i] = -1;
        for (int c = 0; c < n_cells; c++) {
            size_t at = (size_t)i * (size_t)p->cols + (size_t)c;
            w->cmax[at] = w->csum[at] = 0;
            w->cref[at] = -INFINITY;
        }
    }
    for (int k0 = 0; k0 < n_keys; k0 += KEY_TILE)
        tile(j, w, b, nr, cap, k0, n_keys - k0 < KEY_TILE ? n_keys - k0 : KEY_TILE);
    for (int i = 0; i < nr; i++) {
        int h = row_head(b, i), r = row_query(b, i);
        float inv = w->l[i] == 0.0f ? 0.0f : 1.0f / w->l[i]; /* a row that sees nothing: all 0; NaN stays */
        float *out = a->out + (size_t)r * (size_t)a->out_stride + (size_t)h * (size_t)hs;
        for (int d = 0; d < hs; d++)
            out[d] = w->o[(size_t)i * (size_t)hs + (size_t)d] * inv;
        if (cap) capture_softmax(a, cap + (size_t)i * b->cap_ld, r, n_keys, w->m[i], w->e0[i]);
        if (p && inv > 0) {
            av_attn_pool_row cells = pool_row(j, w, i);
            av_attn_pool_add_row(p, h, a->q_pos + r, &cells, n_cells, w->m[i], inv);
        }
    }
}

/* One thread's blocks: the job and the thread's workspace. */
typedef struct stream_thread {
    const stream_job *j;
    const stream_ws *w;
} stream_thread;

/* av_attn_head_blocks's callback: query rows [r0, r0 + nr) of head h. */
static void block(void *ctx, int h, int r0, int nr, float *cap) {
    const stream_thread *t = ctx;
    block_rows b = {h, r0, 1, (size_t)t->j->a->probs_ld};
    rows_block(t->j, t->w, &b, nr, cap);
}

/* One thread: heads (or blocks of group_heads heads) claimed one at a time, so a thread slowed by other work
 * on its core (or by the capture's page faults) takes fewer. */
static void stream_heads(void *ctx, int tid, int64_t t0, int64_t t1) {
    stream_job *j = ctx;
    const av_attn_args *a = j->a;
    stream_ws w = workspace(j, tid);
    stream_thread t = {j, &w};
    int n = j->group_heads, units = n ? a->n_heads / n : a->n_heads;
    for (int u; (u = atomic_fetch_add(&j->next, 1)) < units;) {
        if (!n) {
            av_attn_head_blocks(a, u, block, &t);
            continue;
        }
        block_rows b = {u * n, 0, n, a->probs_head_stride};
        rows_block(j, &w, &b, n, a->probs ? a->probs + (size_t)b.h * a->probs_head_stride : NULL);
    }
}

/* Heads per block for a single query: a kv group's, or an even share of it when there are fewer groups than
 * threads; 0 (blocks of one head's query rows) otherwise, and through a sink, which takes a head's rows. */
static int group_heads(const av_attn_args *a, int n_threads) {
    int per_group = a->n_heads / a->n_kv_heads, split = 1;
    if (a->n_q != 1 || per_group < 2 || per_group > QB || a->probs_sink) return 0;
    while (a->n_kv_heads * split < n_threads && per_group % (2 * split) == 0)
        split *= 2;
    return per_group / split;
}

/* Floats of the panels of n_k keys (vp_keys per value panel) packed for a kernel nr wide. */
static size_t panel_floats(const av_attn_args *a, int nr, int n_k, int vp_keys) {
    size_t hs = (size_t)a->head_dim, kp_panels = ((size_t)n_k + (size_t)nr - 1) / (size_t)nr;
    return (size_t)a->n_kv_heads * (kp_panels * hs + (hs + (size_t)nr - 1) / (size_t)nr * (size_t)vp_keys) *
           (size_t)nr;
}

/* The job's panels in the caller's kept ones (a->panels), with `from` the first key they lack: packed for
 * another kernel (their width, and room for a multiple of it, may differ), they are dropped; grown to hold
 * n_k keys (twice what they held, at least), packed anew. -1 when out of memory (nothing kept). */
static int use_kept_panels(const av_attn_args *a, stream_job *j) {
    av_attn_panels *p = a->panels;
    int nr = j->uk->nr;
    if (p->kernel != j->uk) {
        free(p->panels);
        *p = (av_attn_panels){NULL, j->uk, 0, 0};
    }
    if (a->n_k > p->cap) {
        int cap = p->cap > a->n_k / 2 ? 2 * p->cap : a->n_k;
        cap = (cap + nr - 1) / nr * nr;
        float *panels = malloc(sizeof(float) * panel_floats(a, nr, cap, cap));
        if (!panels) return -1;
        free(p->panels);
        *p = (av_attn_panels){panels, j->uk, cap, 0};
    }
    j->from = p->n < a->n_k ? p->n : a->n_k;
    j->kp_panels = p->cap / nr;
    j->vp_keys = p->cap;
    j->kp = p->panels;
    j->vp = p->panels + (size_t)a->n_kv_heads * (size_t)j->kp_panels * (size_t)a->head_dim * (size_t)nr;
    p->n = a->n_k;
    return 0;
}

int av_attention_stream(const av_attn_args *a, int n_threads) {
    const av_ukernel *uk = av_gemm_ukernel(av_gemm_path_get());
    if (!uk || KEY_TILE % uk->nr || (a->pool && a->pool->cols > AV_ATTN_POOL_MAX_COLS)) return -1;
    int nr = uk->nr, hs = a->head_dim;
    stream_job j = {.a = a,
                    .uk = uk,
                    .kp_panels = (a->n_k + nr - 1) / nr,
                    .vp_panels = (hs + nr - 1) / nr,
                    .vp_keys = a->n_k,
                    .group_heads = group_heads(a, n_threads)};
    int kept = a->panels && a->n_q == 1 && use_kept_panels(a, &j) == 0;
    size_t panels = kept ? 0 : panel_floats(a, nr, a->n_k, a->n_k);
    j.ws_floats = (workspace_floats(a, uk->mr) + 15) / 16 * 16; /* 64-byte aligned workspaces */
    size_t bounds = a->pool ? (size_t)a->pool->cols + 1 : 0;    /* ints, as many as floats */
    size_t total = panels + (size_t)n_threads * j.ws_floats + bounds;
    float *buf = aligned_alloc(64, ((total * sizeof(float)) + 63) / 64 * 64);
    if (!buf) {
        if (kept) a->panels->n = j.from; /* what they hold */
        return -1;
    }
    if (!kept) {
        j.kp = buf;
        j.vp = buf + (size_t)a->n_kv_heads * (size_t)j.kp_panels * (size_t)hs * (size_t)nr;
    }
    j.ws = buf + panels;
    if (a->pool) {
        j.cell_lo = (int *)(j.ws + (size_t)n_threads * j.ws_floats);
        av_attn_pool_bounds(a->pool, j.cell_lo);
    }
    if (j.from < a->n_k)
        av_parallel_for(n_threads < a->n_kv_heads ? n_threads : a->n_kv_heads, a->n_kv_heads, pack_kv, &j);
    atomic_init(&j.next, 0);
    int units = j.group_heads ? a->n_heads / j.group_heads : a->n_heads;
    int nt = n_threads < units ? n_threads : units;
    av_parallel_for(nt, nt, stream_heads, &j);
    free(buf);
    return 0;
}
