/* Attention traces: safetensors files with attn.<kind>.<layer> tensors [n_heads, n_query, n_key] and
 * metadata (format, version, model, arch, tokens, token_ids). See docs/TRACE_FORMAT.md. */
#include "model/block.h" /* av_tensor_f32 */
#include "trace.h"

#include "trace/logprobs.h"

#include <stdlib.h>
#include <string.h>

av_trace *av_trace_new(void) {
    av_trace *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->meta = json_object();
    t->store_dtype = AV_DTYPE_F32;
    if (!t->meta) {
        free(t);
        return NULL;
    }
    pthread_mutex_init(&t->lock, NULL);
    json_object_set_new(t->meta, "format", json_string(AV_TRACE_FORMAT));
    /* lazy kinds make it 2; log-probabilities, overviews, q/k, images, token types 3 */
    json_object_set_new(t->meta, "version", json_string("1"));
    return t;
}

void av_trace_free(av_trace *t) {
    if (!t) return;
    av_strings_free(t->tokens, (size_t)t->n_tokens);
    free(t->token_ids);
    for (int i = 0; i < t->n_sets; i++)
        free(t->sets[i].owned);
    free(t->sets);
    for (int i = 0; t->vnorm && i < t->n_vnorm; i++)
        free(t->vnorm[i]);
    free(t->vnorm);
    free(t->vnorm_stored);
    free(t->logits);
    free(t->image);
    for (int k = 0; k < AV_ATTN_KIND_COUNT; k++)
        av_lazy_free(&t->lazy_kinds[k]);
    av_extra_free(t);
    pthread_mutex_destroy(&t->lock);
    json_decref(t->meta);
    if (t->loaded) av_st_close(&t->file);
    if (t->prealloc) av_st_prealloc_free(t->prealloc);
    free(t->prealloc);
    av_gen_free(t->gen);
    free(t);
}

int av_trace_set_meta(av_trace *t, const char *key, const char *value, av_err *err) {
    if (json_object_set_new(t->meta, key, json_string(value)))
        return av_errf(err, "trace metadata '%s': value is not valid UTF-8", key);
    return 0;
}

int av_trace_set_meta_json(av_trace *t, const char *key, json_t *v, size_t flags, av_err *err) {
    char *text = v ? json_dumps(v, JSON_COMPACT | flags) : NULL;
    json_decref(v);
    int rc = text ? av_trace_set_meta(t, key, text, err) : av_errf(err, "out of memory");
    free(text);
    return rc;
}

int av_trace_set_meta_strings(av_trace *t, const char *key, char *const *s, int n, av_err *err) {
    json_t *a = json_array();
    for (int i = 0; a && i < n; i++) {
        json_t *js = json_string(s[i]);
        json_array_append_new(a, js ? js : json_string(AV_UTF8_REPLACEMENT)); /* invalid UTF-8: U+FFFD */
    }
    return av_trace_set_meta_json(t, key, a, JSON_ENSURE_ASCII, err);
}

char *av_trace_id_label(int32_t id) {
    char buf[24];
    snprintf(buf, sizeof buf, "#%d", id);
    return av_strdup(buf);
}

int av_trace_set_meta_int(av_trace *t, const char *key, int v, av_err *err) {
    char buf[32];
    snprintf(buf, sizeof buf, "%d", v);
    return av_trace_set_meta(t, key, buf, err);
}

int av_trace_need_version(av_trace *t, int version, av_err *err) {
    const char *v = av_trace_meta(t, "version");
    return v && atoi(v) >= version ? 0 : av_trace_set_meta_int(t, "version", version, err);
}

int av_trace_set_tokens(av_trace *t, char **tokens, int32_t *ids, int n, av_err *err) {
    json_t *ji = json_array();
    for (int i = 0; ji && i < n; i++)
        json_array_append_new(ji, json_integer(ids[i]));
    int rc = av_trace_set_meta_strings(t, "tokens", tokens, n, err) ||
             av_trace_set_meta_json(t, "token_ids", ji, 0, err);
    t->tokens = tokens;
    t->token_ids = ids;
    t->n_tokens = n;
    return rc;
}

