/* Model export to GGUF and Hugging Face directories. Tensors are handed to the writers as the model's own
 * views (in their stored type); a writer converts a few rows at a time where the written type differs. q/k
 * rows are permuted between Meta's interleaved RoPE order (llama2.c, GGUF) and HF's rotate-half order: HF row
 * h*hd + j*hd/2 + i holds Meta row h*hd + 2i + j (w.view(heads, hd/2, 2, dim).transpose(1, 2)).
 */
#include "export.h"
#include "io/gguf.h"
#include "kernels/kernels.h"
#include "tok/tok.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

av_export_params av_export_default_params(void) { return (av_export_params){AV_DTYPE_F32, 1, 0}; }

enum { PERM_NONE = 0, PERM_TO_HALF, PERM_TO_INTERLEAVED };

/* Buffers made during one export (permuted or dequantized copies). */
typedef struct ex_bufs {
    void **p;
    int n, cap;
} ex_bufs;

static void *ex_alloc(ex_bufs *b, size_t n, av_err *err) {
    if (b->n == b->cap) {
        int cap = b->cap ? 2 * b->cap : 64;
        void **grown = realloc(b->p, sizeof *grown * (size_t)cap);
        if (!grown) {
            av_errf(err, "out of memory");
            return NULL;
        }
        b->p = grown;
        b->cap = cap;
    }
    void *p = av_malloc_checked(n, err);
    if (p) b->p[b->n++] = p;
    return p;
}

static void ex_free(ex_bufs *b) {
    for (int i = 0; i < b->n; i++)
        free(b->p[i]);
    free(b->p);
    memset(b, 0, sizeof *b);
}

/* One tensor to write: its data after permutation. */
typedef struct ex_tensor {
    char name[96];
    const av_tensor *src;
    int perm, heads; /* q/k row permutation (PERM_*) over heads of head_dim rows */
    av_dtype dtype;  /* of data: the source type */
    av_dtype dst;    /* written type */
    const void *data;
    size_t dst_bytes; /* written size */
} ex_tensor;

/* Fills e->data/e->dtype: permutes whole rows (any dtype: rows are whole blocks). */
static int prepare(ex_bufs *b, ex_tensor *e, int head_dim, av_err *err) {
    const av_tensor *t = e->src;
    int perm = e->perm, n_heads = e->heads;
    int64_t rows = t->ndim == 2 ? t->shape[0] : 1;
    e->data = t->data;
    e->dtype = t->dtype;
    if (perm != PERM_NONE) {
        if (t->ndim != 2 || rows != (int64_t)n_heads * head_dim || head_dim % 2)
            return av_errf(err, "%s: cannot permute %lld rows as %d heads of %d", e->name, (long long)rows,
                           n_heads, head_dim);
        size_t row_bytes = av_tensor_row_bytes(t);
        uint8_t *dst = ex_alloc(b, t->nbytes, err); /* (rows, row_bytes) */
        if (!dst) return -1;
        const uint8_t *src = t->data;
        int half = head_dim / 2;
        for (int h = 0; h < n_heads; h++)
            for (int i = 0; i < half; i++)
                for (int j = 0; j < 2; j++) {
                    size_t r_half = (size_t)h * (size_t)head_dim + (size_t)(j * half + i);
                    size_t r_int = (size_t)h * (size_t)head_dim + (size_t)(2 * i + j);
                    size_t dr = perm == PERM_TO_HALF ? r_half : r_int,
                           sr = perm == PERM_TO_HALF ? r_int : r_half;
                    memcpy(dst + dr * row_bytes, src + sr * row_bytes, row_bytes);
                }
        e->data = dst;
    }
    size_t numel = (size_t)av_tensor_numel(t);
    if (!av_dtype_nbytes(e->dst, numel, &e->dst_bytes)) return av_errf(err, "%s: size overflows", e->name);
    return 0;
}

/* Collects every tensor of m under the target's names, in file order, and prepares its data. gguf selects the
 * naming (and keeps 1-D norms F32). */
