/* Binary form of corpus accumulators and query/key samples: what MPI ranks send to rank 0 and what resumable
 * runs keep in their state files. Little-endian, read back only through the bounded reader with every count
 * checked against the bytes left, so a truncated or corrupted state file is refused with a message. */
#include "corpus_run.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define ACC_MAGIC 0x41435641u /* "AVCA" */
#define QK_MAGIC 0x4b515641u  /* "AVQK" */
#define FORMAT_VERSION 2u     /* 2: attention kinds as enum values; the query/key sample names its kind */
#define MAX_HEADS (1 << 22)

/* ---- writing ---- */

static void put_u32(av_buf *b, uint32_t v) {
    uint8_t x[4];
    for (int i = 0; i < 4; i++)
        x[i] = (uint8_t)(v >> (8 * i));
    av_buf_put(b, x, 4);
}

static void put_u64(av_buf *b, uint64_t v) {
    uint8_t x[8];
    for (int i = 0; i < 8; i++)
        x[i] = (uint8_t)(v >> (8 * i));
    av_buf_put(b, x, 8);
}

static void put_f64(av_buf *b, double v) {
    uint64_t u;
    memcpy(&u, &v, 8);
    put_u64(b, u);
}

static void put_fx(av_buf *b, av_fx v) {
    unsigned __int128 u = (unsigned __int128)v;
    put_u64(b, (uint64_t)u);
    put_u64(b, (uint64_t)(u >> 64));
}

static void put_str(av_buf *b, const char *s) {
    size_t n = strlen(s);
    put_u32(b, (uint32_t)n);
    av_buf_put(b, s, n);
}

static void put_moments(av_buf *b, const av_moments *m) {
    put_fx(b, m->sum);
    put_fx(b, m->sum_sq);
    put_u64(b, m->n);
}

/* ---- reading ---- */

static int get_f64(av_reader *r, double *v, av_err *err) {
    uint64_t u;
    if (av_read_u64(r, &u, err)) return -1;
    memcpy(v, &u, 8);
    return 0;
}

static int get_i64(av_reader *r, int64_t *v, av_err *err) {
    uint64_t u;
    if (av_read_u64(r, &u, err)) return -1;
    *v = (int64_t)u;
    return 0;
}

static int get_fx(av_reader *r, av_fx *v, av_err *err) {
    uint64_t lo, hi;
    if (av_read_u64(r, &lo, err) || av_read_u64(r, &hi, err)) return -1;
    *v = (av_fx)(((unsigned __int128)hi << 64) | lo);
    return 0;
}

static int get_moments(av_reader *r, av_moments *m, av_err *err) {
    return get_fx(r, &m->sum, err) || get_fx(r, &m->sum_sq, err) || av_read_u64(r, &m->n, err) ? -1 : 0;
}

/* A string of at most max bytes into a malloc'd NUL-terminated copy. */
static int get_str(av_reader *r, size_t max, char **out, av_err *err) {
    uint32_t n;
    const void *p;
    if (av_read_u32(r, &n, err)) return -1;
    if (n > max) return av_errf(err, "%s: string of %u bytes at offset %zu is too long", r->name, n, r->pos);
    if (av_read_view(r, &p, n, err)) return -1;
    if (!(*out = av_strndup(p, n))) return av_errf(err, "out of memory");
    return 0;
}

static int get_count(av_reader *r, uint32_t max, size_t item_bytes, uint32_t *n, av_err *err) {
    if (av_read_u32(r, n, err)) return -1;
    if (*n > max || (size_t)*n * item_bytes > av_reader_left(r))
        return av_errf(err, "%s: count %u at offset %zu exceeds the data", r->name, *n, r->pos);
    return 0;
}

/* ---- accumulators ---- */

