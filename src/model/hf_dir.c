/* Hugging Face / timm directories: the model-type dispatch (av_hf_route: the decoder families of arch.h
 * through hf_decoder.c, the others through their loaders, all through unsupported.c's refusals), config.json
 * accessors, and weights from model.safetensors or from the shards named by model.safetensors.index.json. */
#include "arch.h"
#include "hf.h"
#include "unsupported.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void av_hf_path(char *out, size_t n, const char *dir, const char *file) {
    (void)av_path_join(out, n, dir, file); /* too long: cut, and no file opens */
}

/* ---- config.json ---- */

int av_hf_int(const av_hf_dir *h, const char *key, int64_t def, int64_t lo, int64_t hi, int *out,
              av_err *err) {
    json_t *v = json_object_get(h->cfg, key);
    if ((!v || json_is_null(v)) && def < 0) return av_errf(err, "%s: \"%s\" is missing", h->cfg_path, key);
    int64_t x;
    if (av_json_int(h->cfg, key, def, &x, err)) return av_err_prefix(err, "%s", h->cfg_path);
    if (x < lo || x > hi)
        return av_errf(err, "%s: \"%s\" = %lld is out of range (%lld to %lld)", h->cfg_path, key,
                       (long long)x, (long long)lo, (long long)hi);
    *out = (int)x;
    return 0;
}

int av_hf_num(const av_hf_dir *h, const char *key, double def, double *out, av_err *err) {
    if (av_json_num(h->cfg, key, def, out, err)) return av_err_prefix(err, "%s", h->cfg_path);
    return 0;
}

int av_hf_bool(const av_hf_dir *h, const char *key, int def, int *out, av_err *err) {
    json_t *v = json_object_get(h->cfg, key);
    if (!v || json_is_null(v))
        *out = def;
    else if (json_is_boolean(v))
        *out = json_is_true(v);
    else
        return av_errf(err, "%s: \"%s\" must be true or false", h->cfg_path, key);
    return 0;
}

const char *av_hf_str(const av_hf_dir *h, const char *key) { return av_json_str(h->cfg, key); }

/* ---- weights ---- */

static int open_shard(av_hf_dir *h, const char *file, av_err *err) {
    av_model *m = h->m;
    char path[4096];
    if (m->n_shards >= AV_MAX_SHARDS) return av_errf(err, "%s: more than %d shards", h->dir, AV_MAX_SHARDS);
    av_hf_path(path, sizeof path, h->dir, file);
    if (av_st_open(path, &m->shards[m->n_shards], err)) return -1;
    if (!(h->used[m->n_shards] = calloc((size_t)m->shards[m->n_shards].n + 1, 1))) {
        av_st_close(&m->shards[m->n_shards]);
        return av_errf(err, "out of memory");
    }
    h->shard_names[m->n_shards++] = file;
    return 0;
}

int av_hf_open_weights(av_hf_dir *h, av_err *err) {
    char path[4096];
    av_hf_path(path, sizeof path, h->dir, "model.safetensors.index.json");
    if (access(path, F_OK) != 0) {
        av_hf_path(path, sizeof path, h->dir, "model.safetensors");
        if (access(path, F_OK) == 0) return open_shard(h, "model.safetensors", err);
        av_hf_path(path, sizeof path, h->dir, "pytorch_model.bin");
        if (access(path, F_OK) == 0)
            return av_errf(err,
                           "%s: only pytorch_model.bin (a pickle) is here; attnviz reads safetensors "
                           "(convert it with the safetensors package)",
                           h->dir);
        return av_errf(err, "%s: no model.safetensors or model.safetensors.index.json in the directory",
                       h->dir);
    }
    if (av_json_load_file(path, &h->index, err)) return -1;
    h->weight_map = json_object_get(h->index, "weight_map");
    if (!json_is_object(h->weight_map) || json_object_size(h->weight_map) == 0)
        return av_errf(err, "%s: no \"weight_map\" object", path);
    const char *name;
    json_t *v;
    json_object_foreach(h->weight_map, name, v) {
        const char *file = json_string_value(v);
        int ctrl = 0;
        for (const char *ch = file; ch && *ch; ch++)
            ctrl |= (unsigned char)*ch < 0x20 || *ch == 0x7f;
        if (!file || !*file || ctrl || strchr(file, '/') || strchr(file, '\\') || strstr(file, "..")) {
            char shown_name[128], shown_file[128];
            return av_errf(err, "%s: tensor '%s' names shard '%s': not a plain file name in the directory",
                           path, av_printable(shown_name, sizeof shown_name, name, strlen(name)),
                           file ? av_printable(shown_file, sizeof shown_file, file, strlen(file))
                                : "(not a string)");
        }
        int known = 0;
        for (int i = 0; i < h->m->n_shards && !known; i++)
            known = strcmp(h->shard_names[i], file) == 0;
        if (!known && open_shard(h, file, err))
            return av_err_prefix(err, "model.safetensors.index.json names shard '%.128s'", file);
    }
    return 0;
}

