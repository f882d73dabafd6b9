/* The Llama-family forward pass over a chunk of tokens with a KV cache: RMSNorm, RoPE (interleaved or
 * rotate-half), grouped-query attention, SwiGLU, tied or separate classifier. Prompt chunks use batched GEMM;
 * attention probabilities can be captured for every layer and head into (n_heads, T, T) buffers. */
#include "block.h"
#include "kernels/kernels.h"
#include "model.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

struct av_state {
    int max_tokens;  /* cache capacity in positions */
    int n_alloc;     /* rows the chunk buffers hold */
    float *k_cache;  /* (n_layers, max_tokens, kv_dim) */
    float *v_cache;  /* (n_layers, max_tokens, kv_dim) */
    float *x;        /* (n_alloc, dim) residual stream */
    float *xb;       /* (n_alloc, max(dim, q_dim)) */
    float *q;        /* (n_alloc, q_dim) */
    float *att_out;  /* (n_alloc, q_dim) */
    float *hb, *hb2; /* (n_alloc, hidden_dim) */
    float *scores;   /* (n_threads, AV_ATTN_QUERY_BLOCK, max_tokens) when not capturing */
    float *wscratch; /* (largest weight matrix) for dequantized non-F32 weights; NULL if all F32 */
    int n_threads;
};

static size_t largest_nonf32_matrix(const av_model *m) {
    size_t best = 0;
    for (int l = 0; l < m->n_layers; l++) {
        const av_llama_layer *L = &m->layers[l];
        const av_tensor *ts[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_down, &L->w_up};
        for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++)
            if (ts[i]->dtype != AV_DTYPE_F32 && (size_t)(ts[i]->shape[0] * ts[i]->shape[1]) > best)
                best = (size_t)(ts[i]->shape[0] * ts[i]->shape[1]);
    }
    if (m->cls.dtype != AV_DTYPE_F32 && (size_t)(m->cls.shape[0] * m->cls.shape[1]) > best)
        best = (size_t)(m->cls.shape[0] * m->cls.shape[1]);
    return best;
}

/* Frees the per-chunk buffers (sized by n_alloc rows). */
static void free_rows(av_state *s) {
    float **rows[] = {&s->x, &s->xb, &s->q, &s->att_out, &s->hb, &s->hb2};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        free(*rows[i]);
        *rows[i] = NULL;
    }
    s->n_alloc = 0;
}

void av_state_free(av_state *s) {
    if (!s) return;
    free_rows(s);
    free(s->k_cache);
    free(s->v_cache);
    free(s->scores);
    free(s->wscratch);
    free(s);
}

static int alloc_floats(float **p, size_t a, size_t b, size_t c, av_err *err) {
    size_t n;
    if (!av_mul_size(a, b, &n) || !av_mul_size(n, c, &n) || !av_mul_size(n, sizeof(float), &n))
        return av_errf(err, "buffer size overflows");
    *p = malloc(n ? n : 4);
    if (!*p) return av_errf(err, "out of memory allocating %zu MiB", n >> 20);
    return 0;
}

static int state_reserve_rows(const av_model *m, av_state *s, int n, av_err *err) {
    if (n <= s->n_alloc) return 0;
    size_t q_dim = (size_t)m->n_heads * (size_t)m->head_dim;
    size_t wide = q_dim > (size_t)m->dim ? q_dim : (size_t)m->dim;
    free_rows(s);
    if (alloc_floats(&s->x, (size_t)n, (size_t)m->dim, 1, err) ||
        alloc_floats(&s->xb, (size_t)n, wide, 1, err) || alloc_floats(&s->q, (size_t)n, q_dim, 1, err) ||
        alloc_floats(&s->att_out, (size_t)n, q_dim, 1, err) ||
        alloc_floats(&s->hb, (size_t)n, (size_t)m->hidden_dim, 1, err) ||
        alloc_floats(&s->hb2, (size_t)n, (size_t)m->hidden_dim, 1, err))
        return -1;
    s->n_alloc = n;
    return 0;
}

