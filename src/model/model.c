/* Model lifecycle: format detection, tokenizer pairing, shape validation of every family and introspection.
 */
#include "kernels/kernels.h"
#include "model.h"
#include "tok/tok.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

av_model_params av_model_default_params(void) { return (av_model_params){NULL, 0}; }

av_model *av_model_new(void) {
    av_model *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    m->head.scale = 1.0f;
    m->pad_id = m->bos_id = m->eos_id = m->dec_start_id = -1;
    return m;
}

int av_model_own(av_model *m, void *p, av_err *err) {
    if (!p) return av_errf(err, "out of memory");
    void **grown = realloc(m->owned, sizeof(void *) * (size_t)(m->n_owned + 1));
    if (!grown) {
        free(p);
        return av_errf(err, "out of memory");
    }
    m->owned = grown;
    m->owned[m->n_owned++] = p;
    return 0;
}

void av_model_free(av_model *m) {
    if (!m) return;
    for (int i = 0; i < m->n_files; i++)
        av_file_unmap(&m->files[i]);
    for (int i = 0; i < m->n_shards; i++)
        av_st_close(&m->shards[i]);
    for (int i = 0; i < m->n_owned; i++)
        free(m->owned[i]);
    free(m->owned);
    for (int i = 0; i < AV_MAX_STACKS; i++)
        av_stack_free(&m->stacks[i]);
    av_strings_free(m->vision.labels, (size_t)m->head.n_out);
    av_tokenizer_free(m->tok);
    free(m);
}

int av_model_head_tied(const av_model *m) {
    const void *w = m->head.out.w.data;
    int tied = w && w == m->tok_emb.data;
    for (int i = 0; i < m->n_stacks; i++)
        tied |= w && w == m->stacks[i].emb.tok.data;
    return tied;
}

/* ---- validation ---- */

static int check_embed(const av_model *m, const av_stack *st, const char *what, int max_pos, const char *cfg,
                       av_err *err) {
    const av_embed *e = &st->emb;
    int dim = st->cfg.dim;
    char name[96];
    snprintf(name, sizeof name, "%s position embedding", what);
    if (e->pos.data && (e->pos.ndim != 2 || e->pos.shape[1] != dim))
        return av_weight_check(&e->pos, name, e->pos.ndim == 2 ? e->pos.shape[0] : max_pos, dim, 0, cfg, err);
    if (e->pos.data && e->pos.shape[0] < (int64_t)max_pos + e->pos_offset)
        return av_errf(err, "%s: %lld rows for %d positions (offset %d): does not match %s", name,
                       (long long)e->pos.shape[0], max_pos, e->pos_offset, cfg);
    snprintf(name, sizeof name, "%s token embedding", what);
    if (e->tok.data && av_weight_check(&e->tok, name, m->vocab_size, dim, 0, cfg, err)) return -1;
    if (e->type.data && (e->type.ndim != 2 || e->type.shape[1] != dim || e->type.shape[0] < 1))
        return av_weight_check(&e->type, "token type embedding", 1, dim, 0, cfg, err);
    if (e->sinusoidal && dim % 2) return av_errf(err, "%s: sinusoidal positions need an even size", what);
    snprintf(name, sizeof name, "%s embedding norm", what);
    return e->norm.w.data ? av_norm_check(&e->norm, name, dim, cfg, err) : 0;
}

static int check_head(const av_model *m, const char *cfg, av_err *err) {
    const av_head *h = &m->head;
    int dim = m->stacks[m->n_stacks - 1].cfg.dim;
    if (h->dense.w.data && (av_linear_check(&h->dense, "head transform", dim, dim, cfg, err) ||
                            av_norm_check(&h->dense_norm, "head norm", dim, cfg, err)))
        return -1;
    if (h->out.w.data && av_linear_check(&h->out, "output head", h->n_out, dim, cfg, err)) return -1;
    if (!(h->scale > 0) || h->softcap < 0)
        return av_errf(err, "output head: scale and soft-cap out of range");
    return 0;
}

static int check_vision(const av_model *m, const char *cfg, av_err *err) {
    const av_vision *v = &m->vision;
    int dim = m->stacks[0].cfg.dim, P = v->channels * v->patch_size * v->patch_size;
    if (v->grid <= 0 || v->grid * v->patch_size != v->image_size)
        return av_errf(err, "image size %d is not a multiple of the patch size %d", v->image_size,
                       v->patch_size);
    if (m->family == AV_FAMILY_T2I) /* the time token takes the class token's place */
        return av_linear_check(&v->patch, "patch embedding", dim, P, cfg, err);
    if (m->max_seq_len != v->grid * v->grid + 1)
        return av_errf(err, "internal error: image models see [CLS] + %d patches", v->grid * v->grid);
    return av_linear_check(&v->patch, "patch embedding", dim, P, cfg, err) ||
                   av_weight_check(&v->cls_token, "class token", 1, dim, 0, cfg, err)
               ? -1
               : 0;
}

