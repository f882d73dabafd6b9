/* Multi-head (grouped-query) attention of a chunk of queries against cached keys and values, with optional
 * capture of the probabilities. Where the GEMM path has a micro-kernel, attention_stream.c streams over key
 * tiles and fills the capture on the way. Otherwise threads claim heads one at a time; scores of one head are
 * one GEMM, the softmax runs over each row's visible keys and leaves the rest exactly 0, and P·V is one more
 * GEMM (av_gemm_f32, single-threaded inside the head split). av_attention_probs is the probability half on
 * its own (the same bits as the streamed capture): lazy traces recompute rows with it. */
#include "kernels.h"

#include <math.h>
#include <stdatomic.h>
#include <string.h>

int av_attn_visible_keys(const av_attn_args *a, int i) {
    if (!a->causal) return a->n_k;
    int v = a->q_pos + i + 1; /* a sliding window's lower bound is masked in av_attn_mask_scores */
    return v < a->n_k ? v : a->n_k;
}

void av_attn_mask_scores(const av_attn_args *a, int h, int i, float *row, int k0, int k1) {
    if (a->softcap > 0)
        for (int k = k0; k < k1; k++)
            row[k - k0] = a->softcap * tanhf(row[k - k0] / a->softcap);
    if (a->rel_bias) { /* bias of key - query, whatever the chunk: positions are absolute */
        const float *b = a->rel_bias + (size_t)h * (size_t)a->rel_stride + a->rel_zero - (a->q_pos + i);
        for (int k = k0; k < k1; k++)
            row[k - k0] += b[k];
    }
    if (a->key_mask)
        for (int k = k0; k < k1; k++)
            if (!a->key_mask[k]) row[k - k0] = -INFINITY;
    int vis = av_attn_visible_keys(a, i);
    int lo = a->window > 0 && a->causal && vis > a->window ? vis - a->window : 0;
    for (int k = k0; k < lo && k < k1; k++)
        row[k - k0] = -INFINITY;
}

int av_attention_probs(const av_attn_args *a, int h, int r0, int nr, float *probs, int ld) {
    int hs = a->head_dim, g = h / (a->n_heads / a->n_kv_heads);
    int n_keys = av_attn_visible_keys(a, r0 + nr - 1); /* the block's last row sees the most keys */
    const float *q = a->q + (size_t)r0 * (size_t)a->q_stride + (size_t)h * (size_t)hs;
    const float *k = a->k + (size_t)g * (size_t)hs;
    /* probs (nr, n_keys) = scale * Q (nr, hs) K^T (hs, n_keys) */
    av_gemm_f32(0, 1, nr, n_keys, hs, a->scale, q, a->q_stride, k, a->k_stride, 0.0f, probs, ld, 1);
    for (int i = 0; i < nr; i++) {
        float *row = probs + (size_t)i * (size_t)ld;
        int vis = av_attn_visible_keys(a, r0 + i);
        av_attn_mask_scores(a, h, r0 + i, row, 0, vis);
        av_softmax(row, vis); /* a fully masked row (no visible key) becomes all zero */
        memset(row + vis, 0, sizeof(float) * (size_t)(n_keys - vis));
    }
    return n_keys;
}

void av_attn_head_blocks(const av_attn_args *a, int h, av_attn_block_fn fn, void *ctx) {
    enum { QB = AV_ATTN_QUERY_BLOCK };
    const av_probs_sink *sink = a->probs ? a->probs_sink : NULL;
    size_t ld = (size_t)a->probs_ld, fit = sink ? sink->max_floats / (QB * ld) : 0;
    int span =
        sink && fit * QB < (size_t)a->n_q ? (int)(fit > 0 ? fit : 1) * QB : a->n_q; /* rows per buffer */
    for (int s0 = 0; s0 < a->n_q; s0 += span) {
        int ns = a->n_q - s0 < span ? a->n_q - s0 : span;
        float *dst = a->probs ? a->probs + (size_t)h * a->probs_head_stride + (size_t)s0 * ld : NULL;
        float *rows = sink ? sink->take(sink->ctx) : dst;
        for (int r0 = s0; r0 < s0 + ns; r0 += QB)
            fn(ctx, h, r0, s0 + ns - r0 < QB ? s0 + ns - r0 : QB,
               rows ? rows + (size_t)(r0 - s0) * ld : NULL);
        if (sink) sink->put(sink->ctx, rows, dst, (size_t)ns * ld);
    }
}