static int add_set(av_trace *t, av_attn_kind kind, int layer, av_err *err) {
    if (t->n_sets == t->cap_sets) {
        int cap = t->cap_sets ? 2 * t->cap_sets : 16;
        av_attn_set *p = realloc(t->sets, sizeof *p * (size_t)cap);
        if (!p) return av_errf(err, "out of memory");
        t->sets = p;
        t->cap_sets = cap;
    }
    av_attn_set *s = &t->sets[t->n_sets++];
    memset(s, 0, sizeof *s);
    s->kind = kind;
    s->layer = layer;
    return 0;
}

static int in_prealloc(const av_trace *t, const void *p) {
    const unsigned char *b = p;
    return t->prealloc && b >= t->prealloc->map && b < t->prealloc->map + t->prealloc->map_len;
}

/* Readers take a kind's [n_heads, n_query, n_key] from its layer 0 and apply it to every layer, so all layers
 * of a kind must share it (issue #19: a smaller layer 1 was read past its end). Checked against the kind's
 * first set, which is found early. */
static int check_same_shape(const av_trace *t, av_attn_kind kind, int layer, int n_heads, int n_query,
                            int n_key, av_err *err) {
    for (int i = 0; i < t->n_sets; i++) {
        const av_attn_view *v = &t->sets[i].view;
        if (t->sets[i].kind != kind) continue;
        if (v->n_heads == n_heads && v->n_query == n_query && v->n_key == n_key) return 0;
        return av_errf(
            err,
            "'%s' attention of layer %d is [%d, %d, %d] but of layer %d [%d, %d, %d]: every layer of a "
            "kind must have the same heads, queries and keys",
            av_attn_kind_name(kind), layer, n_heads, n_query, n_key, t->sets[i].layer, v->n_heads, v->n_query,
            v->n_key);
    }
    return 0;
}

int av_trace_add_attn(av_trace *t, av_attn_kind kind, int layer, int n_heads, int n_query, int n_key,
                      float *data, av_err *err) {
    float *owned = in_prealloc(t, data) ? NULL : data;
    if (check_same_shape(t, kind, layer, n_heads, n_query, n_key, err) || add_set(t, kind, layer, err)) {
        free(owned);
        return -1;
    }
    av_attn_set *s = &t->sets[t->n_sets - 1];
    s->owned = owned;
    s->view = (av_attn_view){n_heads, n_query, n_key, data};
    return 0;
}

int av_trace_add_attn_f16(av_trace *t, av_attn_kind kind, int layer, int n_heads, int n_query, int n_key,
                          const uint16_t *data, av_err *err) {
    if (!in_prealloc(t, data)) return av_errf(err, "F16 attention must lie in the trace's output file");
    if (check_same_shape(t, kind, layer, n_heads, n_query, n_key, err) || add_set(t, kind, layer, err))
        return -1;
    av_attn_set *s = &t->sets[t->n_sets - 1];
    s->f16 = data;
    s->view = (av_attn_view){n_heads, n_query, n_key, NULL};
    return 0;
}

/* ---- queries ---- */

const char *av_trace_meta(const av_trace *t, const char *key) { return av_json_str(t->meta, key); }
int av_trace_n_tokens(const av_trace *t) { return t->n_tokens; }
const char *av_trace_token(const av_trace *t, int i) {
    return i >= 0 && i < t->n_tokens ? t->tokens[i] : NULL;
}
int av_trace_token_id(const av_trace *t, int i) { return i >= 0 && i < t->n_tokens ? t->token_ids[i] : -1; }

int av_trace_n_layers(const av_trace *t, av_attn_kind kind) {
    if ((unsigned)kind >= AV_ATTN_KIND_COUNT) return 0;
    if (t->lazy_kinds[kind].n_layers && t->lazy_kinds[kind].lazy) return t->lazy_kinds[kind].n_layers;
    int n = 0;
    for (int i = 0; i < t->n_sets; i++)
        if (t->sets[i].kind == kind && t->sets[i].layer + 1 > n) n = t->sets[i].layer + 1;
    return n;
}

#define AV_LAZY_MATERIALIZE_MAX ((size_t)1 << 30)

static int trace_attn_locked(av_trace *t, av_attn_kind kind, int layer, av_attn_view *out, av_err *err);

int av_trace_attn(const av_trace *t, av_attn_kind kind, int layer, av_attn_view *out, av_err *err) {
    av_trace *mt = (av_trace *)t; /* conversions are cached under the lock; the trace is logically const */
    pthread_mutex_lock(&mt->lock);
    int rc = trace_attn_locked(mt, kind, layer, out, err);
    pthread_mutex_unlock(&mt->lock);
    return rc;
}

