/* Running an av_tf_model (family.h): embeddings (learned, offset, RoBERTa-style or sinusoidal positions,
 * token types, scaling, norm), T5 relative position biases, the output heads, and the forward passes of the
 * decoder-only / encoder-only families and of encoder-decoders. Every block goes through av_stack_forward. */
#include "family.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int av_tf_new(av_model *m, av_err *err) {
    m->tf = calloc(1, sizeof *m->tf);
    if (!m->tf) return av_errf(err, "out of memory");
    m->tf->emb_scale = 1.0f;
    m->tf->head_scale = 1.0f;
    m->tf->pad_id = m->tf->bos_id = m->tf->eos_id = m->tf->dec_start_id = -1;
    return 0;
}

void av_tf_free(av_tf_model *tf) {
    if (!tf) return;
    av_stack_free(&tf->enc);
    av_stack_free(&tf->dec);
    for (int i = 0; tf->labels && i < tf->n_out; i++)
        free(tf->labels[i]);
    free(tf->labels);
    free(tf);
}

static int64_t numel0(const av_tensor *t) { return t->data ? av_tensor_numel(t) : 0; }

int64_t av_tf_n_params(const av_model *m) {
    const av_tf_model *tf = m->tf;
    const av_tensor *ts[] = {
        &tf->tok_emb,     &tf->enc_emb.tok,    &tf->dec_emb.tok,    &tf->type_emb,       &tf->enc_emb.pos,
        &tf->dec_emb.pos, &tf->enc_emb.norm.w, &tf->enc_emb.norm.b, &tf->dec_emb.norm.w, &tf->dec_emb.norm.b,
        &tf->rel_enc,     &tf->rel_dec,        &tf->head_dense.w,   &tf->head_dense.b,   &tf->head_norm.w,
        &tf->head_norm.b, &tf->head.b,         &tf->patch.w,        &tf->patch.b,        &tf->cls_token};
    int64_t n = av_stack_n_params(&tf->enc) + av_stack_n_params(&tf->dec);
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++)
        n += numel0(ts[i]);
    if (tf->head.w.data != tf->tok_emb.data && tf->head.w.data != tf->dec_emb.tok.data)
        n += numel0(&tf->head.w);
    return n;
}

/* ---- validation ---- */

static int check_embed(const av_tf_embed *e, const char *what, int max_pos, int dim, int vocab, av_err *err) {
    char name[96];
    if (e->pos.data) {
        snprintf(name, sizeof name, "%s position embedding", what);
        if (e->pos.ndim != 2 || e->pos.shape[1] != dim)
            return av_weight_check(&e->pos, name, e->pos.ndim == 2 ? e->pos.shape[0] : max_pos, dim, 0, err);
        if (e->pos.shape[0] < (int64_t)max_pos + e->pos_offset)
            return av_errf(err, "%s: %lld rows for %d positions (offset %d): does not match config.json",
                           name, (long long)e->pos.shape[0], max_pos, e->pos_offset);
    }
    if (e->tok.data) {
        snprintf(name, sizeof name, "%s token embedding", what);
        if (av_weight_check(&e->tok, name, vocab, dim, 0, err)) return -1;
    }
    if (e->sinusoidal && dim % 2) return av_errf(err, "%s: sinusoidal positions need an even size", what);
    if (e->norm.w.data) {
        snprintf(name, sizeof name, "%s embedding norm", what);
        return av_norm_check(&e->norm, name, dim, err);
    }
    return 0;
}