static void write_layout(av_buf *b, const av_corpus_layout *lay) {
    put_u32(b, (uint32_t)lay->n_groups);
    for (int g = 0; g < lay->n_groups; g++) {
        put_u32(b, (uint32_t)lay->groups[g].kind);
        put_u32(b, (uint32_t)lay->groups[g].n_layers);
        put_u32(b, (uint32_t)lay->groups[g].n_heads);
        put_u32(b, (uint32_t)lay->groups[g].positional);
    }
}

static int read_layout(av_reader *r, av_corpus_layout *lay, av_err *err) {
    memset(lay, 0, sizeof *lay);
    uint32_t n;
    if (get_count(r, AV_CORPUS_MAX_GROUPS, 16, &n, err)) return -1;
    lay->n_groups = (int)n;
    for (int g = 0; g < lay->n_groups; g++) {
        av_corpus_group *x = &lay->groups[g];
        uint32_t kind, L, H, pos;
        if (av_read_u32(r, &kind, err) || av_read_u32(r, &L, err) || av_read_u32(r, &H, err) ||
            av_read_u32(r, &pos, err))
            return -1;
        if (kind >= AV_ATTN_KIND_COUNT || (g > 0 && kind <= (uint32_t)lay->groups[g - 1].kind))
            return av_errf(err, "%s: attention kind %u out of place", r->name, kind);
        x->kind = (av_attn_kind)kind;
        if (L == 0 || H == 0 || L > 4096 || H > 4096 || pos > 1 || (uint64_t)lay->n_heads + L * H > MAX_HEADS)
            return av_errf(err, "%s: implausible attention layout (%u layers x %u heads)", r->name, L, H);
        x->n_layers = (int)L;
        x->n_heads = (int)H;
        x->positional = (int)pos;
        lay->n_heads += (int)(L * H);
    }
    return 0;
}

static void write_bad(av_buf *b, const av_corpus_acc *a) {
    for (int k = 0; k < AV_BAD_COUNT; k++) {
        put_u64(b, a->bad[k]);
        put_u32(b, (uint32_t)a->n_bad_lines[k]);
        for (int i = 0; i < a->n_bad_lines[k]; i++)
            put_u64(b, (uint64_t)a->bad_lines[k][i]);
    }
    put_u64(b, (uint64_t)a->error_line);
    put_str(b, a->error_msg);
}

static int read_bad(av_reader *r, av_corpus_acc *a, av_err *err) {
    for (int k = 0; k < AV_BAD_COUNT; k++) {
        uint32_t n;
        if (av_read_u64(r, &a->bad[k], err) || get_count(r, AV_BAD_KEEP, 8, &n, err)) return -1;
        a->n_bad_lines[k] = (int)n;
        for (uint32_t i = 0; i < n; i++)
            if (get_i64(r, &a->bad_lines[k][i], err)) return -1;
    }
    char *msg;
    if (get_i64(r, &a->error_line, err) || get_str(r, sizeof a->error_msg - 1, &msg, err)) return -1;
    snprintf(a->error_msg, sizeof a->error_msg, "%s", msg);
    free(msg);
    return 0;
}

void av_corpus_acc_write(const av_corpus_acc *a, av_buf *b) {
    put_u32(b, ACC_MAGIC);
    put_u32(b, FORMAT_VERSION);
    put_u32(b, (uint32_t)a->top_k);
    write_bad(b, a);
    put_u32(b, (uint32_t)a->ready);
    if (!a->ready) return;
    write_layout(b, &a->layout);
    size_t nh = (size_t)a->layout.n_heads;
    put_u64(b, a->n_examples);
    put_u64(b, a->n_tokens);
    put_u32(b, (uint32_t)a->max_tokens);
    for (size_t i = 0; i < nh * AV_CM_COUNT; i++)
        put_moments(b, &a->metric[i]);
    uint64_t nz = 0, n_sk = nh * (size_t)a->sketch_len;
    for (uint64_t i = 0; i < n_sk; i++)
        nz += a->sketch[i] != 0;
    put_u64(b, nz); /* sparse: most buckets are empty */
    for (uint64_t i = 0; i < n_sk; i++)
        if (a->sketch[i]) {
            put_u64(b, i);
            put_u64(b, a->sketch[i]);
        }
    for (size_t i = 0; i < nh * AV_POS_BINS; i++)
        put_fx(b, a->pos[i]);
    for (size_t i = 0; i < nh; i++)
        put_u64(b, a->pos_n[i]);
    for (size_t i = 0; i < nh * (AV_ROLE_COUNT + 1); i++)
        put_u64(b, a->votes[i]);
    for (size_t i = 0; i < nh * AV_ROLE_COUNT * (size_t)a->top_k; i++) {
        put_f64(b, a->top[i].score);
        put_u64(b, (uint64_t)a->top[i].line);
    }
    put_u32(b, (uint32_t)a->n_labels);
    for (int l = 0; l < a->n_labels; l++) {
        put_str(b, a->labels[l].label);
        for (size_t h = 0; h < nh; h++)
            put_moments(b, &a->labels[l].m[h]);
    }
}