static int collect(const av_model *m, int gguf, av_dtype want, ex_bufs *b, ex_tensor **out, int *n_out,
                   av_export_report *rep, av_err *err) {
    const av_stack *st = &m->stacks[0];
    int n = 0, to_target = gguf ? (st->cfg.rope == AV_ROPE_HALF ? PERM_TO_INTERLEAVED : PERM_NONE)
                                : (st->cfg.rope == AV_ROPE_INTERLEAVED ? PERM_TO_HALF : PERM_NONE);
    ex_tensor *v = calloc((size_t)(3 + AV_LLAMA_LAYER_WEIGHTS * m->n_layers), sizeof *v); /* (n_tensors) */
    if (!v) return av_errf(err, "out of memory");
    snprintf(v[n].name, sizeof v[n].name, "%s", gguf ? "token_embd.weight" : "model.embed_tokens.weight");
    v[n++].src = &m->tok_emb;
    for (int l = 0; l < m->n_layers; l++) {
        const av_tensor *ts[AV_LLAMA_LAYER_WEIGHTS] = AV_LLAMA_LAYER_WEIGHT_PTRS(&st->blocks[l]);
        for (int k = 0; k < AV_LLAMA_LAYER_WEIGHTS; k++, n++) {
            if (gguf)
                snprintf(v[n].name, sizeof v[n].name, "blk.%d.%s.weight", l, av_llama_gguf_layer_names[k]);
            else
                snprintf(v[n].name, sizeof v[n].name, "model.layers.%d.%s.weight", l,
                         av_llama_hf_layer_names[k]);
            v[n].src = ts[k];
            v[n].perm = k == 1 || k == 2 ? to_target : PERM_NONE;
            v[n].heads = k == 1 ? m->n_heads : m->n_kv_heads;
        }
    }
    snprintf(v[n].name, sizeof v[n].name, "%s", gguf ? "output_norm.weight" : "model.norm.weight");
    v[n++].src = &st->final_norm.w;
    if (!av_model_head_tied(m)) {
        snprintf(v[n].name, sizeof v[n].name, "%s", gguf ? "output.weight" : "lm_head.weight");
        v[n++].src = &m->head.out.w;
    }
    for (int i = 0; i < n; i++) {
        ex_tensor *e = &v[i];
        e->dst = gguf && e->src->ndim != 2 ? AV_DTYPE_F32 : want; /* GGUF norms stay F32 */
        int64_t cols = e->src->shape[e->src->ndim - 1];
        if (cols % av_dtype_block_size(e->dst)) { /* rows that the type's blocks cannot tile */
            int q4_0 = e->dst == AV_DTYPE_Q4_K && cols % av_dtype_block_size(AV_DTYPE_Q4_0) == 0;
            e->dst = q4_0 ? AV_DTYPE_Q4_0 : AV_DTYPE_F16;
            rep->n_fallback++;
            rep->fallback[e->dst]++;
        }
        if (prepare(b, e, m->head_dim, err)) {
            free(v);
            return -1;
        }
    }
    *out = v;
    *n_out = n;
    return 0;
}

/* The exporters write the Llama layout only. */
static int check_exportable(const av_model *m, av_err *err) {
    if (m->family != AV_FAMILY_LLAMA)
        return av_errf(err, "converting %s models is not supported yet (only llama)",
                       m->arch[0] ? m->arch : "these");
    const av_stack *st = &m->stacks[0];
    for (int l = 0; l < m->n_layers; l++) {
        const av_block *B = &st->blocks[l];
        if (B->attn.q.b.data || B->attn.k.b.data || B->attn.v.b.data || B->window > 0 ||
            B->rope_theta != st->blocks[0].rope_theta || B->attn_softcap > 0 || B->q_norm.w.data ||
            B->attn_out_norm.w.data || B->ffn_out_norm.w.data)
            return av_errf(
                err,
                "layer %d has attention biases, a sliding window or other extras: not representable "
                "as llama",
                l);
    }
    if (st->cfg.norm_offset != 0 || st->emb.scale != 1.0f || m->head.softcap > 0)
        return av_errf(err, "the model's norms, embeddings or head are not representable as llama");
    return 0;
}