static int trace_attn_locked(av_trace *t, av_attn_kind kind, int layer, av_attn_view *out, av_err *err) {
    for (int i = 0; i < t->n_sets; i++) {
        av_attn_set *s = &t->sets[i];
        if (s->kind != kind || s->layer != layer) continue;
        if (!s->view.data && s->f16) { /* F16 in the file: convert once, keep */
            size_t n = (size_t)s->view.n_heads * (size_t)s->view.n_query * (size_t)s->view.n_key;
            float *f = malloc(sizeof(float) * (n ? n : 1));
            if (!f) return av_errf(err, "out of memory converting attention of layer %d", layer);
            av_dequantize(AV_DTYPE_F16, s->f16, f, (int64_t)n);
            s->owned = f;
            s->view.data = f;
        }
        *out = s->view;
        return 0;
    }
    const av_lazy_kind *lz = (unsigned)kind < AV_ATTN_KIND_COUNT ? &t->lazy_kinds[kind] : NULL;
    float *a;
    if (lz && lz->lazy && layer >= 0 && layer < lz->n_layers) { /* lazy: materialized once, kept as a set */
        if (av_trace_lazy_materialize(t, kind, layer, AV_LAZY_MATERIALIZE_MAX, &a, err)) return -1;
        if (av_trace_add_attn(t, kind, layer, lz->n_heads, lz->n_query, lz->n_key, a, err)) return -1;
        *out = t->sets[t->n_sets - 1].view;
        return 0;
    }
    int n = av_trace_n_layers(t, kind);
    if (n == 0) return av_errf(err, "the trace has no '%s' attention", av_attn_kind_name(kind));
    return av_errf(err, "layer %d is out of range: the trace has %s layers 0..%d", layer,
                   av_attn_kind_name(kind), n - 1);
}

int av_trace_set_vnorm(av_trace *t, float **vnorm, int n_layers, int n_heads, av_err *err) {
    t->vnorm = vnorm;
    t->n_vnorm = n_layers;
    t->vnorm_heads = n_heads;
    return 0;
}

void av_trace_set_logits(av_trace *t, float *logits, int n_tokens, int vocab) {
    t->logits = logits;
    t->logits_view = av_tensor_f32(logits, n_tokens, vocab);
}

int av_trace_vnorm(const av_trace *t, int layer, av_tensor *out, av_err *err) {
    if (layer < 0 || layer >= t->n_vnorm ||
        (!(t->vnorm && t->vnorm[layer]) && !(t->vnorm_stored && t->vnorm_stored[layer])))
        return av_errf(err, "the trace has no value norms (vnorm.%d) for layer %d", layer, layer);
    *out = t->vnorm && t->vnorm[layer] ? av_tensor_f32(t->vnorm[layer], t->vnorm_heads, t->n_tokens)
                                       : *t->vnorm_stored[layer];
    return 0;
}

int av_trace_set_image(av_trace *t, uint8_t *rgb, int h, int w, av_err *err) {
    size_t plane = (size_t)h * (size_t)w;
    uint8_t *chw = malloc(3 * plane); /* (3, h, w) */
    if (!chw) {
        free(rgb);
        return av_errf(err, "out of memory");
    }
    for (size_t i = 0; i < plane; i++)
        for (int c = 0; c < 3; c++)
            chw[(size_t)c * plane + i] = rgb[3 * i + (size_t)c];
    free(rgb);
    free(t->image);
    t->image = chw;
    t->image_view = (av_tensor){AV_DTYPE_U8, 3, {3, h, w}, chw, 3 * plane};
    return av_trace_need_version(t, 3, err);
}

int av_trace_image(const av_trace *t, av_tensor *out) {
    if (!t->image_view.data) return -1;
    *out = t->image_view;
    return 0;
}

int av_trace_logits(const av_trace *t, av_tensor *out) {
    if (!t->logits_view.data) return -1;
    *out = t->logits_view;
    return 0;
}

/* ---- save ---- */

