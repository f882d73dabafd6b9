/* The one capture of every family (see capture.h): buffers for each attention kind a run produces (zeroed
 * full matrices, in the output file's pages when they are large; or a lazy kind's queries and keys), the
 * views the forward pass writes through, and the trace they become: model metadata, attention sets or lazy
 * kinds with the parameters of their scores, value norms, logits. */
#include "capture.h"

#include <stdlib.h>
#include <string.h>

int av_cap_init(av_run_capture *c, const av_model *m, const av_run_params *p, av_err *err) {
    memset(c, 0, sizeof *c);
    c->m = m;
    c->p = p;
    if (p->dtype != AV_DTYPE_F32 && p->dtype != AV_DTYPE_F16)
        return av_errf(err, "traces store attention as F32 or F16, not %s", av_dtype_name(p->dtype));
    return 0;
}

void av_cap_declare(av_run_capture *c, av_attn_kind kind, int stack, int cross, int n_query, int n_key) {
    const av_stack *st = &c->m->stacks[stack];
    c->kinds[kind] = (cap_kind){
        stack, cross, st->n_layers, st->cfg.n_heads, st->cfg.n_kv_heads, st->cfg.head_dim, n_query, n_key,
        NULL,  NULL,  NULL};
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

/* Full traces of at least 4x the header room go straight into the output file (av_st_prealloc); small ones
 * would be mostly header. */
static int open_prealloc(av_run_capture *c, size_t attn_bytes, int n_labels, int n_tensors, av_err *err) {
    const av_run_params *p = c->p;
    size_t room = 65536 + (size_t)n_labels * 128 + (size_t)n_tensors * 512; /* labels, ids, tensor entries */
    if (!p->output_path || p->lazy || p->dtype != AV_DTYPE_F32 || attn_bytes < 4 * room) return 0;
    if (!(c->pre = calloc(1, sizeof *c->pre))) return av_errf(err, "out of memory");
    int r = av_st_prealloc_open(c->pre, p->output_path, room, attn_bytes, err);
    if (r != 0) { /* 1: the file cannot be mapped; keep the capture in memory */
        free(c->pre);
        c->pre = NULL;
    }
    c->mapped = c->pre != NULL;
    return r < 0 ? -1 : 0;
}

/* Full buffers of one kind: in the mapping at *off, or calloc'd (fresh zero pages either way). */
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
    for (int l = 0; l < k->n_layers; l++, *off += per * sizeof(float))
        k->attn[l] = (float *)(c->pre->map + c->pre->room + *off);
    return 0;
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
        tensors += 2 * k->n_layers;
    }
    if (open_prealloc(c, bytes, labels, tensors, err)) return -1;
    for (int i = 0; i < AV_ATTN_KIND_COUNT; i++) {
        cap_kind *k = &c->kinds[i];
        if (!k->n_layers) continue;
        if (!c->p->lazy) {
            if (alloc_full(c, k, &off, err)) return -1;
        } else if (!(k->q = alloc_bufs(k->n_layers, (size_t)k->n_heads * k->n_query * k->head_dim, 0, err)) ||
                   !(k->k =
                         alloc_bufs(k->n_layers, (size_t)k->n_kv_heads * k->n_key * k->head_dim, 0, err))) {
            return av_errf(err, "out of memory for the lazy trace's queries and keys (%d x %d)", k->n_query,
                           k->n_key);
        }
    }
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
    return (av_capture){k->attn, kind == AV_ATTN_SELF ? c->vnorm : NULL, k->q, k->k, k->n_query, k->n_key, 1};
}

void av_cap_free(av_run_capture *c) {
    for (int i = 0; i < AV_ATTN_KIND_COUNT; i++) {
        cap_kind *k = &c->kinds[i];
        if (k->attn && c->mapped)
            memset(k->attn, 0, sizeof *k->attn * (size_t)k->n_layers); /* the file's pages */
        free_bufs(k->attn, k->n_layers);
        free_bufs(k->q, k->n_layers);
        free_bufs(k->k, k->n_layers);
    }
    free_bufs(c->vnorm, c->kinds[AV_ATTN_SELF].n_layers);
    free(c->logits);
    if (c->pre) av_st_prealloc_free(c->pre);
    free(c->pre);
    memset(c, 0, sizeof *c);
}

/* ---- the trace ---- */

int av_cap_meta_int(av_trace *t, const char *key, int v, av_err *err) {
    char buf[32];
    snprintf(buf, sizeof buf, "%d", v);
    return av_trace_set_meta(t, key, buf, err);
}