int av_tf_check(av_model *m, av_err *err) {
    av_tf_model *tf = m->tf;
    if (!tf) return av_errf(err, "internal error: model family without weights");
    int dim = tf->enc.cfg.dim, heads = tf->enc.cfg.n_heads;
    int is_vit = m->family == AV_FAMILY_VIT, is_encdec = m->family == AV_FAMILY_ENCDEC;
    if (m->max_seq_len <= 0 || m->max_seq_len > (1 << 20))
        return av_errf(err, "model context length %d is out of range", m->max_seq_len);
    if (av_stack_check(&tf->enc, is_encdec ? "encoder" : "model", err)) return -1;
    if (is_encdec && av_stack_check(&tf->dec, "decoder", err)) return -1;
    if (is_encdec && (tf->dec.cfg.dim != dim || tf->dec.cfg.n_heads != heads))
        return av_errf(err, "decoder and encoder sizes differ (dim %d vs %d, heads %d vs %d)",
                       tf->dec.cfg.dim, dim, tf->dec.cfg.n_heads, heads);
    if (!is_vit) {
        if (m->vocab_size <= 0 || m->vocab_size > (1 << 22))
            return av_errf(err, "vocabulary size %d is out of range", m->vocab_size);
        if (av_weight_check(&tf->tok_emb, "token embedding", m->vocab_size, dim, 0, err)) return -1;
    }
    if (tf->type_emb.data &&
        (tf->type_emb.ndim != 2 || tf->type_emb.shape[1] != dim || tf->type_emb.shape[0] < 1))
        return av_weight_check(&tf->type_emb, "token type embedding", 1, dim, 0, err);
    int enc_pos = m->max_seq_len;
    if (tf->roberta_pos) enc_pos = m->max_seq_len + tf->pad_id + 1 - tf->enc_emb.pos_offset;
    if (check_embed(&tf->enc_emb, is_encdec ? "encoder" : "model", enc_pos, dim, m->vocab_size, err) ||
        (is_encdec && check_embed(&tf->dec_emb, "decoder", m->max_seq_len, dim, m->vocab_size, err)))
        return -1;
    if (tf->rel_enc.data &&
        av_weight_check(&tf->rel_enc, "encoder relative_attention_bias", tf->rel_buckets, heads, 0, err))
        return -1;
    if (tf->rel_dec.data &&
        av_weight_check(&tf->rel_dec, "decoder relative_attention_bias", tf->rel_buckets, heads, 0, err))
        return -1;
    if (tf->head_dense.w.data && (av_linear_check(&tf->head_dense, "head transform", dim, dim, err) ||
                                  av_norm_check(&tf->head_norm, "head norm", dim, err)))
        return -1;
    if (tf->head.w.data && av_linear_check(&tf->head, "output head", tf->n_out, dim, err)) return -1;
    if (is_vit) {
        int P = tf->channels * tf->patch_size * tf->patch_size;
        if (tf->grid <= 0 || tf->grid * tf->patch_size != tf->image_size)
            return av_errf(err, "image size %d is not a multiple of the patch size %d", tf->image_size,
                           tf->patch_size);
        if (av_linear_check(&tf->patch, "patch embedding", dim, P, err) ||
            av_weight_check(&tf->cls_token, "class token", 1, dim, 0, err))
            return -1;
    }
    m->head_dim = tf->enc.cfg.head_dim;
    return 0;
}

/* ---- embeddings ---- */

static void add_sinusoid(float *row, int pos, int dim) {
    int half = dim / 2; /* Marian: [sin(p w_0) .. sin(p w_{half-1}) | cos(p w_0) .. cos(p w_{half-1})] */
    for (int k = 0; k < half; k++) {
        double a = pos / pow(10000.0, 2.0 * k / dim);
        row[k] += (float)sin(a);
        row[half + k] += (float)cos(a);
    }
}

static int embed_tokens(const av_model *m, const av_tf_embed *e, const int32_t *ids, int T,
                        float *x /* (T, dim) */, av_err *err) {
    const av_tf_model *tf = m->tf;
    int dim = tf->enc.cfg.dim, nonpad = 0;
    float *row = malloc(sizeof(float) * (size_t)dim); /* (dim) */
    if (!row) return av_errf(err, "out of memory");
    for (int i = 0; i < T; i++) {
        float *xi = x + (size_t)i * (size_t)dim;
        if (ids[i] < 0 || ids[i] >= m->vocab_size) {
            free(row);
            return av_errf(err, "token id %d at position %d is outside the vocabulary (%d)", ids[i], i,
                           m->vocab_size);
        }
        av_dequantize_rows(e->tok.data ? &e->tok : &tf->tok_emb, ids[i], 1, xi);
        if (tf->emb_scale != 1.0f)
            for (int d = 0; d < dim; d++)
                xi[d] *= tf->emb_scale;
        if (e->sinusoidal) add_sinusoid(xi, i, dim);
        if (e->pos.data) {
            int64_t p = i + e->pos_offset;
            if (tf->roberta_pos) p = ids[i] == tf->pad_id ? tf->pad_id : tf->pad_id + ++nonpad;
            if (p >= e->pos.shape[0]) {
                free(row);
                return av_errf(err, "position %lld is past the model's %lld position embeddings",
                               (long long)p, (long long)e->pos.shape[0]);
            }
            av_dequantize_rows(&e->pos, p, 1, row);
            for (int d = 0; d < dim; d++)
                xi[d] += row[d];
        }
        if (tf->type_emb.data) { /* token_type_ids are all 0 */
            av_dequantize_rows(&tf->type_emb, 0, 1, row);
            for (int d = 0; d < dim; d++)
                xi[d] += row[d];
        }
    }
    free(row);
    if (e->norm.w.data) av_norm_apply(AV_NORM_LAYER, &e->norm, tf->enc.cfg.eps, x, x, T, dim);
    return 0;
}

/* ---- T5 relative positions ---- */

