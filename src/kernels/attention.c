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

float *av_attn_capture_take(const av_attn_args *a, int h, int r0) {
    if (a->probs_sink) return a->probs_sink->take(a->probs_sink->ctx);
    return a->probs + (size_t)h * a->probs_head_stride + (size_t)r0 * (size_t)a->probs_ld;
}

void av_attn_capture_put(const av_attn_args *a, int h, int r0, int nr, float *rows) {
    if (!a->probs_sink) return;
    const float *dst = a->probs + (size_t)h * a->probs_head_stride + (size_t)r0 * (size_t)a->probs_ld;
    a->probs_sink->put(a->probs_sink->ctx, rows, dst, (size_t)nr * (size_t)a->probs_ld);
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

/* One thread: heads claimed one at a time, so a thread slowed by other work on its core takes fewer. */
static void attend_heads(void *ctx, int tid, int64_t t0, int64_t t1) {
    heads_job *j = ctx;
    const av_attn_args *a = j->a;
    for (int h; (h = atomic_fetch_add(&j->next, 1)) < a->n_heads;) {
        if (a->probs) {
            /* row blocks: a causal block computes only the keys its last row sees, so the capture's upper
             * triangle is never written (and, in a zeroed buffer, its pages never touched) */
            for (int r0 = 0; r0 < a->n_q; r0 += AV_ATTN_QUERY_BLOCK) {
                int nr = a->n_q - r0 < AV_ATTN_QUERY_BLOCK ? a->n_q - r0 : AV_ATTN_QUERY_BLOCK;
                float *pb = av_attn_capture_take(a, h, r0);
                attend_block(j, h, r0, nr, pb, a->probs_ld);
                int used = av_attn_visible_keys(a, r0 + nr - 1), zeroed = a->probs_zeroed && !a->probs_sink;
                for (int i = 0; i < nr && !zeroed; i++) /* keys past those computed are exactly 0 */
                    memset(pb + (size_t)i * (size_t)a->probs_ld + used, 0,
                           sizeof(float) * (size_t)(a->probs_ld - used));
                av_attn_capture_put(a, h, r0, nr, pb);
            }
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
    int64_t work = (int64_t)a->n_q * a->n_k * a->n_heads;
    int nt = work > 32768 ? (n_threads > 0 ? n_threads : av_default_threads()) : 1;
    nt = nt < a->n_heads ? nt : a->n_heads;
    /* the streamed kernel wherever it runs, so that a capturing run and a lazy or plain one compute bit for
     * bit the same forward pass (the capture takes its scores on the way) */
    if (av_attention_stream(a, work > 32768 ? n_threads : 1) == 0) return;
    av_parallel_for(nt, nt, attend_heads, &j);
}