/* The summary fields of av_model_info, from the first stack. */
static void fill_summary(av_model *m) {
    const av_stack_cfg *c = &m->stacks[0].cfg;
    m->dim = c->dim;
    m->hidden_dim = c->hidden;
    m->n_layers = m->stacks[0].n_layers;
    m->n_heads = c->n_heads;
    m->n_kv_heads = c->n_kv_heads;
    m->head_dim = c->head_dim;
}

int av_model_check(av_model *m, av_err *err) {
    /* the Llama loaders read three formats; the others read config.json */
    const char *cfg = m->family == AV_FAMILY_LLAMA ? "the config" : "config.json";
    int vit = m->family == AV_FAMILY_VIT, t2i = m->family == AV_FAMILY_T2I;
    if (m->n_stacks < 1 || m->n_stacks > AV_MAX_STACKS)
        return av_errf(err, "internal error: model without a stack");
    if (m->max_seq_len <= 0 || m->max_seq_len > (1 << 24))
        return av_errf(err, "model context length %d is out of range", m->max_seq_len);
    if (!vit && (m->vocab_size <= 0 || m->vocab_size > (1 << 22)))
        return av_errf(err, "vocabulary size %d is out of range", m->vocab_size);
    for (int i = 0; i < m->n_stacks; i++) {
        av_stack *st = &m->stacks[i];
        const char *what = m->n_stacks == 1 ? "model" : i ? "decoder" : "encoder";
        int max_pos =
            st->emb.pos_from_pad ? m->max_seq_len + m->pad_id + 1 - st->emb.pos_offset : m->max_seq_len;
        if (t2i) /* learned positions of the prompt's tokens, and of the patches only (not the time token) */
            max_pos = i ? m->vision.grid * m->vision.grid : m->diff.max_text;
        if (av_stack_check(st, what, cfg, err) || check_embed(m, st, what, max_pos, cfg, err)) return -1;
    }
    const av_stack_cfg *enc = &m->stacks[0].cfg, *dec = &m->stacks[m->n_stacks - 1].cfg;
    if (dec->dim != enc->dim || dec->n_heads != enc->n_heads)
        return av_errf(err, "decoder and encoder sizes differ (dim %d vs %d, heads %d vs %d)", dec->dim,
                       enc->dim, dec->n_heads, enc->n_heads);
    if (!vit && av_weight_check(&m->tok_emb, "token embedding", m->vocab_size, enc->dim, 0, cfg, err))
        return -1;
    if (check_head(m, cfg, err) || ((vit || t2i) && check_vision(m, cfg, err))) return -1;
    fill_summary(m);
    return 0;
}

static int has_magic(const char *path, const char *magic) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return 0;
    char buf[4] = {0};
    size_t n = fread(buf, 1, 4, fp);
    fclose(fp);
    return n == 4 && memcmp(buf, magic, 4) == 0;
}

static int has_suffix(const char *path, const char *suffix) {
    size_t n = strlen(path), k = strlen(suffix);
    return n >= k && strcmp(path + n - k, suffix) == 0;
}

/* Files that are not models, named before a loader misreads them: images, attnviz traces, and the files of a
 * Hugging Face directory (whose loader needs the directory). Returns -1 with the message, 0 otherwise. */
static int refuse_non_model(const char *path, av_err *err) {
    unsigned char head[8] = {0};
    FILE *fp = fopen(path, "rb");
    size_t n = fp ? fread(head, 1, sizeof head, fp) : 0;
    if (fp) fclose(fp);
    const char *image = n >= 8 && memcmp(head, "\x89PNG\r\n\x1a\n", 8) == 0 ? "PNG"
                        : n >= 3 && memcmp(head, "\xff\xd8\xff", 3) == 0    ? "JPEG"
                                                                            : NULL;
    if (image)
        return av_errf(err,
                       "%s is a %s image, not a model: an image goes to --image, with an image model "
                       "(e.g. --model vit-tiny --image %s)",
                       path, image, av_path_basename(path));
    if (n >= 4 && memcmp(head, "GGUF", 4) == 0) return 0;
    char dir[4096], cfg[4200];
    if (av_path_dirname(path, dir, sizeof dir) || av_path_join(cfg, sizeof cfg, dir, "config.json") ||
        access(cfg, R_OK) != 0) {
        if (has_suffix(path, ".safetensors"))
            return av_errf(
                err,
                "%s: a safetensors file alone is not a model: pass the Hugging Face directory that "
                "holds it with its config.json (an attnviz trace goes to show, render, html, info)",
                path);
        return 0;
    }
    return av_errf(err, "%s is a file inside the model directory %s: pass the directory (--model %s)", path,
                   dir, dir);
}