/* The per-head arrays (after the layout). a is set up with a merge of an empty accumulator of that layout. */
static int read_heads(av_reader *r, av_corpus_acc *a, av_err *err) {
    size_t nh = (size_t)a->layout.n_heads;
    uint32_t maxt;
    if (av_read_u64(r, &a->n_examples, err) || av_read_u64(r, &a->n_tokens, err) ||
        av_read_u32(r, &maxt, err))
        return -1;
    a->max_tokens = (int)(maxt > INT32_MAX ? INT32_MAX : maxt);
    for (size_t i = 0; i < nh * AV_CM_COUNT; i++)
        if (get_moments(r, &a->metric[i], err)) return -1;
    uint64_t nz, n_sk = nh * (size_t)a->sketch_len;
    if (av_read_u64(r, &nz, err)) return -1;
    if (nz > n_sk || nz > av_reader_left(r) / 16) return av_errf(err, "%s: bad sketch size", r->name);
    for (uint64_t k = 0; k < nz; k++) {
        uint64_t i, c;
        if (av_read_u64(r, &i, err) || av_read_u64(r, &c, err)) return -1;
        if (i >= n_sk)
            return av_errf(err, "%s: sketch bucket %llu out of range", r->name, (unsigned long long)i);
        a->sketch[i] = c;
    }
    for (size_t i = 0; i < nh * AV_POS_BINS; i++)
        if (get_fx(r, &a->pos[i], err)) return -1;
    for (size_t i = 0; i < nh; i++)
        if (av_read_u64(r, &a->pos_n[i], err)) return -1;
    for (size_t i = 0; i < nh * (AV_ROLE_COUNT + 1); i++)
        if (av_read_u64(r, &a->votes[i], err)) return -1;
    for (size_t i = 0; i < nh * AV_ROLE_COUNT * (size_t)a->top_k; i++)
        if (get_f64(r, &a->top[i].score, err) || get_i64(r, &a->top[i].line, err)) return -1;
    uint32_t nl;
    if (get_count(r, 1u << 20, 4 + nh * 40, &nl, err)) return -1;
    for (uint32_t l = 0; l < nl; l++) {
        char *label;
        if (get_str(r, AV_CORPUS_LABEL_MAX, &label, err)) return -1;
        av_corpus_label *grown = realloc(a->labels, sizeof *grown * (size_t)(a->n_labels + 1));
        av_moments *m = calloc(nh, sizeof *m);
        if (!grown || !m) {
            free(label);
            free(m);
            if (grown) a->labels = grown;
            return av_errf(err, "out of memory");
        }
        a->labels = grown;
        a->labels[a->n_labels++] = (av_corpus_label){label, m};
        for (size_t h = 0; h < nh; h++)
            if (get_moments(r, &m[h], err)) return -1;
        if (l > 0 && strcmp(a->labels[l - 1].label, label) >= 0)
            return av_errf(err, "%s: special-token labels out of order", r->name);
    }
    return 0;
}