/* Refuses an existing output unless force; a directory to replace may only hold plain files. */
static int check_target(const char *path, int dir, int force, int *exists, av_err *err) {
    struct stat st;
    *exists = 0;
    if (stat(path, &st) != 0) return 0;
    *exists = 1;
    if (!dir) {
        if (S_ISDIR(st.st_mode)) return av_errf(err, "%s is a directory", path);
        return force ? 0 : av_errf(err, "%s already exists (use --force to replace it)", path);
    }
    if (!S_ISDIR(st.st_mode)) return av_errf(err, "%s exists and is not a directory", path);
    DIR *d = opendir(path);
    if (!d) return av_errf(err, "%s: %s", path, strerror(errno));
    int n = 0, subdirs = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
        n++;
        char sub[4400];
        snprintf(sub, sizeof sub, "%s/%s", path, de->d_name);
        if (stat(sub, &st) == 0 && S_ISDIR(st.st_mode)) subdirs++;
    }
    closedir(d);
    if (n && !force) return av_errf(err, "%s exists and is not empty (use --force to replace it)", path);
    if (subdirs) return av_errf(err, "%s holds subdirectories: not replacing it (remove it first)", path);
    return 0;
}

/* Removes the plain files of a directory, then the directory. */
static void remove_dir(const char *path) {
    DIR *d = opendir(path);
    if (d) {
        struct dirent *de;
        while ((de = readdir(d))) {
            if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
            char sub[4400];
            snprintf(sub, sizeof sub, "%s/%s", path, de->d_name);
            unlink(sub);
        }
        closedir(d);
    }
    rmdir(path);
}

/* ---- GGUF ---- */

static uint32_t gguf_file_type(av_dtype t) {
    switch (t) { /* llama.cpp's general.file_type (LLAMA_FTYPE_*) */
    case AV_DTYPE_F16: return 1;
    case AV_DTYPE_Q4_0: return 2;
    case AV_DTYPE_Q8_0: return 7;
    case AV_DTYPE_Q4_K: return 14; /* MOSTLY_Q4_K_S: every matrix Q4_K */
    case AV_DTYPE_BF16: return 32;
    default: return 0;
    }
}

static int gguf_config(av_gguf_writer *w, const av_model *m, av_dtype type, av_err *err) {
    return av_gguf_writer_str(w, "general.architecture", "llama", err) ||
                   av_gguf_writer_str(w, "general.name", m->name[0] ? m->name : "model", err) ||
                   av_gguf_writer_u32(w, "general.alignment", (uint32_t)w->alignment, err) ||
                   av_gguf_writer_u32(w, "general.file_type", gguf_file_type(type), err) ||
                   av_gguf_writer_u32(w, "llama.vocab_size", (uint32_t)m->vocab_size, err) ||
                   av_gguf_writer_u32(w, "llama.context_length", (uint32_t)m->max_seq_len, err) ||
                   av_gguf_writer_u32(w, "llama.embedding_length", (uint32_t)m->dim, err) ||
                   av_gguf_writer_u32(w, "llama.block_count", (uint32_t)m->n_layers, err) ||
                   av_gguf_writer_u32(w, "llama.feed_forward_length", (uint32_t)m->hidden_dim, err) ||
                   av_gguf_writer_u32(w, "llama.rope.dimension_count", (uint32_t)m->head_dim, err) ||
                   av_gguf_writer_u32(w, "llama.attention.head_count", (uint32_t)m->n_heads, err) ||
                   av_gguf_writer_u32(w, "llama.attention.head_count_kv", (uint32_t)m->n_kv_heads, err) ||
                   av_gguf_writer_f32(w, "llama.attention.layer_norm_rms_epsilon", m->stacks[0].cfg.eps,
                                      err) ||
                   av_gguf_writer_f32(w, "llama.rope.freq_base", m->stacks[0].blocks[0].rope_theta, err)
               ? -1
               : 0;
}