static int model_meta(const av_model *m, av_trace *t, av_err *err) {
    av_model_info info = av_model_get_info(m);
    return av_trace_set_meta(t, "model", m->name, err) || av_trace_set_meta(t, "arch", m->arch, err) ||
           av_trace_set_meta(t, "family", av_family_name(m->family), err) ||
           av_trace_set_meta(t, "model_format", av_model_format_name(m->format), err) ||
           av_trace_set_meta(t, "created_by", "attnviz " AV_VERSION, err) ||
           av_cap_meta_int(t, "n_layers", m->n_layers, err) ||
           av_cap_meta_int(t, "n_heads", m->n_heads, err) ||
           av_cap_meta_int(t, "n_kv_heads", m->n_kv_heads, err) ||
           (info.n_dec_layers && av_cap_meta_int(t, "n_dec_layers", info.n_dec_layers, err));
}

/* A captured lazy kind, with what its scores depend on from the blocks that computed it. */
static int add_lazy(const av_model *m, cap_kind *k, av_attn_kind kind, av_trace *t, av_err *err) {
    const av_stack *st = &m->stacks[k->stack];
    int L = k->n_layers, rel = !k->cross && st->rel.table.data;
    av_lazy_kind lz = {L,
                       k->n_heads,
                       k->n_kv_heads,
                       k->head_dim,
                       k->n_query,
                       k->n_key,
                       !k->cross && st->cfg.causal,
                       (const float **)k->q,
                       (const float **)k->k,
                       malloc(sizeof(float) * (size_t)L),
                       calloc((size_t)L, sizeof(float)),
                       calloc((size_t)L, sizeof(int)),
                       rel ? malloc(sizeof(float) * (size_t)k->n_heads * (size_t)(2 * k->n_query - 1)) : NULL,
                       NULL,
                       1};
    k->q = k->k = NULL;
    int ok = lz.scale && lz.softcap && lz.window && (!rel || lz.rel_bias);
    for (int l = 0; ok && l < L; l++) {
        const av_block *B = &st->blocks[l];
        lz.scale[l] = B->attn_scale; /* the forward pass's cross-attention: the same scale, nothing else */
        lz.softcap[l] = k->cross ? 0 : B->attn_softcap;
        lz.window[l] = k->cross ? 0 : B->window;
    }
    if (ok && rel) av_rel_pos_bias(st, k->n_query, (float *)lz.rel_bias); /* self kinds: n_query == n_key */
    int rc = av_trace_set_lazy(t, kind, &lz, err); /* owns lz's buffers, also on failure */
    return ok ? rc : av_errf(err, "out of memory");
}

/* The captured sets of one kind (the trace takes them; those in the file's mapping stay there). */
static int add_sets(cap_kind *k, av_attn_kind kind, av_trace *t, av_err *err) {
    for (int l = 0; l < k->n_layers; l++) {
        float *a = k->attn[l];
        k->attn[l] = NULL;
        if (av_trace_add_attn(t, kind, l, k->n_heads, k->n_query, k->n_key, a, err)) return -1;
    }
    return 0;
}

int av_cap_finish(av_run_capture *c, av_trace **out, av_err *err) {
    *out = NULL;
    av_trace *t = av_trace_new();
    if (!t) return av_errf(err, "out of memory");
    t->store_dtype = c->p->dtype;
    t->prealloc = c->pre; /* the trace now owns the file; its attention sets borrow the mapping */
    c->pre = NULL;
    int rc = model_meta(c->m, t, err);
    for (int i = 0; !rc && i < AV_ATTN_KIND_COUNT; i++) {
        cap_kind *k = &c->kinds[i];
        if (k->n_layers)
            rc = k->q ? add_lazy(c->m, k, (av_attn_kind)i, t, err) : add_sets(k, (av_attn_kind)i, t, err);
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
    char buf[24];
    snprintf(buf, sizeof buf, "#%d", ids[i]);
    return av_strdup(buf);
}

int av_cap_set_tokens(const av_model *m, av_trace *t, const int32_t *ids, size_t n, av_err *err) {
    char **labels = calloc(n ? n : 1, sizeof *labels);
    int32_t *copy = malloc(sizeof *copy * (n ? n : 1));
    int ok = labels && copy;
    for (size_t i = 0; ok && i < n; i++)
        ok = (labels[i] = token_label(m, ids, n, i)) != NULL;
    if (!ok) {
        for (size_t i = 0; labels && i < n; i++)
            free(labels[i]);
        free(labels);
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
        json_array_append_new(arr, s ? s : json_string("\xEF\xBF\xBD"));
        free(label);
    }
    char *text = arr ? json_dumps(arr, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
    json_decref(arr);
    int rc = text ? av_trace_set_meta(t, key, text, err) : av_errf(err, "out of memory");
    free(text);
    return rc;
}