int av_corpus_acc_read(av_corpus_acc *a, av_reader *r, av_err *err) {
    uint32_t magic, version, top_k, ready;
    if (av_read_u32(r, &magic, err) || av_read_u32(r, &version, err) || av_read_u32(r, &top_k, err))
        return -1;
    if (magic != ACC_MAGIC || version != FORMAT_VERSION)
        return av_errf(err, "%s: not corpus statistics of format %u", r->name, FORMAT_VERSION);
    if (top_k < 1 || top_k > 1000) return av_errf(err, "%s: implausible top-k %u", r->name, top_k);
    av_corpus_acc_init(a, (int)top_k);
    if (read_bad(r, a, err) || av_read_u32(r, &ready, err)) goto fail;
    if (ready > 1) {
        av_errf(err, "%s: corrupt statistics header", r->name);
        goto fail;
    }
    if (!ready) return 0;
    av_corpus_layout lay;
    if (read_layout(r, &lay, err) || av_corpus_acc_alloc(a, &lay, err) || read_heads(r, a, err)) goto fail;
    return 0;
fail:
    av_corpus_acc_free(a);
    return -1;
}

/* ---- query/key samples ---- */

void av_corpus_qk_write(const av_corpus_qk *s, av_buf *b) {
    put_u32(b, QK_MAGIC);
    put_u32(b, FORMAT_VERSION);
    put_u32(b, (uint32_t)s->kind);
    put_u32(b, (uint32_t)s->layer);
    put_u32(b, (uint32_t)s->head);
    put_u32(b, (uint32_t)s->n_max);
    put_u64(b, s->seed);
    put_u32(b, (uint32_t)s->dim);
    put_u32(b, (uint32_t)s->n);
    for (int i = 0; i < s->n; i++) {
        const av_qk_point *p = &s->pts[i];
        put_u64(b, p->prio);
        put_u64(b, (uint64_t)p->line);
        put_u32(b, (uint32_t)p->pos);
        put_u32(b, (uint32_t)p->n_tokens);
        put_u32(b, (uint32_t)p->is_key);
        put_str(b, p->label);
        for (int k = 0; k < s->dim; k++) {
            uint32_t u;
            memcpy(&u, &p->vec[k], 4);
            put_u32(b, u);
        }
    }
}

static int read_point(av_reader *r, int dim, av_qk_point *p, av_err *err) {
    uint64_t line;
    uint32_t pos, nt, key;
    char *label;
    if (av_read_u64(r, &p->prio, err) || av_read_u64(r, &line, err) || av_read_u32(r, &pos, err) ||
        av_read_u32(r, &nt, err) || av_read_u32(r, &key, err) ||
        get_str(r, AV_CORPUS_LABEL_MAX - 1, &label, err))
        return -1;
    p->line = (int64_t)line;
    p->pos = (int32_t)pos;
    p->n_tokens = (int32_t)nt;
    p->is_key = key != 0;
    snprintf(p->label, sizeof p->label, "%s", label);
    free(label);
    if (!(p->vec = malloc(sizeof *p->vec * (size_t)dim))) return av_errf(err, "out of memory");
    for (int k = 0; k < dim; k++)
        if (av_read_f32(r, &p->vec[k], err)) return -1;
    return 0;
}

