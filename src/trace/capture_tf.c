/* Traces of the non-Llama families: GPT-2 / BERT runs on text or ids ("self"), ViT runs on images ("self"
 * over [CLS] + patches, patch_grid, predictions), encoder-decoders on a source and a forced or greedy target
 * ("enc", "dec", "cross", source_tokens / target_tokens). */
#include "capture_tf.h"
#include "io/image.h"
#include "model/family.h"
#include "tok/tok.h"
#include "trace.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { DEFAULT_STEPS = 32 };

/* ---- labels and metadata ---- */

static char *token_label(const av_model *m, const int32_t *ids, size_t n, size_t i) {
    if (m->tok && ids[i] >= 0 && ids[i] < av_tokenizer_vocab_size(m->tok))
        return av_tokenizer_display(m->tok, ids, n, i);
    char buf[24];
    snprintf(buf, sizeof buf, "#%d", ids[i]);
    return av_strdup(buf);
}

static void free_labels(char **labels, size_t n) {
    for (size_t i = 0; labels && i < n; i++)
        free(labels[i]);
    free(labels);
}

/* Sets the trace tokens from ids (labels from the tokenizer, or "#id"). */
static int set_tokens(const av_model *m, av_trace *t, const int32_t *ids, size_t n, av_err *err) {
    char **labels = calloc(n ? n : 1, sizeof *labels);
    int32_t *copy = malloc(sizeof *copy * (n ? n : 1));
    int ok = labels && copy;
    for (size_t i = 0; ok && i < n; i++)
        ok = (labels[i] = token_label(m, ids, n, i)) != NULL;
    if (!ok) {
        free_labels(labels, n);
        free(copy);
        return av_errf(err, "out of memory");
    }
    memcpy(copy, ids, sizeof *copy * n);
    return av_trace_set_tokens(t, labels, copy, (int)n, err);
}

/* Metadata key holding a JSON array of the labels (or of the ids when as_ids). */
static int set_json_list(const av_model *m, av_trace *t, const char *key, const int32_t *ids, size_t n,
                         int as_ids, av_err *err) {
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < n; i++) {
        if (as_ids) {
            json_array_append_new(arr, json_integer(ids[i]));
            continue;
        }
        char *label = token_label(m, ids, n, i);
        json_t *s = label ? json_string(label) : NULL;
        json_array_append_new(arr, s ? s : json_string("\xEF\xBF\xBD"));
        free(label);
    }
    char *text = arr ? json_dumps(arr, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
    json_decref(arr);
    int rc = text ? av_trace_set_meta(t, key, text, err) : av_errf(err, "out of memory");
    free(text);
    return rc;
}

static int set_meta_int(av_trace *t, const char *key, int v, av_err *err) {
    char buf[32];
    snprintf(buf, sizeof buf, "%d", v);
    return av_trace_set_meta(t, key, buf, err);
}

int av_capture_model_meta(const av_model *m, av_trace *t, av_err *err) {
    av_model_info info = av_model_get_info(m);
    return av_trace_set_meta(t, "model", m->name, err) || av_trace_set_meta(t, "arch", m->arch, err) ||
           (m->family != AV_FAMILY_LLAMA && av_trace_set_meta(t, "family", info.family, err)) ||
           av_trace_set_meta(t, "model_format", m->format, err) ||
           av_trace_set_meta(t, "created_by", "attnviz " AV_VERSION, err) ||
           set_meta_int(t, "n_layers", m->n_layers, err) || set_meta_int(t, "n_heads", m->n_heads, err) ||
           set_meta_int(t, "n_kv_heads", m->n_kv_heads, err) ||
           (info.n_dec_layers && set_meta_int(t, "n_dec_layers", info.n_dec_layers, err));
}

/* ---- capture buffers: n pointers to (n_heads, rows, cols) ---- */

