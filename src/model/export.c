/* Model export to GGUF and Hugging Face directories: the files (atomic GGUF, a directory built aside and
 * renamed, safetensors shards, tokenizer.bin). What to write comes from export_arch.c (tensors under the
 * target's names, in their stored type where possible) and export_cfg.c (GGUF keys, config.json); a writer
 * converts a few rows at a time where the written type differs. */
#include "export_int.h"
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

/* The entries of directory path (without "." and ".."): how many, how many are directories; with unlink_all,
 * each is unlinked (plain files). -1 when it cannot be opened. */
static int scan_dir(const char *path, int unlink_all, int *n, int *subdirs) {
    DIR *d = opendir(path);
    if (!d) return -1;
    struct dirent *de;
    struct stat st;
    *n = *subdirs = 0;
    while ((de = readdir(d))) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
        char sub[4400];
        snprintf(sub, sizeof sub, "%s/%s", path, de->d_name);
        (*n)++;
        if (unlink_all) unlink(sub);
        if (!unlink_all && stat(sub, &st) == 0 && S_ISDIR(st.st_mode)) (*subdirs)++;
    }
    closedir(d);
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
    int n, subdirs;
    if (scan_dir(path, 0, &n, &subdirs)) return av_errf(err, "%s: %s", path, strerror(errno));
    if (n && !force) return av_errf(err, "%s exists and is not empty (use --force to replace it)", path);
    if (subdirs) return av_errf(err, "%s holds subdirectories: not replacing it (remove it first)", path);
    return 0;
}

/* Removes the plain files of a directory, then the directory. */
static void remove_dir(const char *path) {
    int n, subdirs;
    scan_dir(path, 1, &n, &subdirs);
    rmdir(path);
}

/* ---- GGUF ---- */

/* What the written file changes: Gemma's embedding scale, which Hugging Face rounds to the embedding's type
 * and GGUF readers (llama.cpp) compute in f32, when the file's type rounds it differently. */
static void note(const ex_plan *p, av_dtype type, av_export_report *rep) {
    av_model_format fmt = p->gguf ? AV_MODEL_FORMAT_GGUF : AV_MODEL_FORMAT_HF;
    float have = p->m->stacks[0].emb.scale, will = av_arch_gemma_emb_scale(p->c.dim, type, fmt);
    if ((p->target.arch->flags & AV_ARCH_GEMMA) && have != will)
        snprintf(rep->note, sizeof rep->note,
                 "the embedding scale sqrt(%d) becomes %.7g (%s), from %.7g (%s): logits change slightly",
                 p->c.dim, (double)will, p->gguf ? "f32, as llama.cpp computes it" : av_dtype_name(type),
                 (double)have, av_dtype_name(p->m->tok_emb.dtype));
}

int av_export_gguf(const av_model *m, const char *path, const av_export_params *p, av_export_report *rep,
                   av_err *err) {
    av_export_params defaults = av_export_default_params();
    if (!p) p = &defaults;
    memset(rep, 0, sizeof *rep);
    if (!av_dtype_can_quantize(p->dtype))
        return av_errf(err, "GGUF output supports f32, f16, bf16, q8_0, q4_0 and q4_k, not %s",
                       av_dtype_name(p->dtype));
    ex_plan *plan = malloc(sizeof *plan);
    int exists;
    if (!plan) return av_errf(err, "out of memory");
    if (av_ex_plan(m, 1, plan, err) || check_target(path, 0, p->force, &exists, err)) {
        free(plan);
        return -1;
    }
    av_gguf_writer w;
    ex_bufs b = {0};
    ex_tensor *ts = NULL;
    int n = 0, rc = -1;
    av_gguf_writer_init(&w);
    w.codec = &av_quant_codec;
    if (av_ex_gguf_keys(plan, &w, p->dtype, err)) goto done;
    if (m->tok && m->tok->n_vocab > 0) {
        if (av_tok_write_gguf(&w, m->tok, err)) goto done;
        rep->tokenizer = 1;
    }
    if (av_ex_tensors(plan, p->dtype, &b, &ts, &n, rep, err)) goto done;
    for (int i = 0; i < n; i++) {
        if (av_gguf_writer_tensor(&w, ts[i].name, ts[i].src.dtype, ts[i].dst, ts[i].src.ndim, ts[i].src.shape,
                                  ts[i].src.data, err))
            goto done;
        rep->n_bytes += ts[i].dst_bytes;
    }
    note(plan, p->dtype, rep);
    rep->n_tensors = n;
    rep->n_shards = 1;
    rc = av_gguf_writer_save(&w, path, err);
done:
    free(ts);
    free(plan);
    av_ex_free(&b);
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
            rc = av_st_writer_add(&w, ts[i].name, ts[i].src.dtype, ts[i].dst, ts[i].src.ndim, ts[i].src.shape,
                                  ts[i].src.data, err);
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
    char dir[4096], tmp[4200], path[4400];
    size_t len = strlen(dir_in);
    while (len > 1 && dir_in[len - 1] == '/')
        len--;
    if (len == 0 || len >= sizeof dir) return av_errf(err, "bad output directory '%s'", dir_in);
    memcpy(dir, dir_in, len);
    dir[len] = 0;
    ex_plan *plan = malloc(sizeof *plan);
    ex_bufs b = {0};
    ex_tensor *ts = NULL;
    int n = 0, rc = -1, exists = 0, made = 0;
    if (!plan) return av_errf(err, "out of memory");
    if (av_ex_plan(m, 0, plan, err) || av_ex_tensors(plan, p->dtype, &b, &ts, &n, rep, err)) goto done;
    if (p->n_shards < 1 || p->n_shards > AV_MAX_SHARDS || p->n_shards > n) {
        av_errf(err, "--shards must be between 1 and %d for this model (got %d)",
                n < AV_MAX_SHARDS ? n : AV_MAX_SHARDS, p->n_shards);
        goto done;
    }
    if (check_target(dir, 1, p->force, &exists, err)) goto done;
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", dir, (long)getpid());
    if (mkdir(tmp, 0755) != 0) {
        av_errf(err, "%s: cannot create: %s", tmp, strerror(errno));
        goto done;
    }
    made = 1;
    snprintf(path, sizeof path, "%s/config.json", tmp);
    if (hf_weights(ts, n, p->n_shards, tmp, err) ||
        write_json(path, av_ex_hf_config(plan, p->dtype, err), err))
        goto done;
    snprintf(path, sizeof path, "%s/tokenizer.bin", tmp);
    if (m->tok && hf_tokenizer(m->tok, path, &rep->tokenizer, err)) goto done;
    for (int i = 0; i < n; i++)
        rep->n_bytes += ts[i].dst_bytes;
    note(plan, p->dtype, rep);
    rep->n_tensors = n;
    rep->n_shards = p->n_shards;
    rc = commit_dir(tmp, dir, exists, err);
done:
    if (rc && made) remove_dir(tmp);
    free(ts);
    free(plan);
    av_ex_free(&b);
    return rc;
}