/* For llama2.c checkpoints without --tokenizer: tokenizer.bin or tok<vocab>.bin next to the model. */
static int find_sibling_tokenizer(const char *model_path, int vocab, char *out, size_t n) {
    char dir[4096], name[32];
    snprintf(name, sizeof name, "tok%d.bin", vocab);
    if (av_path_dirname(model_path, dir, sizeof dir)) return -1;
    if (av_path_join(out, n, dir, name) == 0 && access(out, R_OK) == 0) return 0;
    return av_path_join(out, n, dir, "tokenizer.bin") == 0 && access(out, R_OK) == 0 ? 0 : -1;
}

/* The last path component; a file's name loses its extension ("stories260K.bin"), a directory's keeps it
 * ("vit_tiny_patch16_224.augreg_in21k"). */
static void name_from_path(av_model *m, const char *path, int keep_ext) {
    size_t len = strlen(path);
    while (len > 1 && path[len - 1] == '/')
        len--;
    const char *base = path;
    for (size_t i = 0; i < len; i++)
        if (path[i] == '/') base = path + i + 1;
    size_t blen = (size_t)(path + len - base);
    const char *dot = memchr(base, '.', blen);
    if (dot && dot != base && !keep_ext) blen = (size_t)(dot - base);
    if (blen >= sizeof m->name) blen = sizeof m->name - 1;
    memcpy(m->name, base, blen);
    m->name[blen] = 0;
}

int av_model_load(const char *path, const av_model_params *params, av_model **out, av_err *err) {
    *out = NULL;
    av_model_params defaults = av_model_default_params();
    if (!params) params = &defaults;
    av_kernels_init(); /* one threading layer: ours */
    av_model *m = av_model_new();
    if (!m) return av_errf(err, "out of memory");
    m->n_threads = params->n_threads > 0 ? params->n_threads : av_default_threads();
    int rc, is_dir = av_path_is_dir(path);
    /* by content; a ".gguf" file with a bad magic still goes to the GGUF loader (a clear "bad magic" message)
     */
    if (is_dir)
        rc = av_load_hf_dir(path, m, err);
    else if (refuse_non_model(path, err))
        rc = -1;
    else if (has_magic(path, "GGUF") || has_suffix(path, ".gguf"))
        rc = av_load_gguf(path, m, err);
    else
        rc = av_load_llama2c(path, m, err);
    if (rc == 0 && !m->name[0]) name_from_path(m, path, is_dir);
    if (rc == 0) rc = av_model_check(m, err);
    if (rc == 0 && params->tokenizer_path) {
        av_tokenizer_free(m->tok);
        m->tok = NULL;
        rc = av_tokenizer_load(params->tokenizer_path, &m->tok, err);
    } else if (rc == 0 && !m->tok && m->format == AV_MODEL_FORMAT_LLAMA2C) {
        char tok_path[4096];
        if (find_sibling_tokenizer(path, m->vocab_size, tok_path, sizeof tok_path) == 0)
            rc = av_tokenizer_load(tok_path, &m->tok, err);
    }
    /* Hugging Face configs often pad the vocabulary past the tokenizer's (T5: 32128 for 32100 tokens) */
    int hf = m->format == AV_MODEL_FORMAT_HF;
    if (rc == 0 && m->tok &&
        (hf ? av_tokenizer_vocab_size(m->tok) > m->vocab_size
            : av_tokenizer_vocab_size(m->tok) != m->vocab_size))
        rc = av_errf(
            err, "tokenizer has %d tokens but the model's vocabulary has %d: wrong tokenizer for this model",
            av_tokenizer_vocab_size(m->tok), m->vocab_size);
    if (rc) {
        av_model_free(m);
        return -1;
    }
    *out = m;
    return 0;
}

av_model_info av_model_get_info(const av_model *m) {
    av_model_info info = {m->name,
                          m->arch,
                          m->format,
                          m->dim,
                          m->hidden_dim,
                          m->n_layers,
                          m->n_heads,
                          m->n_kv_heads,
                          m->vocab_size,
                          m->max_seq_len,
                          0,
                          m->family,
                          0};
    const av_head *h = &m->head;
    const av_tensor *ts[] = {&m->tok_emb,        &h->dense.w,        &h->dense.b,
                             &h->dense_norm.w,   &h->dense_norm.b,   &h->out.b,
                             &m->vision.patch.w, &m->vision.patch.b, &m->vision.cls_token};
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++)
        info.n_params += ts[i]->data ? av_tensor_numel(ts[i]) : 0;
    if (h->out.w.data && !av_model_head_tied(m)) info.n_params += av_tensor_numel(&h->out.w);
    for (int i = 0; i < m->n_stacks; i++)
        info.n_params += av_stack_n_params(&m->stacks[i]);
    info.n_dec_layers = m->n_stacks > 1 ? m->stacks[1].n_layers : 0;
    return info;
}

const av_tokenizer *av_model_tokenizer(const av_model *m) { return m->tok; }