static float **alloc_sets(int n, int heads, int rows, int cols, av_err *err) {
    size_t per;
    if (!av_mul_size((size_t)heads * (size_t)rows, (size_t)cols, &per) ||
        !av_mul_size(per, sizeof(float), &per)) {
        av_errf(err, "attention size overflows");
        return NULL;
    }
    float **p = calloc((size_t)n, sizeof *p);
    for (int i = 0; p && i < n; i++)
        if (!(p[i] = malloc(per ? per : 4))) {
            for (int k = 0; k < i; k++)
                free(p[k]);
            free(p);
            av_errf(err, "out of memory: the trace needs %zu MiB (%d layers x %d heads x %d x %d floats)",
                    (per * (size_t)n) >> 20, n, heads, rows, cols);
            return NULL;
        }
    if (!p) av_errf(err, "out of memory");
    return p;
}

void av_capture_free_sets(float **p, int n) {
    for (int i = 0; p && i < n; i++)
        free(p[i]);
    free(p);
}

int av_capture_add_sets(av_trace *t, const char *kind, float **p, int n, int heads, int rows, int cols,
                        av_err *err) {
    for (int l = 0; l < n; l++) {
        float *a = p[l];
        p[l] = NULL;
        if (av_trace_add_attn(t, kind, l, heads, rows, cols, a, err)) return -1;
    }
    return 0;
}

static av_trace *new_trace(const av_run_params *p, av_err *err) {
    av_trace *t = av_trace_new();
    if (!t)
        av_errf(err, "out of memory");
    else
        t->store_dtype = p->dtype;
    return t;
}

static int check_params(av_model *m, const av_run_params *p, av_err *err) {
    if (p->dtype != AV_DTYPE_F32 && p->dtype != AV_DTYPE_F16)
        return av_errf(err, "traces store attention as F32 or F16, not %s", av_dtype_name(p->dtype));
    if (p->lazy && !av_model_lazy_supported(m, err)) return -1;
    if (p->n_threads > 0) m->n_threads = p->n_threads;
    return 0;
}

/* ---- GPT-2 / BERT ---- */

static int tokens_trace(av_model *m, const int32_t *ids, size_t n, const av_run_params *p, av_trace **out,
                        av_err *err) {
    if (n == 0) return av_errf(err, "empty input: no tokens to run");
    if (n > (size_t)m->max_seq_len)
        return av_errf(err, "input is %zu tokens but the model's context window is %d", n, m->max_seq_len);
    int T = (int)n, L = m->n_layers, H = m->n_heads, rc = -1;
    float **attn = alloc_sets(L, H, T, T, err), **vnorm = attn ? alloc_sets(L, H, T, 1, err) : NULL;
    float *logits = NULL; /* (T, vocab) */
    av_trace *t = vnorm ? new_trace(p, err) : NULL;
    if (!t) goto done;
    if (p->want_logits && m->tf->n_out &&
        !(logits = malloc(sizeof(float) * (size_t)T * (size_t)m->vocab_size))) {
        av_errf(err, "out of memory for logits");
        goto done;
    }
    av_capture cap = {.attn = attn, .vnorm = vnorm, .T = T};
    if (av_tf_forward_tokens(m, ids, T, &cap, logits, 1, err) || av_capture_model_meta(m, t, err) ||
        set_tokens(m, t, ids, n, err) || av_capture_add_sets(t, "self", attn, L, H, T, T, err))
        goto done;
    av_trace_set_vnorm(t, vnorm, L, H, err);
    vnorm = NULL;
    if (logits) av_trace_set_logits(t, logits, T, m->vocab_size);
    logits = NULL;
    *out = t;
    t = NULL;
    rc = 0;
done:
    av_capture_free_sets(attn, L);
    av_capture_free_sets(vnorm, L);
    free(logits);
    av_trace_free(t);
    return rc;
}

/* ---- encoder-decoders ---- */