int av_export_gguf(const av_model *m, const char *path, const av_export_params *p, av_export_report *rep,
                   av_err *err) {
    av_export_params defaults = av_export_default_params();
    if (!p) p = &defaults;
    memset(rep, 0, sizeof *rep);
    if (!av_dtype_can_quantize(p->dtype))
        return av_errf(err, "GGUF output supports f32, f16, bf16, q8_0, q4_0 and q4_k, not %s",
                       av_dtype_name(p->dtype));
    if (check_exportable(m, err)) return -1;
    if ((int64_t)m->head_dim * m->n_heads != m->dim)
        return av_errf(err, "head size %d x %d heads differs from dim %d: not representable in GGUF llama",
                       m->head_dim, m->n_heads, m->dim);
    int exists;
    if (check_target(path, 0, p->force, &exists, err)) return -1;
    av_gguf_writer w;
    ex_bufs b = {0};
    ex_tensor *ts = NULL;
    int n = 0, rc = -1;
    av_gguf_writer_init(&w);
    w.codec = &av_quant_codec;
    if (gguf_config(&w, m, p->dtype, err)) goto done;
    if (m->tok && m->tok->n_vocab > 0) {
        if (av_tok_write_gguf(&w, m->tok, err)) goto done;
        rep->tokenizer = 1;
    }
    if (collect(m, 1, p->dtype, &b, &ts, &n, rep, err)) goto done;
    for (int i = 0; i < n; i++) {
        if (av_gguf_writer_tensor(&w, ts[i].name, ts[i].dtype, ts[i].dst, ts[i].src->ndim, ts[i].src->shape,
                                  ts[i].data, err))
            goto done;
        rep->n_bytes += ts[i].dst_bytes;
    }
    rep->n_tensors = n;
    rep->n_shards = 1;
    rc = av_gguf_writer_save(&w, path, err);
done:
    free(ts);
    ex_free(&b);
    av_gguf_writer_free(&w);
    return rc;
}

/* ---- Hugging Face ---- */

static int write_text(const char *path, const char *text, av_err *err) {
    av_atomic_file f;
    if (av_atomic_open(&f, path, err)) return -1;
    if (av_atomic_write(&f, text, strlen(text), err) || av_atomic_write(&f, "\n", 1, err)) {
        av_atomic_abort(&f);
        return -1;
    }
    return av_atomic_commit(&f, err);
}

static int write_json(const char *path, json_t *j, av_err *err) {
    char *text = j ? json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9)) : NULL;
    json_decref(j);
    if (!text) return av_errf(err, "%s: out of memory", path);
    int rc = write_text(path, text, err);
    free(text);
    return rc;
}

/* Shortest decimal that reads back as the same float (1e-05, not 9.99999975e-06). */
static json_t *json_float(float x) {
    char buf[32];
    for (int prec = 6; prec <= 9; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, (double)x);
        if (strtof(buf, NULL) == x) break;
    }
    return json_real(strtod(buf, NULL));
}

static int hf_config(const av_model *m, av_dtype type, const char *path, av_err *err) {
    const char *torch = type == AV_DTYPE_F16 ? "float16" : type == AV_DTYPE_BF16 ? "bfloat16" : "float32";
    json_t *c = json_object();
    if (!c) return av_errf(err, "out of memory");
    json_object_set_new(c, "architectures", json_pack("[s]", "LlamaForCausalLM"));
    json_object_set_new(c, "model_type", json_string("llama"));
    json_object_set_new(c, "hidden_size", json_integer(m->dim));
    json_object_set_new(c, "intermediate_size", json_integer(m->hidden_dim));
    json_object_set_new(c, "num_hidden_layers", json_integer(m->n_layers));
    json_object_set_new(c, "num_attention_heads", json_integer(m->n_heads));
    json_object_set_new(c, "num_key_value_heads", json_integer(m->n_kv_heads));
    json_object_set_new(c, "head_dim", json_integer(m->head_dim));
    json_object_set_new(c, "max_position_embeddings", json_integer(m->max_seq_len));
    json_object_set_new(c, "vocab_size", json_integer(m->vocab_size));
    json_object_set_new(c, "rms_norm_eps", json_float(m->stacks[0].cfg.eps));
    json_object_set_new(c, "rope_theta", json_float(m->stacks[0].blocks[0].rope_theta));
    json_object_set_new(c, "tie_word_embeddings", json_boolean(av_model_head_tied(m)));
    json_object_set_new(c, "hidden_act", json_string("silu"));
    json_object_set_new(c, "attention_bias", json_false());
    json_object_set_new(c, "mlp_bias", json_false());
    json_object_set_new(c, "torch_dtype", json_string(torch));
    if (m->tok) {
        json_object_set_new(c, "bos_token_id", json_integer(m->tok->bos));
        json_object_set_new(c, "eos_token_id", json_integer(m->tok->eos));
    }
    return write_json(path, c, err);
}