int av_trace_save(const av_trace *t, const char *path, av_err *err) {
    av_st_writer w;
    av_st_writer_init(&w);
    int rc = 0;
    const char *key;
    json_t *val;
    json_object_foreach(t->meta, key, val) {
        if (json_is_string(val) && av_st_writer_meta(&w, key, json_string_value(val), err)) rc = -1;
    }
    for (int i = 0; !rc && i < t->n_sets; i++) { /* materialized layers of lazy kinds stay out */
        av_attn_view v;
        const av_attn_set *s = &t->sets[i];
        if (t->lazy_kinds[s->kind].lazy) continue;
        char name[64];
        snprintf(name, sizeof name, "attn.%s.%d", av_attn_kind_name(s->kind), s->layer);
        int64_t shape[3] = {s->view.n_heads, s->view.n_query, s->view.n_key};
        if (s->f16 && t->store_dtype == AV_DTYPE_F16) { /* as it is: never converted to f32 and back */
            rc = av_st_writer_add(&w, name, AV_DTYPE_F16, AV_DTYPE_F16, 3, shape, s->f16, err);
            continue;
        }
        if (av_trace_attn(t, s->kind, s->layer, &v, err)) {
            rc = -1;
            break;
        }
        rc = av_st_writer_add(&w, name, AV_DTYPE_F32, t->store_dtype, 3, shape, v.data, err);
    }
    /* queries, keys and overviews next: a lazy run laid its output file out in this order (capture.c) */
    if (!rc) rc = av_lazy_save(t, &w, 0, err);
    for (int l = 0; !rc && l < t->n_vnorm; l++) {
        av_tensor v;
        char name[32];
        if (av_trace_vnorm(t, l, &v, NULL)) continue;
        snprintf(name, sizeof name, "vnorm.%d", l);
        rc = av_st_writer_add(&w, name, AV_DTYPE_F32, AV_DTYPE_F32, 2, v.shape, v.data, err);
    }
    if (!rc && t->logits_view.data) {
        rc = av_st_writer_add(&w, "logits", AV_DTYPE_F32, AV_DTYPE_F32, 2, t->logits_view.shape,
                              t->logits_view.data, err);
    }
    if (!rc) rc = av_extra_save(t, &w, err);   /* F32 and I32 */
    if (!rc) rc = av_lp_save(t, &w, err);      /* F32 and I32 */
    if (!rc) rc = av_lazy_save(t, &w, 1, err); /* last: U8 key masks and image leave the others aligned */
    if (!rc && t->image_view.data)
        rc = av_st_writer_add(&w, "image", AV_DTYPE_U8, AV_DTYPE_U8, 3, t->image_view.shape,
                              t->image_view.data, err);
    if (!rc) { /* captured straight into this file: only the header and the small tensors are left to write */
        int in_place = t->prealloc && t->prealloc->file.fp && strcmp(path, t->prealloc->file.path) == 0
                           ? av_st_prealloc_commit(t->prealloc, &w, err)
                           : 1;
        rc = in_place == 1 ? av_st_writer_save(&w, path, err) : in_place;
    }
    av_st_writer_free(&w);
    return rc;
}

/* ---- load ---- */

static int parse_tokens(av_trace *t, const char *path, av_err *err) {
    const char *ts = av_trace_meta(t, "tokens"), *is = av_trace_meta(t, "token_ids");
    if (!ts) return av_errf(err, "%s: trace metadata has no 'tokens'", path);
    json_error_t je;
    json_t *jt = json_loads(ts, 0, &je), *ji = is ? json_loads(is, 0, &je) : NULL;
    int rc = 0;
    if (!json_is_array(jt) || (is && !json_is_array(ji))) {
        rc = av_errf(err, "%s: trace metadata 'tokens'/'token_ids' must be JSON arrays", path);
        goto done;
    }
    size_t n = json_array_size(jt);
    if (ji && json_array_size(ji) != n) {
        rc = av_errf(err, "%s: %zu tokens but %zu token ids", path, n, json_array_size(ji));
        goto done;
    }
    if (n > (size_t)INT32_MAX / 2) {
        rc = av_errf(err, "%s: too many tokens", path);
        goto done;
    }
    t->tokens = calloc(n ? n : 1, sizeof *t->tokens);
    t->token_ids = calloc(n ? n : 1, sizeof *t->token_ids);
    if (!t->tokens || !t->token_ids) {
        rc = av_errf(err, "out of memory");
        goto done;
    }
    t->n_tokens = (int)n;
    for (size_t i = 0; i < n; i++) {
        json_t *s = json_array_get(jt, i);
        t->tokens[i] = av_strdup(json_is_string(s) ? json_string_value(s) : "?");
        json_t *id = ji ? json_array_get(ji, i) : NULL;
        t->token_ids[i] = json_is_integer(id) ? (int32_t)json_integer_value(id) : -1;
        if (!t->tokens[i]) {
            rc = av_errf(err, "out of memory");
            goto done;
        }
    }
done:
    json_decref(jt);
    json_decref(ji);
    return rc;
}