int av_state_new(const av_model *m, int max_tokens, av_state **out, av_err *err) {
    *out = NULL;
    if (m->family != AV_FAMILY_LLAMA) /* the other families run through family.h, without a KV cache */
        return av_errf(err, "%s models do not run through the Llama forward pass", m->arch);
    if (max_tokens <= 0) return av_errf(err, "empty input: nothing to run");
    if (max_tokens > m->max_seq_len)
        return av_errf(err, "input is %d tokens but the model's context window is %d", max_tokens,
                       m->max_seq_len);
    av_state *s = calloc(1, sizeof *s);
    if (!s) return av_errf(err, "out of memory");
    s->max_tokens = max_tokens;
    s->n_threads = m->n_threads > 0 ? m->n_threads : av_default_threads();
    size_t kv_dim = (size_t)m->n_kv_heads * (size_t)m->head_dim;
    size_t wmax = largest_nonf32_matrix(m);
    if (alloc_floats(&s->k_cache, (size_t)m->n_layers, (size_t)max_tokens, kv_dim, err) ||
        alloc_floats(&s->v_cache, (size_t)m->n_layers, (size_t)max_tokens, kv_dim, err) ||
        alloc_floats(&s->scores, (size_t)s->n_threads, AV_ATTN_QUERY_BLOCK, (size_t)max_tokens, err) ||
        (wmax && alloc_floats(&s->wscratch, wmax, 1, 1, err))) {
        av_state_free(s);
        return -1;
    }
    *out = s;
    return 0;
}

/* ---- norm-based attention: vnorm[h][j] = || v_j^h W_o[:, h] ||  for the chunk's positions ---- */

static int capture_vnorm(const av_model *m, av_state *s, const av_llama_layer *L, int layer, int n, int pos0,
                         float *vnorm /* (n_heads, T) */, int T, av_err *err) {
    int kv_dim = m->n_kv_heads * m->head_dim;
    const float *v = s->v_cache + ((size_t)layer * (size_t)s->max_tokens + (size_t)pos0) * (size_t)kv_dim;
    return av_attn_vnorm(v, kv_dim, &L->wo, m->n_heads, m->n_kv_heads, m->head_dim, n, vnorm, T, pos0, err);
}

/* ---- lazy traces: copy the chunk's post-RoPE rows (n, n_h*hs) into head-major (n_h, T, hs) ---- */

static void store_heads(float *dst, const float *src, int n, int n_h, int hs, int pos0, int T) {
    for (int i = 0; i < n; i++)
        for (int h = 0; h < n_h; h++)
            memcpy(dst + ((size_t)h * (size_t)T + (size_t)(pos0 + i)) * (size_t)hs,
                   src + (size_t)i * (size_t)n_h * (size_t)hs + (size_t)h * (size_t)hs,
                   sizeof(float) * (size_t)hs);
}

/* ---- the forward pass ---- */