/* Bucket of relative position rel = key - query, in float32 exactly as the PyTorch implementation does it. */
static int t5_bucket(int rel, int bidirectional, int n_buckets, int max_distance) {
    int bucket = 0, n = n_buckets;
    if (bidirectional) {
        n /= 2;
        if (rel > 0) bucket += n;
        rel = rel < 0 ? -rel : rel;
    } else {
        rel = rel < 0 ? -rel : 0;
    }
    int max_exact = n / 2;
    if (rel < max_exact) return bucket + rel;
    float v = logf((float)rel / (float)max_exact) / (float)log((double)max_distance / max_exact) *
              (float)(n - max_exact);
    int large = max_exact + (int)v;
    return bucket + (large < n - 1 ? large : n - 1);
}

void av_t5_position_bias(const av_tensor *rel, int n_heads, int n_buckets, int max_distance,
                         int bidirectional, int T, int S, float *out) {
    float *table = malloc(sizeof(float) * (size_t)n_buckets * (size_t)n_heads); /* (n_buckets, n_heads) */
    if (!table) return;
    av_dequantize_rows(rel, 0, n_buckets, table);
    for (int q = 0; q < T; q++)
        for (int k = 0; k < S; k++) {
            int b = t5_bucket(k - q, bidirectional, n_buckets, max_distance);
            for (int h = 0; h < n_heads; h++)
                out[((size_t)h * (size_t)T + (size_t)q) * (size_t)S + (size_t)k] =
                    table[(size_t)b * (size_t)n_heads + (size_t)h];
        }
    free(table);
}

static int position_bias(const av_model *m, const av_tensor *rel, int bidirectional, int T, float **out,
                         av_err *err) {
    *out = NULL;
    if (!rel->data) return 0;
    int H = m->tf->enc.cfg.n_heads;
    size_t n;
    if (!av_mul_size((size_t)H * (size_t)T, (size_t)T, &n) || !av_mul_size(n, sizeof(float), &n))
        return av_errf(err, "position bias size overflows");
    *out = malloc(n); /* (n_heads, T, T) */
    if (!*out) return av_errf(err, "out of memory for the position bias (%zu MiB)", n >> 20);
    av_t5_position_bias(rel, H, m->tf->rel_buckets, m->tf->rel_max_distance, bidirectional, T, T, *out);
    return 0;
}

/* ---- output head ---- */

static int head_logits(const av_model *m, const float *x /* (rows, dim) */, int rows,
                       float *logits /* (rows, n_out) */, av_err *err) {
    const av_tf_model *tf = m->tf;
    int dim = tf->enc.cfg.dim;
    if (!tf->head.w.data) return av_errf(err, "this checkpoint has no output head (no logits)");
    float *tmp = NULL; /* (rows, dim) */
    if (tf->head_dense.w.data || tf->head_scale != 1.0f) {
        tmp = malloc(sizeof(float) * (size_t)rows * (size_t)dim);
        if (!tmp) return av_errf(err, "out of memory");
        if (tf->head_dense.w.data) {
            if (av_linear_run(tmp, x, &tf->head_dense, rows, m->n_threads, err)) {
                free(tmp);
                return -1;
            }
            av_activate(tmp, (size_t)rows * (size_t)dim, tf->head_act);
            av_norm_apply(AV_NORM_LAYER, &tf->head_norm, tf->enc.cfg.eps, tmp, tmp, rows, dim);
        } else {
            memcpy(tmp, x, sizeof(float) * (size_t)rows * (size_t)dim);
        }
        for (size_t i = 0; i < (size_t)rows * (size_t)dim; i++)
            tmp[i] *= tf->head_scale;
        x = tmp;
    }
    int rc = av_linear_run(logits, x, &tf->head, rows, m->n_threads, err);
    free(tmp);
    return rc;
}

static float *alloc_rows(int rows, int dim, av_err *err) {
    float *p = malloc(sizeof(float) * (size_t)(rows > 0 ? rows : 1) * (size_t)dim);
    if (!p) av_errf(err, "out of memory");
    return p;
}

/* ---- forward passes ---- */

int av_tf_forward_tokens(const av_model *m, const int32_t *ids, int T, const av_capture *cap, float *logits,
                         int logits_all, av_err *err) {
    const av_tf_model *tf = m->tf;
    if (T <= 0) return av_errf(err, "empty input: nothing to run");
    if (T > m->max_seq_len)
        return av_errf(err, "input is %d tokens but the model's context window is %d", T, m->max_seq_len);
    if (cap && cap->T != T) return av_errf(err, "capture buffers hold %d positions, need %d", cap->T, T);
    float *x = alloc_rows(T, m->dim, err); /* (T, dim) */
    if (!x) return -1;
    av_stack_run run = {0};
    run.causal = tf->causal;
    run.self_probs = cap ? cap->attn : NULL;
    run.vnorm = cap ? cap->vnorm : NULL;
    int rc = embed_tokens(m, &tf->enc_emb, ids, T, x, err) ||
             av_stack_forward(&tf->enc, x, T, &run, m->n_threads, err) ||
             (logits && head_logits(m, x + (logits_all ? 0 : (size_t)(T - 1) * (size_t)m->dim),
                                    logits_all ? T : 1, logits, err));
    free(x);
    return rc ? -1 : 0;
}