/* llama2.c tokenizer file: int32 max piece length, then per token f32 score, i32 length, bytes. The format is
 * SentencePiece BPE with <unk>, BOS, EOS fixed at 0, 1, 2; other tokenizers are not written this way.
 * TODO: write tokenizer.json for the others once the tokenizer.json writer exists. */
/* A piece with SentencePiece's "▁" written as ' ' (llama2.c's spelling) into buf; its length. */
static int32_t llama2c_piece(const av_tokenizer *t, int i, char *buf) {
    int32_t n = 0;
    for (int k = 0; k < t->lens[i]; k++) {
        int meta = t->text == AV_TOK_TEXT_METASPACE && k + 3 <= t->lens[i] &&
                   memcmp(t->pieces[i] + k, "\xE2\x96\x81", 3) == 0;
        buf[n++] = meta ? ' ' : t->pieces[i][k];
        k += meta ? 2 : 0;
    }
    return n;
}

static int hf_tokenizer(const av_tokenizer *t, const char *path, int *written, av_err *err) {
    *written = 0;
    int llama = t->family && strcmp(t->family, "llama") == 0;
    int spm = t->kind == AV_TOK_SPM_BPE || ((t->kind == AV_TOK_SP || t->kind == AV_TOK_GGUF) && llama);
    if (!spm || (t->text != AV_TOK_TEXT_SPACE && t->text != AV_TOK_TEXT_METASPACE) || t->unk != 0 ||
        t->bos != 1 || t->eos != 2)
        return 0;
    int32_t max_len = 1;
    for (int i = 0; i < t->n_vocab; i++)
        max_len = t->lens[i] > max_len ? t->lens[i] : max_len;
    char *buf = malloc((size_t)max_len); /* (max_len) one piece in llama2.c's spelling */
    av_atomic_file f;
    if (!buf || av_atomic_open(&f, path, err)) {
        free(buf);
        return buf ? -1 : av_errf(err, "out of memory");
    }
    int rc = av_atomic_write(&f, &max_len, 4, err);
    for (int i = 0; !rc && i < t->n_vocab; i++) {
        int32_t len = llama2c_piece(t, i, buf);
        rc = av_atomic_write(&f, &t->scores[i], 4, err) || av_atomic_write(&f, &len, 4, err) ||
             av_atomic_write(&f, buf, (size_t)len, err);
    }
    free(buf);
    if (rc) {
        av_atomic_abort(&f);
        return -1;
    }
    *written = 1;
    return av_atomic_commit(&f, err);
}

/* Shard of each tensor, balanced by bytes, every shard non-empty (n_shards <= n). */
static void assign_shards(const ex_tensor *ts, int n, int n_shards, uint64_t total, int *shard) {
    uint64_t before = 0;
    int s = 0;
    for (int i = 0; i < n; i++) {
        int want = total ? (int)((double)before * n_shards / (double)total) : 0;
        if (want > s) s = s + 1;                            /* never skip a shard */
        if (s < n_shards - (n - i)) s = n_shards - (n - i); /* leave one tensor per remaining shard */
        if (s > n_shards - 1) s = n_shards - 1;
        shard[i] = s;
        before += ts[i].dst_bytes;
    }
}

static int hf_weights(const ex_tensor *ts, int n, int n_shards, const char *tmp, av_err *err) {
    int *shard = malloc(sizeof *shard * (size_t)n); /* (n) */
    if (!shard) return av_errf(err, "out of memory");
    uint64_t total = 0;
    for (int i = 0; i < n; i++)
        total += ts[i].dst_bytes;
    assign_shards(ts, n, n_shards, total, shard);
    json_t *map = json_object();
    int rc = map ? 0 : av_errf(err, "out of memory");
    for (int s = 0; !rc && s < n_shards; s++) {
        char file[64], path[4400];
        if (n_shards == 1)
            snprintf(file, sizeof file, "model.safetensors");
        else
            snprintf(file, sizeof file, "model-%05d-of-%05d.safetensors", s + 1, n_shards);
        snprintf(path, sizeof path, "%s/%s", tmp, file);
        av_st_writer w;
        av_st_writer_init(&w);
        w.codec = &av_quant_codec;
        rc = av_st_writer_meta(&w, "format", "pt", err);
        for (int i = 0; !rc && i < n; i++) {
            if (shard[i] != s) continue;
            rc = av_st_writer_add(&w, ts[i].name, ts[i].dtype, ts[i].dst, ts[i].src->ndim, ts[i].src->shape,
                                  ts[i].data, err);
            if (!rc && json_object_set_new(map, ts[i].name, json_string(file)))
                rc = av_errf(err, "out of memory");
        }
        if (!rc) rc = av_st_writer_save(&w, path, err);
        av_st_writer_free(&w);
    }
    free(shard);
    if (rc || n_shards == 1) {
        json_decref(map);
        return rc;
    }
    char path[4400];
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", tmp);
    return write_json(
        path, json_pack("{s:{s:I}, s:o}", "metadata", "total_size", (json_int_t)total, "weight_map", map),
        err);
}