/* "attn.<kind>.<layer>" -> kind, layer; 0 on a match (tensors of kinds this version does not know are
 * skipped). */
static int parse_attn_name(const char *name, av_attn_kind *kind, int *layer) {
    if (strncmp(name, "attn.", 5) != 0) return -1;
    const char *k = name + 5, *dot = strchr(k, '.');
    char buf[16];
    if (!dot || dot == k || dot - k >= (long)sizeof buf) return -1;
    char *end;
    long l = strtol(dot + 1, &end, 10);
    if (*end || end == dot + 1 || l < 0 || l > 100000) return -1;
    memcpy(buf, k, (size_t)(dot - k));
    buf[dot - k] = 0;
    *layer = (int)l;
    return av_attn_kind_parse(buf, kind);
}

static int cmp_sets(const void *a, const void *b) {
    const av_attn_set *x = a, *y = b;
    int c = (x->kind > y->kind) - (x->kind < y->kind);
    return c ? c : (x->layer > y->layer) - (x->layer < y->layer);
}

/* The attention tensors of a file, sorted by kind and layer: each kind has layers 0..n-1, each once, all of
 * one shape (O(n log n): a hostile file may hold very many). */
static int check_layers(av_trace *t, const char *path, av_err *err) {
    if (t->n_sets > 1) qsort(t->sets, (size_t)t->n_sets, sizeof *t->sets, cmp_sets);
    for (int i = 0, first = 0; i < t->n_sets; i++) {
        const av_attn_set *s = &t->sets[i], *f;
        if (i > 0 && s->kind != t->sets[i - 1].kind) first = i;
        f = &t->sets[first];
        if (s->layer != i - first)
            return av_errf(err,
                           "%s: 'attn.%s.%d' %s: layers of a kind must be numbered 0, 1, 2, ... once each",
                           path, av_attn_kind_name(s->kind), s->layer,
                           s->layer < i - first ? "appears twice" : "follows a missing layer");
        if (s->view.n_heads != f->view.n_heads || s->view.n_query != f->view.n_query ||
            s->view.n_key != f->view.n_key)
            return av_errf(
                err,
                "%s: 'attn.%s.%d' is [%d, %d, %d] but 'attn.%s.0' is [%d, %d, %d]: every layer of a kind "
                "must have the same heads, queries and keys",
                path, av_attn_kind_name(s->kind), s->layer, s->view.n_heads, s->view.n_query, s->view.n_key,
                av_attn_kind_name(f->kind), f->view.n_heads, f->view.n_query, f->view.n_key);
    }
    return 0;
}

/* "vnorm.<layer>" F32 [n_heads, n_tokens]: recorded in t->vnorm_stored. */
static int load_vnorm(av_trace *t, const av_st_entry *e, const char *path, av_err *err) {
    char *end;
    long l = strtol(e->name + 6, &end, 10);
    if (*end || l < 0 || l > 100000 || e->t.dtype != AV_DTYPE_F32 || e->t.ndim != 2 ||
        e->t.shape[1] != t->n_tokens)
        return av_errf(err, "%s: '%s' must be F32 [n_heads, n_tokens]", path, e->name);
    if (l >= t->n_vnorm) {
        const av_tensor **p = realloc(t->vnorm_stored, sizeof *p * (size_t)(l + 1));
        if (!p) return av_errf(err, "out of memory");
        for (long k = t->n_vnorm; k <= l; k++)
            p[k] = NULL;
        t->vnorm_stored = p;
        t->n_vnorm = (int)l + 1;
    }
    t->vnorm_stored[l] = &e->t;
    return 0;
}