static void hf_close(av_hf_dir *h) {
    for (int i = 0; i < AV_MAX_SHARDS; i++) {
        free(h->used[i]);
        h->used[i] = NULL;
    }
    json_decref(h->cfg);
    json_decref(h->index);
    h->cfg = h->index = h->weight_map = NULL;
}

/* Marks the entry of shard s holding t as used (t points into that shard's entries). */
static const av_tensor *mark_used(const av_hf_dir *h, int s, const av_tensor *t) {
    const av_safetensors *st = &h->m->shards[s];
    for (int i = 0; t && h->used[s] && i < st->n; i++)
        if (&st->entries[i].t == t) h->used[s][i] = 1;
    return t;
}

const av_tensor *av_hf_find(const av_hf_dir *h, const char *name) {
    const av_model *m = h->m;
    if (!h->weight_map) return m->n_shards ? mark_used(h, 0, av_st_find(&m->shards[0], name)) : NULL;
    const char *file = json_string_value(json_object_get(h->weight_map, name));
    for (int i = 0; file && i < m->n_shards; i++)
        if (strcmp(h->shard_names[i], file) == 0) return mark_used(h, i, av_st_find(&m->shards[i], name));
    return NULL;
}

int av_hf_take(const av_hf_dir *h, av_tensor *t, int optional, av_err *err, const char *fmt, ...) {
    char name[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    const av_tensor *found = av_hf_find(h, name);
    memset(t, 0, sizeof *t);
    if (!found) {
        if (optional) return 0;
        if (h->weight_map && json_object_get(h->weight_map, name))
            return av_errf(err, "%s: tensor '%s' is not in the shard the index names", h->dir, name);
        return av_errf(err, "%s: missing tensor '%s'", h->dir, name);
    }
    if (found->dtype != AV_DTYPE_F32 && found->dtype != AV_DTYPE_F16 && found->dtype != AV_DTYPE_BF16)
        return av_errf(err, "%s: tensor '%s' has type %s (weights must be F32, F16 or BF16)", h->dir, name,
                       av_dtype_name(found->dtype));
    *t = *found;
    return 0;
}

/* The Conv1D weight t (in, out) of GPT-2 as a (out, in) copy of the same dtype owned by the model. */
static int transpose(const av_hf_dir *h, av_tensor *t, const char *name, av_err *err) {
    if (t->ndim != 2) return av_errf(err, "%s: tensor '%s' is not a matrix", h->dir, name);
    int64_t rows = t->shape[0], cols = t->shape[1]; /* Conv1D: (in, out) */
    size_t esz = t->dtype == AV_DTYPE_F32 ? 4 : 2;
    uint8_t *dst = malloc(t->nbytes ? t->nbytes : 1); /* (out, in) */
    if (av_model_own(h->m, dst, err)) return -1;
    const uint8_t *src = t->data;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++)
            memcpy(dst + (size_t)(c * rows + r) * esz, src + (size_t)(r * cols + c) * esz, esz);
    t->data = dst;
    t->shape[0] = cols;
    t->shape[1] = rows;
    return 0;
}

int av_hf_take_wb(const av_hf_dir *h, av_tensor *w, av_tensor *b, int flags, av_err *err, const char *fmt,
                  ...) {
    char base[224], name[240];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(base, sizeof base, fmt, ap);
    va_end(ap);
    snprintf(name, sizeof name, "%s.weight", base);
    return av_hf_take(h, w, 0, err, "%s", name) || ((flags & AV_HF_CONV1D) && transpose(h, w, name, err)) ||
                   av_hf_take(h, b, flags & AV_HF_OPT_BIAS, err, "%s.bias", base)
               ? -1
               : 0;
}

/* ---- dispatch ---- */

typedef int (*family_loader)(av_hf_dir *h, av_model *m, av_err *err);

static const struct {
    const char *model_type;
    const char *arch_prefix; /* "architectures"[0] prefix, for configs without model_type */
    family_loader load;
} families[] = {
    {"gpt2", "GPT2", av_gpt2_load},
    {"bert", "Bert", av_bert_load},
    {"roberta", "Roberta", av_bert_load},
    {"distilbert", "DistilBert", av_bert_load},
    {"vit", "ViT", av_vit_load},
    {"marian", "Marian", av_bart_load},
    {"bart", "Bart", av_bart_load},
    {"t5", "T5", av_t5_load},
    {"attnviz-t2i", "AttnvizT2I", av_t2i_load},
};
enum { N_FAMILIES = sizeof families / sizeof families[0] };