static int argmax(const float *x, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

/* Greedy decoding: *dec = [start, g1, ..., gk] (stops after end-of-sequence or steps tokens). */
static int greedy(const av_model *m, const float *mem, int S, int steps, int32_t **dec, int *n_dec,
                  av_err *err) {
    const av_tf_model *tf = m->tf;
    int cap = steps + 1, n = 1;
    int32_t *seq = malloc(sizeof *seq * (size_t)cap);
    float *logits = malloc(sizeof(float) * (size_t)m->vocab_size); /* (vocab) */
    if (!seq || !logits) {
        free(seq);
        free(logits);
        return av_errf(err, "out of memory");
    }
    seq[0] = tf->dec_start_id;
    while (n < cap) {
        if (av_encdec_decode(m, mem, S, seq, n, NULL, NULL, logits, 0, err)) {
            free(seq);
            free(logits);
            return -1;
        }
        seq[n] = argmax(logits, m->vocab_size);
        if (seq[n++] == tf->eos_id) break;
    }
    free(logits);
    *dec = seq;
    *n_dec = n;
    return 0;
}

int av_trace_from_pair_ids(av_model *m, const int32_t *src, size_t n_src, const int32_t *tgt, size_t n_tgt,
                           int steps, const av_run_params *params, av_trace **out, av_err *err) {
    *out = NULL;
    av_run_params defaults = av_run_default_params();
    if (!params) params = &defaults;
    if (m->family != AV_FAMILY_ENCDEC)
        return av_errf(err, "%s is not an encoder-decoder model (give it a single text)", m->name);
    if (check_params(m, params, err)) return -1;
    if (n_src == 0) return av_errf(err, "empty source: nothing to encode");
    if (n_src > (size_t)m->max_seq_len || n_tgt > (size_t)m->max_seq_len)
        return av_errf(err, "source (%zu) or target (%zu) is longer than the model's %d positions", n_src,
                       n_tgt, m->max_seq_len);
    if (!tgt && (steps < 1 || steps >= m->max_seq_len))
        return av_errf(err, "steps must be between 1 and %d", m->max_seq_len - 1);
    if (tgt && n_tgt == 0) return av_errf(err, "empty target: give at least the decoder start token");
    const av_tf_model *tf = m->tf;
    int S = (int)n_src, T = 0, Le = tf->enc.n_layers, Ld = tf->dec.n_layers, H = m->n_heads,
        V = m->vocab_size, rc = -1;
    float *mem = malloc(sizeof(float) * (size_t)S * (size_t)m->dim); /* (S, dim) encoder output */
    float **enc = mem ? alloc_sets(Le, H, S, S, err) : NULL, **dec = NULL, **cross = NULL, *logits = NULL;
    int32_t *seq = NULL;
    av_trace *t = NULL;
    if (!mem) av_errf(err, "out of memory");
    if (!enc || av_encdec_encode(m, src, S, enc, mem, err)) goto done;
    if (tgt) {
        T = (int)n_tgt;
        if (!(seq = malloc(sizeof *seq * n_tgt))) {
            av_errf(err, "out of memory");
            goto done;
        }
        memcpy(seq, tgt, sizeof *seq * n_tgt);
    } else if (greedy(m, mem, S, steps, &seq, &T, err)) {
        goto done;
    }
    if (!(dec = alloc_sets(Ld, H, T, T, err)) || !(cross = alloc_sets(Ld, H, T, S, err)) ||
        !(t = new_trace(params, err)))
        goto done;
    if (params->want_logits && !(logits = malloc(sizeof(float) * (size_t)T * (size_t)V))) {
        av_errf(err, "out of memory for logits");
        goto done;
    }
    if (av_encdec_decode(m, mem, S, seq, T, dec, cross, logits, 1, err) || av_capture_model_meta(m, t, err) ||
        set_tokens(m, t, seq, (size_t)T, err) || set_json_list(m, t, "source_tokens", src, n_src, 0, err) ||
        set_json_list(m, t, "source_token_ids", src, n_src, 1, err) ||
        set_json_list(m, t, "target_tokens", seq, (size_t)T, 0, err) ||
        av_trace_set_meta(t, "decoding", tgt ? "forced" : "greedy", err) ||
        av_capture_add_sets(t, "enc", enc, Le, H, S, S, err) ||
        av_capture_add_sets(t, "dec", dec, Ld, H, T, T, err) ||
        av_capture_add_sets(t, "cross", cross, Ld, H, T, S, err))
        goto done;
    if (logits) av_trace_set_logits(t, logits, T, V);
    logits = NULL;
    *out = t;
    t = NULL;
    rc = 0;
done:
    free(mem);
    free(seq);
    free(logits);
    av_capture_free_sets(enc, Le);
    av_capture_free_sets(dec, Ld);
    av_capture_free_sets(cross, Ld);
    av_trace_free(t);
    return rc;
}

/* ids of text with the tokenizer's special tokens; *n_out may be 0. */
static int encode(const av_model *m, const char *text, int add_special, int32_t **ids, size_t *n,
                  size_t extra, av_err *err) {
    if (!m->tok)
        return av_errf(err, "the model has no tokenizer%s%s: pass --tokenizer",
                       m->tf->tok_error[0] ? " (" : "", m->tf->tok_error[0] ? m->tf->tok_error : "");
    int32_t *raw;
    if (av_tokenizer_encode(m->tok, text, strlen(text), add_special, &raw, n, err)) return -1;
    *ids = realloc(raw, sizeof *raw * (*n + extra + 1)); /* room for specials the caller adds */
    if (!*ids) {
        free(raw);
        return av_errf(err, "out of memory");
    }
    return 0;
}

int av_trace_from_pair(av_model *m, const char *source, const char *target, int steps,
                       const av_run_params *params, av_trace **out, av_err *err) {
    *out = NULL;
    if (m->family != AV_FAMILY_ENCDEC)
        return av_errf(err, "%s is not an encoder-decoder model (give it a single text)", m->name);
    const av_tf_model *tf = m->tf;
    int32_t *src = NULL, *labels = NULL, *dec = NULL;
    size_t ns, nl = 0;
    int rc = -1;
    if (encode(m, source, 1, &src, &ns, 2, err)) return -1;
    if (tf->bos_id >= 0 && (ns == 0 || src[0] != tf->bos_id)) { /* BART: <s> source </s> */
        memmove(src + 1, src, sizeof *src * ns);
        src[0] = tf->bos_id;
        ns++;
    }
    if (ns == 0 || src[ns - 1] != tf->eos_id) src[ns++] = tf->eos_id;
    if (target) { /* decoder input = [start] + labels[:-1], labels = target with specials, ending in </s> */
        if (encode(m, target, 1, &labels, &nl, 1, err)) goto done;
        if (nl == 0 || labels[nl - 1] != tf->eos_id) labels[nl++] = tf->eos_id;
        if (!(dec = malloc(sizeof *dec * nl))) {
            av_errf(err, "out of memory");
            goto done;
        }
        dec[0] = tf->dec_start_id;
        memcpy(dec + 1, labels, sizeof *dec * (nl - 1));
    }
    rc = av_trace_from_pair_ids(m, src, ns, dec, nl, steps, params, out, err);
done:
    free(src);
    free(labels);
    free(dec);
    return rc;
}

/* ---- images ---- */

int av_image_preprocess(const av_model *m, const char *path, float **pixels, int *height, int *width,
                        av_err *err) {
    *pixels = NULL;
    if (av_vit_preprocess_file(m, path, pixels, err)) return -1;
    *height = m->tf->prep.out_h;
    *width = m->tf->prep.out_w;
    return 0;
}

/* The k best classes of logits (n), softmaxed; returns how many were filled. */
static int top_classes(const av_model *m, const float *logits, int n, av_class_score *top, int k) {
    double mx = logits[0], sum = 0;
    for (int i = 1; i < n; i++)
        mx = logits[i] > mx ? logits[i] : mx;
    for (int i = 0; i < n; i++)
        sum += exp(logits[i] - mx);
    if (k > n) k = n;
    for (int j = 0; j < k; j++) {
        int best = -1;
        for (int i = 0; i < n; i++) {
            int taken = 0;
            for (int q = 0; q < j && !taken; q++)
                taken = top[q].id == i;
            if (!taken && (best < 0 || logits[i] > logits[best])) best = i;
        }
        top[j].id = best;
        top[j].prob = (float)(exp(logits[best] - mx) / sum);
        top[j].label = m->tf->labels ? m->tf->labels[best] : NULL;
    }
    return k;
}

static int image_meta(const av_model *m, av_trace *t, const av_class_score *top, int k, av_err *err) {
    const av_tf_model *tf = m->tf;
    int T = tf->grid * tf->grid + 1;
    char buf[64];
    snprintf(buf, sizeof buf, "%dx%d", tf->grid, tf->grid);
    if (av_trace_set_meta(t, "patch_grid", buf, err) || av_trace_set_meta(t, "prefix_tokens", "1", err) ||
        set_meta_int(t, "image_size", tf->image_size, err) ||
        set_meta_int(t, "patch_size", tf->patch_size, err))
        return -1;
    if (k > 0) { /* predictions: [{"id": 281, "label": "tabby", "prob": 0.61}, ...] */
        json_t *arr = json_array();
        for (int j = 0; arr && j < k; j++) {
            json_t *o = json_pack("{s:i, s:f}", "id", top[j].id, "prob", (double)top[j].prob);
            if (o && top[j].label) json_object_set_new(o, "label", json_string(top[j].label));
            json_array_append_new(arr, o);
        }
        char *text = arr ? json_dumps(arr, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
        json_decref(arr);
        int rc = text ? av_trace_set_meta(t, "predictions", text, err) : av_errf(err, "out of memory");
        free(text);
        if (rc) return -1;
    }
    char **labels = calloc((size_t)T, sizeof *labels); /* "[CLS]", then "row,col" of each patch */
    int32_t *ids = malloc(sizeof *ids * (size_t)T);
    int ok = labels && ids;
    for (int i = 0; ok && i < T; i++) {
        if (i == 0)
            snprintf(buf, sizeof buf, "[CLS]");
        else
            snprintf(buf, sizeof buf, "%d,%d", (i - 1) / tf->grid, (i - 1) % tf->grid);
        ids[i] = i;
        ok = (labels[i] = av_strdup(buf)) != NULL;
    }
    if (!ok) {
        free_labels(labels, (size_t)T);
        free(ids);
        return av_errf(err, "out of memory");
    }
    return av_trace_set_tokens(t, labels, ids, T, err);
}

int av_trace_from_pixels(av_model *m, const float *pixels, int height, int width, const av_run_params *params,
                         av_trace **out, av_class_score *top, int k, av_err *err) {
    *out = NULL;
    av_run_params defaults = av_run_default_params();
    if (!params) params = &defaults;
    if (m->family != AV_FAMILY_VIT) return av_errf(err, "%s is not an image model", m->name);
    if (check_params(m, params, err)) return -1;
    const av_tf_model *tf = m->tf;
    if (height != tf->image_size || width != tf->image_size)
        return av_errf(err, "the model takes %dx%d images, not %dx%d", tf->image_size, tf->image_size, width,
                       height);
    int T = tf->grid * tf->grid + 1, L = m->n_layers, H = m->n_heads, rc = -1;
    av_class_score best[16];
    if (!top || k < 0) k = 0;
    if (k > 16) k = 16;
    float **attn = alloc_sets(L, H, T, T, err), **vnorm = attn ? alloc_sets(L, H, T, 1, err) : NULL;
    float *logits = vnorm ? malloc(sizeof(float) * (size_t)(tf->n_out ? tf->n_out : 1)) : NULL; /* (n_out) */
    av_trace *t = logits ? new_trace(params, err) : NULL;
    if (vnorm && !logits) av_errf(err, "out of memory");
    if (!t) goto done;
    av_capture cap = {.attn = attn, .vnorm = vnorm, .T = T};
    if (av_vit_forward(m, pixels, &cap, tf->n_out ? logits : NULL, err)) goto done;
    int n_best = tf->n_out ? top_classes(m, logits, tf->n_out, best, k > 5 ? k : 5) : 0;
    if (av_capture_model_meta(m, t, err) || image_meta(m, t, best, n_best < 5 ? n_best : 5, err) ||
        av_capture_add_sets(t, "self", attn, L, H, T, T, err))
        goto done;
    av_trace_set_vnorm(t, vnorm, L, H, err);
    vnorm = NULL;
    if (k > n_best) k = n_best;
    if (k > 16) k = 16;
    for (int j = 0; j < k; j++)
        top[j] = best[j];
    *out = t;
    t = NULL;
    rc = 0;
done:
    av_capture_free_sets(attn, L);
    av_capture_free_sets(vnorm, L);
    free(logits);
    av_trace_free(t);
    return rc;
}

int av_trace_from_image(av_model *m, const char *path, const av_run_params *params, av_trace **out,
                        av_class_score *top, int k, av_err *err) {
    *out = NULL;
    float *px;
    int h, w;
    if (av_image_preprocess(m, path, &px, &h, &w, err)) return -1;
    int rc = av_trace_from_pixels(m, px, h, w, params, out, top, k, err);
    free(px);
    if (rc == 0) {
        rc = av_trace_set_meta(*out, "image", av_path_basename(path), err);
    }
    return rc;
}

/* ---- av_trace_from_text / av_trace_from_ids for these families ---- */

int av_tf_trace_from_ids(av_model *m, const int32_t *ids, size_t n, const av_run_params *params,
                         av_trace **out, av_err *err) {
    av_run_params defaults = av_run_default_params();
    if (!params) params = &defaults;
    if (m->family == AV_FAMILY_VIT) return av_errf(err, "%s is an image model: give it an image", m->name);
    if (m->family == AV_FAMILY_ENCDEC)
        return av_trace_from_pair_ids(m, ids, n, NULL, 0, DEFAULT_STEPS, params, out, err);
    if (check_params(m, params, err)) return -1;
    return tokens_trace(m, ids, n, params, out, err);
}

/* Id of a special piece: looked up in the vocabulary, or one of the tokenizer's BOS / EOS / UNK; -1 if
 * absent. */
static int special_id(const av_tokenizer *tok, const char *piece) {
    int id = av_tok_find(tok, piece, strlen(piece));
    int cand[3] = {av_tokenizer_bos(tok), av_tokenizer_eos(tok), tok->unk};
    for (int i = 0; id < 0 && i < 3; i++) {
        const char *p = av_tokenizer_piece(tok, cand[i]);
        if (p && strcmp(p, piece) == 0) id = cand[i];
    }
    return id;
}

/* BERT family: [CLS] text [SEP] (the tokenizer's post-processor adds them; added here when it did not). */
static int add_cls_sep(const av_model *m, int32_t *ids, size_t *n) {
    int cls = special_id(m->tok, "[CLS]"), sep = special_id(m->tok, "[SEP]");
    if (cls < 0 || sep < 0) { /* RoBERTa spelling */
        cls = special_id(m->tok, "<s>");
        sep = special_id(m->tok, "</s>");
    }
    if (cls < 0 || sep < 0) return 0;
    if (*n == 0 || ids[0] != cls) {
        memmove(ids + 1, ids, sizeof *ids * *n);
        ids[0] = cls;
        (*n)++;
    }
    if (ids[*n - 1] != sep) ids[(*n)++] = sep;
    return 0;
}

int av_tf_trace_from_text(av_model *m, const char *text, const av_run_params *params, av_trace **out,
                          av_err *err) {
    av_run_params defaults = av_run_default_params();
    if (!params) params = &defaults;
    if (m->family == AV_FAMILY_VIT) return av_errf(err, "%s is an image model: give it an image", m->name);
    if (m->family == AV_FAMILY_ENCDEC)
        return av_trace_from_pair(m, text, NULL, DEFAULT_STEPS, params, out, err);
    int32_t *ids;
    size_t n;
    if (encode(m, text, params->add_bos, &ids, &n, 2, err)) return -1;
    if (m->family == AV_FAMILY_BERT && params->add_bos) add_cls_sep(m, ids, &n);
    int rc = av_tf_trace_from_ids(m, ids, n, params, out, err);
    free(ids);
    return rc;
}