/* One tensor of a loaded file: logits, value norms, the image, attention; others are read elsewhere. */
static int load_entry(av_trace *t, const av_st_entry *e, const char *path, av_err *err) {
    av_attn_kind kind;
    int layer;
    if (strcmp(e->name, "logits") == 0) {
        if (e->t.dtype != AV_DTYPE_F32 || e->t.ndim != 2 || e->t.shape[0] != t->n_tokens)
            return av_errf(err, "%s: 'logits' must be F32 [n_tokens, vocab]", path);
        t->logits_view = e->t;
        return 0;
    }
    if (strncmp(e->name, "vnorm.", 6) == 0) return load_vnorm(t, e, path, err);
    if (strcmp(e->name, "image") == 0) { /* U8: the crop an image model saw; F32: a generated image (t2i) */
        if ((e->t.dtype != AV_DTYPE_U8 && e->t.dtype != AV_DTYPE_F32) || e->t.ndim != 3 || e->t.shape[0] != 3)
            return av_errf(err, "%s: 'image' must be U8 or F32 [3, height, width]", path);
        if (e->t.dtype == AV_DTYPE_U8) t->image_view = e->t;
        return 0;
    }
    if (parse_attn_name(e->name, &kind, &layer)) return 0; /* other tensors (q/k...) are optional */
    if (e->t.ndim != 3 || (e->t.dtype != AV_DTYPE_F32 && e->t.dtype != AV_DTYPE_F16))
        return av_errf(err, "%s: tensor '%s' must be F32 or F16 [n_heads, n_query, n_key]", path, e->name);
    if (e->t.shape[0] <= 0 || e->t.shape[1] <= 0 || e->t.shape[2] <= 0 || e->t.shape[0] > 65536 ||
        e->t.shape[1] > INT32_MAX / 2 || e->t.shape[2] > INT32_MAX / 2)
        return av_errf(err, "%s: tensor '%s' has an empty or absurd shape", path, e->name);
    if (kind == AV_ATTN_SELF && (e->t.shape[1] != t->n_tokens || e->t.shape[2] != t->n_tokens))
        return av_errf(err, "%s: '%s' is [%lld, %lld, %lld] but the trace has %d tokens", path, e->name,
                       (long long)e->t.shape[0], (long long)e->t.shape[1], (long long)e->t.shape[2],
                       t->n_tokens);
    if (add_set(t, kind, layer, err)) return -1;
    av_attn_set *s = &t->sets[t->n_sets - 1];
    s->f16 = e->t.dtype == AV_DTYPE_F16 ? e->t.data : NULL;
    s->view = (av_attn_view){(int)e->t.shape[0], (int)e->t.shape[1], (int)e->t.shape[2],
                             e->t.dtype == AV_DTYPE_F32 ? e->t.data : NULL};
    if (e->t.dtype == AV_DTYPE_F16) t->store_dtype = AV_DTYPE_F16;
    return 0;
}

int av_trace_load(const char *path, av_trace **out, av_err *err) {
    *out = NULL;
    av_trace *t = av_trace_new();
    if (!t) return av_errf(err, "out of memory");
    if (av_st_open(path, &t->file, err)) {
        av_trace_free(t);
        return -1;
    }
    t->loaded = 1;
    const char *fmt = av_st_meta(&t->file, "format");
    if (!fmt || strcmp(fmt, AV_TRACE_FORMAT) != 0) {
        av_errf(err, "%s: not an attnviz trace (metadata 'format' is %s%.64s%s)", path, fmt ? "'" : "",
                fmt ? fmt : "missing", fmt ? "'" : ""); /* before the free: fmt points into the file */
        av_trace_free(t);
        return -1;
    }
    json_decref(t->meta);
    t->meta = json_deep_copy(t->file.metadata);
    if (parse_tokens(t, path, err)) goto fail;
    for (int i = 0; i < t->file.n; i++)
        if (load_entry(t, &t->file.entries[i], path, err)) goto fail;
    if (check_layers(t, path, err)) goto fail;
    const char *lazy = av_trace_meta(t, "lazy"), *qk = av_trace_meta(t, "qk");
    if (((lazy && strcmp(lazy, "1") == 0) || (qk && strcmp(qk, "1") == 0)) && av_lazy_load(t, path, err))
        goto fail;
    if (av_extra_load(t, path, err) || av_lp_load(t, path, err)) goto fail;
    /* attribution and lens traces may hold no attention (attnviz attribute --no-attention) */
    if (t->n_sets == 0 && !t->lazy && t->n_extras == 0 && !(t->gen && t->gen->lp)) {
        av_errf(err,
                "%s: the trace holds no attention tensors (attn.<kind>.<layer>), no log-probabilities and no "
                "attribution or logit lens",
                path);
        goto fail;
    }
    *out = t;
    return 0;
fail:
    av_trace_free(t);
    return -1;
}