int av_corpus_qk_read(av_corpus_qk *s, av_reader *r, av_err *err) {
    uint32_t magic, version, kind, layer, head, n_max, dim, n;
    uint64_t seed;
    memset(s, 0, sizeof *s);
    if (av_read_u32(r, &magic, err) || av_read_u32(r, &version, err) || av_read_u32(r, &kind, err) ||
        av_read_u32(r, &layer, err) || av_read_u32(r, &head, err) || av_read_u32(r, &n_max, err) ||
        av_read_u64(r, &seed, err) || av_read_u32(r, &dim, err))
        return -1;
    if (magic != QK_MAGIC || version != FORMAT_VERSION || kind >= AV_ATTN_KIND_COUNT || dim > 65536 ||
        n_max > (1u << 24))
        return av_errf(err, "%s: not a query/key sample of format %u", r->name, FORMAT_VERSION);
    av_corpus_qk_init(s, (av_attn_kind)kind, (int)layer, (int)head, (int)n_max, seed);
    s->dim = (int)dim;
    if (get_count(r, 4 * n_max + 257, 32 + (size_t)dim * 4, &n, err))
        return -1; /* untrimmed: see corpus_qk.c */
    if (n && !(s->pts = calloc(n, sizeof *s->pts))) return av_errf(err, "out of memory");
    s->cap = (int)n;
    for (uint32_t i = 0; i < n; i++, s->n++)
        if (read_point(r, s->dim, &s->pts[i], err)) {
            s->n++; /* free its vector too */
            av_corpus_qk_free(s);
            return -1;
        }
    return 0;
}

/* ---- state files of resumable runs ---- */

#define STATE_MAGIC 0x53435641u /* "AVCS" */

int av_corpus_state_save(const char *path, const char *fingerprint, int rank, int n_ranks, int64_t n_chunks,
                         const uint8_t *done, const av_corpus_acc *acc, const av_corpus_qk *qk, av_err *err) {
    av_buf b = {0};
    put_u32(&b, STATE_MAGIC);
    put_u32(&b, FORMAT_VERSION);
    put_str(&b, fingerprint);
    put_u32(&b, (uint32_t)rank);
    put_u32(&b, (uint32_t)n_ranks);
    put_u64(&b, (uint64_t)n_chunks);
    av_buf_put(&b, done, (size_t)(n_chunks + 7) / 8);
    av_corpus_acc_write(acc, &b);
    put_u32(&b, qk != NULL);
    if (qk) av_corpus_qk_write(qk, &b);
    if (b.oom) {
        free(b.s);
        return av_errf(err, "out of memory writing %s", path);
    }
    int rc = av_file_write_atomic(path, b.s, b.n, err);
    free(b.s);
    return rc;
}

static int state_header(av_reader *r, const char *fingerprint, int rank, int n_ranks, int64_t n_chunks,
                        av_err *err) {
    uint32_t magic, version, fr, fn;
    uint64_t nc;
    char *fp = NULL;
    if (av_read_u32(r, &magic, err) || av_read_u32(r, &version, err)) return -1;
    if (magic != STATE_MAGIC) return av_errf(err, "%s: not an attnviz corpus state file", r->name);
    if (version != FORMAT_VERSION)
        return av_errf(err, "%s: a corpus state of format %u (this attnviz reads %u): rerun with --fresh",
                       r->name, version, FORMAT_VERSION);
    if (get_str(r, 1 << 16, &fp, err) || av_read_u32(r, &fr, err) || av_read_u32(r, &fn, err) ||
        av_read_u64(r, &nc, err)) {
        free(fp);
        return -1;
    }
    int same = strcmp(fp, fingerprint) == 0;
    free(fp);
    if (!same)
        return av_errf(err,
                       "%s was written by a run with other settings or another input (or the input changed): "
                       "rerun with --fresh to start over",
                       r->name);
    if ((int)fn != n_ranks || (int)fr != rank)
        return av_errf(err,
                       "%s belongs to rank %u of %u: resume with the same number of processes (-np %u) or "
                       "start over with --fresh",
                       r->name, fr, fn, fn);
    if ((int64_t)nc != n_chunks)
        return av_errf(err, "%s: %llu chunks, the input has %lld", r->name, (unsigned long long)nc,
                       (long long)n_chunks);
    return 0;
}