int av_llama_forward(const av_model *m, av_state *s, const int32_t *tokens, int n, int pos0,
                     const av_capture *cap, float *logits, int logits_all, av_err *err) {
    if (n <= 0) return av_errf(err, "empty input: nothing to run");
    if (pos0 < 0 || pos0 + n > s->max_tokens)
        return av_errf(err, "positions %d..%d exceed the state's %d positions", pos0, pos0 + n - 1,
                       s->max_tokens);
    if (cap && cap->T < pos0 + n)
        return av_errf(err, "capture buffers hold %d positions, need %d", cap->T, pos0 + n);
    for (int i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= m->vocab_size)
            return av_errf(err, "token id %d at position %d is outside the vocabulary (%d)", tokens[i],
                           pos0 + i, m->vocab_size);
    if (state_reserve_rows(m, s, n, err)) return -1;
    int dim = m->dim, hs = m->head_dim, kv_dim = m->n_kv_heads * hs, q_dim = m->n_heads * hs;
    int nt = s->n_threads;
    for (int i = 0; i < n; i++)
        av_dequantize_rows(&m->tok_emb, tokens[i], 1, s->x + (size_t)i * (size_t)dim);

    for (int l = 0; l < m->n_layers; l++) {
        const av_llama_layer *L = &m->layers[l];
        float *kc = s->k_cache + ((size_t)l * (size_t)s->max_tokens + (size_t)pos0) * (size_t)kv_dim;
        float *vc = s->v_cache + ((size_t)l * (size_t)s->max_tokens + (size_t)pos0) * (size_t)kv_dim;
        av_rmsnorm(s->xb, s->x, &L->attn_norm, n, dim, m->norm_eps, nt);
        av_matmul_many((float *[]){s->q, kc, vc}, s->xb, (const av_tensor *[]){&L->wq, &L->wk, &L->wv}, 3, n,
                       s->wscratch, nt);
        if (L->bq.data) av_add_bias(s->q, &L->bq, n, q_dim); /* Qwen2: biases before RoPE */
        if (L->bk.data) av_add_bias(kc, &L->bk, n, kv_dim);
        if (L->bv.data) av_add_bias(vc, &L->bv, n, kv_dim);
        for (int i = 0; i < n; i++) {
            av_rope(s->q + (size_t)i * (size_t)q_dim, m->n_heads, hs, pos0 + i, m->rope_theta,
                    m->rope == AV_ROPE_HALF);
            av_rope(kc + (size_t)i * (size_t)kv_dim, m->n_kv_heads, hs, pos0 + i, m->rope_theta,
                    m->rope == AV_ROPE_HALF);
        }
        if (cap && cap->q && cap->q[l]) store_heads(cap->q[l], s->q, n, m->n_heads, hs, pos0, cap->T);
        if (cap && cap->k && cap->k[l]) store_heads(cap->k[l], kc, n, m->n_kv_heads, hs, pos0, cap->T);
        av_attn_args aa = {0};
        aa.n_heads = m->n_heads;
        aa.n_kv_heads = m->n_kv_heads;
        aa.head_dim = hs;
        aa.n_q = n;
        aa.n_k = pos0 + n;
        aa.q = s->q;
        aa.q_stride = q_dim;
        aa.k = s->k_cache + (size_t)l * (size_t)s->max_tokens * (size_t)kv_dim;
        aa.v = s->v_cache + (size_t)l * (size_t)s->max_tokens * (size_t)kv_dim;
        aa.k_stride = aa.v_stride = kv_dim;
        aa.out = s->att_out;
        aa.out_stride = q_dim;
        aa.scale = 1.0f / sqrtf((float)hs);
        aa.causal_offset = pos0;
        aa.window = L->window;
        if (cap && cap->attn && cap->attn[l]) {
            aa.probs = cap->attn[l] + (size_t)pos0 * (size_t)cap->T;
            aa.probs_head_stride = (size_t)cap->T * (size_t)cap->T;
            aa.probs_ld = cap->T;
            aa.probs_zeroed = cap->zeroed;
        }
        av_attention(&aa, s->scores, nt);
        if (cap && cap->vnorm && cap->vnorm[l] &&
            capture_vnorm(m, s, L, l, n, pos0, cap->vnorm[l], cap->T, err))
            return -1;
        av_matmul(s->xb, s->att_out, &L->wo, n, s->wscratch, nt);
        for (size_t i = 0; i < (size_t)n * (size_t)dim; i++)
            s->x[i] += s->xb[i];

        av_rmsnorm(s->xb, s->x, &L->ffn_norm, n, dim, m->norm_eps, nt);
        av_matmul_many((float *[]){s->hb, s->hb2}, s->xb, (const av_tensor *[]){&L->w_gate, &L->w_up}, 2, n,
                       s->wscratch, nt);
        av_swiglu(s->hb, s->hb2, (size_t)n * (size_t)m->hidden_dim, nt);
        av_matmul(s->xb, s->hb, &L->w_down, n, s->wscratch, nt);
        for (size_t i = 0; i < (size_t)n * (size_t)dim; i++)
            s->x[i] += s->xb[i];
    }
    if (!logits) return 0;
    int first = logits_all ? 0 : n - 1, rows = n - first;
    av_rmsnorm(s->xb, s->x + (size_t)first * (size_t)dim, &m->out_norm, rows, dim, m->norm_eps, nt);
    av_matmul(logits, s->xb, &m->cls, rows, s->wscratch, nt);
    return 0;
}