typedef struct heads_job {
    const av_attn_args *a;
    float *scratch;
    atomic_int next; /* the next head no thread has claimed */
} heads_job;

/* Query rows [r0, r0+nr) of head h; probabilities land in probs (row stride ld) and in the pooled overview
 * when there is one. */
static void attend_block(const heads_job *j, int h, int r0, int nr, float *probs, int ld) {
    const av_attn_args *a = j->a;
    int hs = a->head_dim, g = h / (a->n_heads / a->n_kv_heads);
    int n_keys = av_attention_probs(a, h, r0, nr, probs, ld);
    if (a->pool) av_attn_pool_rows(a->pool, h, a->q_pos + r0, nr, probs, ld, n_keys);
    /* out (nr, hs) = P (nr, n_keys) V (n_keys, hs) */
    float *out = a->out + (size_t)r0 * (size_t)a->out_stride + (size_t)h * (size_t)hs;
    av_gemm_f32(0, 0, nr, hs, n_keys, 1.0f, probs, ld, a->v + (size_t)g * (size_t)hs, a->v_stride, 0.0f, out,
                a->out_stride, 1);
}

/* A block of a capture into rows: a causal block computes only the keys its last row sees, so the upper
 * triangle of a zeroed capture written in place is never written (nor its pages touched). */
static void capture_block(void *ctx, int h, int r0, int nr, float *rows) {
    const heads_job *j = ctx;
    const av_attn_args *a = j->a;
    attend_block(j, h, r0, nr, rows, a->probs_ld);
    int used = av_attn_visible_keys(a, r0 + nr - 1), zeroed = a->probs_zeroed && !a->probs_sink;
    for (int i = 0; i < nr && !zeroed; i++) /* keys past those computed are exactly 0 */
        memset(rows + (size_t)i * (size_t)a->probs_ld + used, 0,
               sizeof(float) * (size_t)(a->probs_ld - used));
}

/* One thread: heads claimed one at a time, so a thread slowed by other work on its core takes fewer. */
static void attend_heads(void *ctx, int tid, int64_t t0, int64_t t1) {
    heads_job *j = ctx;
    const av_attn_args *a = j->a;
    for (int h; (h = atomic_fetch_add(&j->next, 1)) < a->n_heads;) {
        if (a->probs) {
            av_attn_head_blocks(a, h, capture_block, j);
        } else {
            float *buf = j->scratch + (size_t)tid * AV_ATTN_QUERY_BLOCK * (size_t)a->n_k;
            for (int r0 = 0; r0 < a->n_q; r0 += AV_ATTN_QUERY_BLOCK) {
                int nr = a->n_q - r0 < AV_ATTN_QUERY_BLOCK ? a->n_q - r0 : AV_ATTN_QUERY_BLOCK;
                attend_block(j, h, r0, nr, buf, a->n_k);
            }
        }
    }
}

void av_attention(const av_attn_args *a, float *scratch, int n_threads) {
    heads_job j = {.a = a, .scratch = scratch};
    atomic_init(&j.next, 0);
    /* threads from 32768 (query, key, head) triples; a single query (a generation step) from 2048: its
     * panels kept, two threads took 0.57-0.72x as long from 64 keys of 32 heads on (docs/BENCHMARKS.md,
     * session 39) */
    int64_t work = (int64_t)a->n_q * a->n_k * a->n_heads;
    int threaded = a->n_q == 1 ? work >= 2048 : work > 32768;
    int nt = threaded ? (n_threads > 0 ? n_threads : av_default_threads()) : 1;
    nt = nt < a->n_heads ? nt : a->n_heads;
    /* the streamed kernel wherever it runs, so that a capturing run and a lazy or plain one compute bit for
     * bit the same forward pass (the capture takes its scores on the way) */
    if (av_attention_stream(a, threaded ? n_threads : 1) == 0) return;
    av_parallel_for(nt, nt, attend_heads, &j);
}