int av_corpus_state_load(const char *path, const char *fingerprint, int rank, int n_ranks, int64_t n_chunks,
                         uint8_t *done, av_corpus_acc *acc, av_corpus_qk *qk, av_err *err) {
    FILE *probe = fopen(path, "rb");
    if (!probe) return 0;
    fclose(probe);
    char *data;
    size_t size;
    if (av_file_read_all(path, (size_t)1 << 34, &data, &size, err)) return -1;
    av_reader r;
    av_reader_init(&r, data, size, path);
    size_t nb = (size_t)(n_chunks + 7) / 8;
    uint32_t has_qk = 0;
    int rc = state_header(&r, fingerprint, rank, n_ranks, n_chunks, err) ||
             av_read_bytes(&r, done, nb, err) || av_corpus_acc_read(acc, &r, err) ||
             av_read_u32(&r, &has_qk, err);
    if (!rc && has_qk > 1) rc = av_errf(err, "%s: corrupt query/key flag", path);
    if (!rc && (has_qk != 0) != (qk != NULL))
        rc = av_errf(err, "%s: the query/key sample settings differ: rerun with --fresh", path);
    if (!rc && qk) {
        av_corpus_qk loaded;
        rc = av_corpus_qk_read(&loaded, &r, err);
        if (!rc && (loaded.kind != qk->kind || loaded.layer != qk->layer || loaded.head != qk->head ||
                    loaded.n_max != qk->n_max || loaded.seed != qk->seed))
            rc = av_errf(err, "%s: the query/key sample settings differ: rerun with --fresh", path);
        if (!rc) {
            av_corpus_qk_free(qk);
            *qk = loaded;
        } else {
            av_corpus_qk_free(&loaded);
        }
    }
    if (!rc && av_reader_left(&r))
        rc = av_errf(err, "%s: %zu bytes of trailing garbage", path, av_reader_left(&r));
    free(data);
    return rc ? -1 : 1;
}

/* ---- a rank's result, sent to rank 0 ---- */

#define RESULT_MAGIC 0x52435641u /* "AVCR" */

void av_corpus_result_write(const av_corpus_result *res, int status, const char *msg, const char *fingerprint,
                            int with_qk, av_buf *b) {
    put_u32(b, RESULT_MAGIC);
    put_u32(b, (uint32_t)status);
    put_str(b, msg ? msg : "");
    put_str(b, fingerprint ? fingerprint : "");
    put_u64(b, (uint64_t)res->chunks_done);
    put_u64(b, (uint64_t)res->chunks_total);
    put_u64(b, (uint64_t)res->chunks_resumed);
    put_u64(b, (uint64_t)res->inputs_run);
    put_f64(b, res->seconds);
    av_corpus_acc_write(&res->acc, b);
    put_u32(b, (uint32_t)with_qk);
    if (with_qk) av_corpus_qk_write(&res->qk, b);
}

int av_corpus_result_read(av_corpus_result *res, int *status, char msg[512], char **fingerprint, av_reader *r,
                          av_err *err) {
    memset(res, 0, sizeof *res);
    av_corpus_acc_init(&res->acc, 1);
    *fingerprint = NULL;
    uint32_t magic, st, with_qk;
    uint64_t v[4];
    char *m = NULL;
    if (av_read_u32(r, &magic, err) || av_read_u32(r, &st, err)) return -1;
    if (magic != RESULT_MAGIC) return av_errf(err, "%s: not a corpus result", r->name);
    if (get_str(r, 511, &m, err)) return -1;
    snprintf(msg, 512, "%s", m);
    free(m);
    if (get_str(r, 1 << 16, fingerprint, err)) return -1;
    *status = (int)st;
    for (int k = 0; k < 4; k++)
        if (av_read_u64(r, &v[k], err)) return -1;
    res->chunks_done = (int64_t)v[0];
    res->chunks_total = (int64_t)v[1];
    res->chunks_resumed = (int64_t)v[2];
    res->inputs_run = (int64_t)v[3];
    if (get_f64(r, &res->seconds, err) || av_corpus_acc_read(&res->acc, r, err) ||
        av_read_u32(r, &with_qk, err))
        return -1;
    if (with_qk && av_corpus_qk_read(&res->qk, r, err)) return -1;
    return 0;
}