int av_vit_forward(const av_model *m, const float *pixels, const av_capture *cap, float *logits,
                   av_err *err) {
    const av_tf_model *tf = m->tf;
    int g = tf->grid, p = tf->patch_size, C = tf->channels, S = tf->image_size, dim = m->dim;
    int N = g * g, T = N + 1, P = C * p * p;
    if (cap && cap->T != T) return av_errf(err, "capture buffers hold %d positions, need %d", cap->T, T);
    float *patches = alloc_rows(N, P, err); /* (N, C*p*p): patch n = (gy, gx), values in (c, ky, kx) order */
    float *x = patches ? alloc_rows(T, dim, err) : NULL; /* (T, dim): [CLS] then patches */
    float *row = x ? alloc_rows(1, dim, err) : NULL;     /* (dim) */
    int rc = -1;
    if (!row) goto done;
    for (int gy = 0; gy < g; gy++)
        for (int gx = 0; gx < g; gx++) {
            float *dst = patches + (size_t)(gy * g + gx) * (size_t)P;
            for (int c = 0; c < C; c++)
                for (int ky = 0; ky < p; ky++)
                    memcpy(dst + (size_t)(c * p + ky) * (size_t)p,
                           pixels + ((size_t)c * (size_t)S + (size_t)(gy * p + ky)) * (size_t)S +
                               (size_t)(gx * p),
                           sizeof(float) * (size_t)p);
        }
    av_dequantize_rows(&tf->cls_token, 0, 1, x);
    if (av_linear_run(x + dim, patches, &tf->patch, N, m->n_threads, err)) goto done;
    for (int t = 0; t < T; t++) {
        av_dequantize_rows(&tf->enc_emb.pos, t, 1, row);
        for (int d = 0; d < dim; d++)
            x[(size_t)t * (size_t)dim + (size_t)d] += row[d];
    }
    av_stack_run run = {0};
    run.self_probs = cap ? cap->attn : NULL;
    run.vnorm = cap ? cap->vnorm : NULL;
    if (av_stack_forward(&tf->enc, x, T, &run, m->n_threads, err)) goto done;
    if (logits && head_logits(m, x, 1, logits, err)) goto done; /* the class token */
    rc = 0;
done:
    free(patches);
    free(x);
    free(row);
    return rc;
}

int av_encdec_encode(const av_model *m, const int32_t *src, int S, float **enc_attn, float *mem,
                     av_err *err) {
    const av_tf_model *tf = m->tf;
    if (S <= 0) return av_errf(err, "empty source: nothing to encode");
    if (S > m->max_seq_len)
        return av_errf(err, "source is %d tokens but the model's context window is %d", S, m->max_seq_len);
    float *bias = NULL;
    if (embed_tokens(m, &tf->enc_emb, src, S, mem, err) || position_bias(m, &tf->rel_enc, 1, S, &bias, err))
        return -1;
    av_stack_run run = {0};
    run.self_bias = bias;
    run.self_probs = enc_attn;
    int rc = av_stack_forward(&tf->enc, mem, S, &run, m->n_threads, err);
    free(bias);
    return rc;
}

int av_encdec_decode(const av_model *m, const float *mem, int S, const int32_t *tgt, int T, float **dec_attn,
                     float **cross_attn, float *logits, int logits_all, av_err *err) {
    const av_tf_model *tf = m->tf;
    if (T <= 0) return av_errf(err, "empty target: nothing to decode");
    if (T > m->max_seq_len)
        return av_errf(err, "target is %d tokens but the model's context window is %d", T, m->max_seq_len);
    float *x = alloc_rows(T, m->dim, err); /* (T, dim) */
    float *bias = NULL;
    if (!x) return -1;
    int rc = -1;
    if (embed_tokens(m, &tf->dec_emb, tgt, T, x, err) || position_bias(m, &tf->rel_dec, 0, T, &bias, err))
        goto done;
    av_stack_run run = {0};
    run.causal = 1;
    run.self_bias = bias;
    run.mem = mem;
    run.S = S;
    run.self_probs = dec_attn;
    run.cross_probs = cross_attn;
    if (av_stack_forward(&tf->dec, x, T, &run, m->n_threads, err)) goto done;
    if (logits) {
        int first = logits_all ? 0 : T - 1;
        if (head_logits(m, x + (size_t)first * (size_t)m->dim, T - first, logits, err)) goto done;
    }
    rc = 0;
done:
    free(x);
    free(bias);
    return rc;
}