/* Moves tmp into place as dir (replacing an old dir when it exists). */
static int commit_dir(const char *tmp, const char *dir, int exists, av_err *err) {
    if (!exists) {
        if (rename(tmp, dir) != 0) return av_errf(err, "%s: rename failed: %s", dir, strerror(errno));
        return 0;
    }
    char old[4200];
    snprintf(old, sizeof old, "%s.old.%ld", dir, (long)getpid());
    if (rename(dir, old) != 0)
        return av_errf(err, "%s: cannot move the old directory aside: %s", dir, strerror(errno));
    if (rename(tmp, dir) != 0) {
        int e = errno;
        rename(old, dir);
        return av_errf(err, "%s: rename failed: %s", dir, strerror(e));
    }
    remove_dir(old);
    return 0;
}

int av_export_hf(const av_model *m, const char *dir_in, const av_export_params *p, av_export_report *rep,
                 av_err *err) {
    av_export_params defaults = av_export_default_params();
    if (!p) p = &defaults;
    memset(rep, 0, sizeof *rep);
    if (p->dtype != AV_DTYPE_F32 && p->dtype != AV_DTYPE_F16 && p->dtype != AV_DTYPE_BF16)
        return av_errf(err, "Hugging Face output supports f32, f16 and bf16, not %s",
                       av_dtype_name(p->dtype));
    if (check_exportable(m, err)) return -1;
    int n_tensors = 3 + 9 * m->n_layers - (av_model_head_tied(m) ? 1 : 0);
    if (p->n_shards < 1 || p->n_shards > AV_MAX_SHARDS || p->n_shards > n_tensors)
        return av_errf(err, "--shards must be between 1 and %d for this model (got %d)",
                       n_tensors < AV_MAX_SHARDS ? n_tensors : AV_MAX_SHARDS, p->n_shards);
    char dir[4096], tmp[4200], path[4400];
    size_t len = strlen(dir_in);
    while (len > 1 && dir_in[len - 1] == '/')
        len--;
    if (len == 0 || len >= sizeof dir) return av_errf(err, "bad output directory '%s'", dir_in);
    memcpy(dir, dir_in, len);
    dir[len] = 0;
    int exists;
    if (check_target(dir, 1, p->force, &exists, err)) return -1;
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", dir, (long)getpid());
    if (mkdir(tmp, 0755) != 0) return av_errf(err, "%s: cannot create: %s", tmp, strerror(errno));
    ex_bufs b = {0};
    ex_tensor *ts = NULL;
    int n = 0, rc = -1;
    if (collect(m, 0, p->dtype, &b, &ts, &n, rep, err) || hf_weights(ts, n, p->n_shards, tmp, err)) goto done;
    snprintf(path, sizeof path, "%s/config.json", tmp);
    if (hf_config(m, p->dtype, path, err)) goto done;
    snprintf(path, sizeof path, "%s/tokenizer.bin", tmp);
    if (m->tok && hf_tokenizer(m->tok, path, &rep->tokenizer, err)) goto done;
    for (int i = 0; i < n; i++)
        rep->n_bytes += ts[i].dst_bytes;
    rep->n_tensors = n;
    rep->n_shards = p->n_shards;
    rc = commit_dir(tmp, dir, exists, err);
done:
    if (rc) remove_dir(tmp);
    free(ts);
    ex_free(&b);
    return rc;
}