static int unsupported(const char *path, const char *what, const char *name, av_err *err) {
    char list[512] = "";
    av_arch_list(list, sizeof list, 0);
    for (int i = 0; i < N_FAMILIES; i++)
        snprintf(list + strlen(list), sizeof list - strlen(list), ", %s", families[i].model_type);
    char shown[65];
    return av_errf(err, "%s: %s '%s' is not supported (supported model_type: %s; and timm vit_* checkpoints)",
                   path, what, av_printable(shown, sizeof shown, name, strlen(name)), list);
}

/* The tokenizer beside the weights, found as `--tokenizer DIR` finds it (av_tokenizer_load on the
 * directory: tokenizer.json, vocab.txt, vocab.json + merges.txt, encoder.json + vocab.bpe, tokenizer.model,
 * tokenizer.bin, the llama2.c format `attnviz convert --to hf` writes). strict: a present file that does not
 * load is an error; otherwise it is remembered (m->tok_error), not fatal: --tokenizer can still supply one,
 * and runs that need text report why there is none. */
static int load_tokenizer(const char *dir, av_model *m, int strict, av_err *err) {
    static const char *files[] = {"tokenizer.json", "vocab.txt",       "vocab.json",
                                  "encoder.json",   "tokenizer.model", "tokenizer.bin"};
    char path[4096];
    int any = 0;
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        av_hf_path(path, sizeof path, dir, files[i]);
        any |= access(path, F_OK) == 0;
    }
    av_err e = {{0}};
    if (!any || m->tok || av_tokenizer_load(dir, &m->tok, &e) == 0) return 0;
    if (strict) return av_errf(err, "%s", e.msg);
    snprintf(m->tok_error, sizeof m->tok_error, "%.200s", e.msg);
    return 0;
}

int av_hf_route(const char *dir, av_model *m, av_hf_dir *h, av_err *err) {
    memset(h, 0, sizeof *h);
    h->dir = dir;
    h->m = m;
    av_hf_path(h->cfg_path, sizeof h->cfg_path, dir, "config.json");
    if (av_json_load_file(h->cfg_path, &h->cfg, err)) return -1;
    int rc = -1;
    if (!json_is_object(h->cfg)) {
        av_errf(err, "%s: not a JSON object", h->cfg_path);
        goto done;
    }
    const char *type = av_hf_str(h, "model_type"), *timm = av_hf_str(h, "architecture");
    json_t *archs = json_object_get(h->cfg, "architectures");
    const char *arch0 = json_is_array(archs) ? json_string_value(json_array_get(archs, 0)) : NULL;
    /* the decoder families of arch.h by model_type, else by architectures[0] */
    const av_arch *dec = type ? av_arch_by_hf_type(type) : av_arch_by_hf_class(arch0);
    int found = -1;
    for (int i = 0; i < N_FAMILIES && found < 0 && !dec; i++) {
        if (type)
            found = strcmp(type, families[i].model_type) == 0 ? i : -1;
        else if (arch0)
            found = strncmp(arch0, families[i].arch_prefix, strlen(families[i].arch_prefix)) == 0 ? i : -1;
        else if (timm && strncmp(timm, "vit_", 4) == 0 && families[i].load == av_vit_load)
            found = i;
    }
    if (found < 0 && !dec) {
        if (type)
            unsupported(h->cfg_path, "model_type", type, err);
        else if (arch0)
            unsupported(h->cfg_path, "architecture", arch0, err);
        else if (timm)
            unsupported(h->cfg_path, "timm architecture", timm, err);
        else
            av_errf(err,
                    "%s: no \"model_type\", \"architectures\" or timm \"architecture\": not a model config",
                    h->cfg_path);
        goto done;
    }
    h->model_type = dec ? dec->hf_type : families[found].model_type;
    h->timm = !type && !arch0;
    if (av_hf_refuse_unsupported_keys(h, err) ||
        (dec ? av_hf_decoder_load(h, m, dec, err)
             : av_hf_open_weights(h, err) || families[found].load(h, m, err) ||
                   av_hf_refuse_tie_mismatch(h, err)) ||
        av_hf_refuse_unused_tensors(h, err))
        goto done;
    m->format = AV_MODEL_FORMAT_HF;
    if (dec) /* strict: a decoder's tokenizer file that fails to load is an error */
        rc = load_tokenizer(dir, m, 1, err) ? -1 : 1;
    else
        rc = (load_tokenizer(dir, m, 0, NULL), 1);
done:
    hf_close(h);
    return rc;
}

int av_load_hf_dir(const char *dir, av_model *m, av_err *err) {
    av_hf_dir h;
    return av_hf_route(dir, m, &h, err) < 0 ? -1 : 0;
}
