/* Corrupt-input table: for each model format (GGUF, llama2.c, Hugging Face directory) one crafted bad file
 * per failure class. Every case must fail with -1 and a message holding an expected substring, never crash,
 * and `attnviz run` on it must exit 1 with exactly one stderr line starting "attnviz run: ". The files are
 * built from scratch here (tiny headers and models); only the context-window and wrong-tokenizer checks use
 * the real stories260K. Also: a GGUF with every kv type parses; every truncation and random byte flips of a
 * valid GGUF are rejected cleanly. */
#include "harness.h"

#include "io/gguf.h"
#include "model/model.h"

#include <stdint.h>
#include <sys/stat.h>
#include <sys/wait.h>

/* ---- byte builder ---- */

typedef struct buf {
    uint8_t *p;
    size_t n, cap;
} buf;

static void b_put(buf *b, const void *p, size_t n) {
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->n + n)
            cap *= 2;
        uint8_t *q = realloc(b->p, cap);
        if (!q) abort(); /* test-only */
        b->p = q;
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->n, p, n);
    b->n += n;
}
static void b_u32(buf *b, uint32_t v) { b_put(b, &v, 4); }
static void b_i32(buf *b, int32_t v) { b_put(b, &v, 4); }
static void b_u64(buf *b, uint64_t v) { b_put(b, &v, 8); }
static void b_f32(buf *b, float v) { b_put(b, &v, 4); }
static void b_str(buf *b, const char *s) {
    b_u64(b, strlen(s));
    b_put(b, s, strlen(s));
}
static void b_zeros(buf *b, size_t n) {
    while (n--)
        b_put(b, "", 1);
}

static int write_file(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = fwrite(p, 1, n, f);
    return fclose(f) == 0 && w == n ? 0 : -1;
}

static const char *tmp_path(const char *name) {
    static char bufs[16][512];
    static int k;
    char *p = bufs[k++ % 16];
    snprintf(p, 512, "%s/%s", h_tmpdir(), name);
    return p;
}

/* ---- the case table ---- */

typedef struct bad_case {
    char name[96];
    char path[512];
    char tok[512];    /* --tokenizer, "" for none */
    char expect[128]; /* substrings of the message */
    char expect2[128];
} bad_case;

#define MAX_CASES 64
static bad_case g_cases[MAX_CASES];
static int g_n_cases;

static void add_case(const char *name, const char *path, const char *tok, const char *expect,
                     const char *expect2) {
    if (g_n_cases >= MAX_CASES) {
        printf("# too many cases: raise MAX_CASES\n");
        exit(1);
    }
    bad_case *c = &g_cases[g_n_cases++];
    snprintf(c->name, sizeof c->name, "%s", name);
    snprintf(c->path, sizeof c->path, "%s", path);
    snprintf(c->tok, sizeof c->tok, "%s", tok ? tok : "");
    snprintf(c->expect, sizeof c->expect, "%s", expect);
    snprintf(c->expect2, sizeof c->expect2, "%s", expect2 ? expect2 : "");
}

/* Runs `attnviz run` on a case: 0 when it exits 1 with one "attnviz run: " line on stderr. */
static int cli_rejects(const bad_case *c, char *why, size_t why_n) {
    const char *bin = getenv("ATTNVIZ_BIN");
    if (!bin || !*bin) bin = "build/attnviz";
    char cmd[2400], errf[512];
    snprintf(errf, sizeof errf, "%s/cli.err", h_tmpdir());
    snprintf(cmd, sizeof cmd, "'%s' run --model '%s'%s%s%s --text hi -o '%s/cli.trace' 2>'%s' >/dev/null",
             bin, c->path, c->tok[0] ? " --tokenizer '" : "", c->tok, c->tok[0] ? "'" : "", h_tmpdir(), errf);
    int st = system(cmd);
    char *text = NULL;
    size_t n = 0;
    av_err err = {{0}};
    if (av_file_read_all(errf, 1 << 16, &text, &n, &err)) {
        snprintf(why, why_n, "no stderr: %.200s", err.msg);
        return -1;
    }
    int rc = 0;
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 1) {
        snprintf(why, why_n, "exit status %d (want 1); stderr: %.200s", WIFEXITED(st) ? WEXITSTATUS(st) : -st,
                 text);
        rc = -1;
    } else if (strncmp(text, "attnviz run: ", 13) != 0 || n < 14 || strchr(text, '\n') != text + n - 1) {
        snprintf(why, why_n, "stderr is not one 'attnviz run: ' line: %.300s", text);
        rc = -1;
    }
    free(text);
    return rc;
}

/* Library load + CLI on every case whose name starts with prefix. */
static void run_cases(const char *prefix) {
    int n = 0;
    int cli =
        access(getenv("ATTNVIZ_BIN") && *getenv("ATTNVIZ_BIN") ? getenv("ATTNVIZ_BIN") : "build/attnviz",
               X_OK) == 0;
    for (int i = 0; i < g_n_cases; i++) {
        const bad_case *c = &g_cases[i];
        if (strncmp(c->name, prefix, strlen(prefix)) != 0) continue;
        n++;
        av_model_params mp = av_model_default_params();
        mp.tokenizer_path = c->tok[0] ? c->tok : NULL;
        mp.n_threads = 1;
        av_model *m = NULL;
        av_err err = {{0}};
        int rc = av_model_load(c->path, &mp, &m, &err);
        CHECKF(rc == -1 && m == NULL, "%s: loaded (rc %d) but should fail", c->name, rc);
        CHECKF(err.msg[0] && !strchr(err.msg, '\n'), "%s: empty or multi-line message", c->name);
        CHECKF(strstr(err.msg, c->expect) && strstr(err.msg, c->expect2), "%s: message '%s' lacks '%s' %s",
               c->name, err.msg, c->expect, c->expect2);
        av_model_free(m);
        if (cli) {
            char why[512];
            CHECKF(cli_rejects(c, why, sizeof why) == 0, "%s: attnviz run: %s", c->name, why);
        }
    }
    CHECKF(n > 0, "no cases for %s", prefix);
    if (!cli) printf("# CLI checks skipped: attnviz binary not found (set ATTNVIZ_BIN)\n");
}

/* ---- tiny models built from scratch: dim 8, hidden 16, 2 heads, 2 kv heads, 1 layer, vocab 512, ctx 16 ----
 */

enum { T_DIM = 8, T_HIDDEN = 16, T_HEADS = 2, T_VOCAB = 512, T_CTX = 16 };

/* A llama2.c tokenizer file with n tokens (<unk>, <s>, </s>, then "a0", "a1", ...). */
static const char *write_l2c_tokenizer(const char *name, int n) {
    buf b = {0};
    b_i32(&b, 16);
    for (int i = 0; i < n; i++) {
        char piece[16];
        snprintf(piece, sizeof piece, "%s",
                 i == 0   ? "<unk>"
                 : i == 1 ? "\n<s>\n"
                 : i == 2 ? "\n</s>\n"
                          : "a");
        if (i > 2) snprintf(piece, sizeof piece, "a%d", i);
        b_f32(&b, (float)-i);
        b_i32(&b, (int32_t)strlen(piece));
        b_put(&b, piece, strlen(piece));
    }
    const char *path = tmp_path(name);
    if (write_file(path, b.p, b.n)) path = "/nonexistent";
    free(b.p);
    return path;
}

typedef struct gguf_spec {
    const char *magic;
    uint32_t version;
    uint64_t n_kv_override, n_tensors_override; /* 0: the real counts */
    const char *arch;
    uint64_t dim, layers; /* llama.embedding_length, llama.block_count values */
    int n_tok;            /* tokenizer metadata tokens (0: none) */
    uint32_t emb_type;    /* ggml type of token_embd.weight */
    int ne_overflow;      /* blk.0.attn_q.weight gets an overflowing ne (2: ne[0] = 0) */
    uint64_t norm_offset; /* != 0: offset of output_norm.weight */
    uint64_t name_len;    /* != 0: length written for general.name's value */
    uint32_t alignment;   /* != 0: general.alignment */
    int dup_key;
    size_t truncate; /* != 0: keep only the first N bytes */
    int cut_tail;    /* drop the last N bytes */
} gguf_spec;

static gguf_spec gguf_default(void) {
    gguf_spec s;
    memset(&s, 0, sizeof s);
    s.magic = "GGUF";
    s.version = 3;
    s.arch = "llama";
    s.dim = T_DIM;
    s.layers = 1;
    return s;
}

static void kv_u32(buf *b, const char *key, uint32_t v) {
    b_str(b, key);
    b_u32(b, AV_GGUF_U32);
    b_u32(b, v);
}

static void kv_str(buf *b, const char *key, const char *v) {
    b_str(b, key);
    b_u32(b, AV_GGUF_STRING);
    b_str(b, v);
}

/* Builds a tiny llama GGUF (valid with gguf_default()) into b. */
static void gguf_build(buf *b, const gguf_spec *s) {
    static const char *const layer_names[9] = {"attn_norm", "attn_q",   "attn_k",   "attn_v", "attn_output",
                                               "ffn_norm",  "ffn_gate", "ffn_down", "ffn_up"};
    static const uint64_t layer_ne[9][2] = {{T_DIM, 1},        {T_DIM, T_DIM},    {T_DIM, T_DIM},
                                            {T_DIM, T_DIM},    {T_DIM, T_DIM},    {T_DIM, 1},
                                            {T_DIM, T_HIDDEN}, {T_HIDDEN, T_DIM}, {T_DIM, T_HIDDEN}};
    int n_kv = 10 + (s->alignment ? 1 : 0) + (s->dup_key ? 1 : 0) + (s->n_tok ? 4 : 0);
    int n_tensors = 2 + 9;
    b_put(b, s->magic, 4);
    b_u32(b, s->version);
    b_u64(b, s->n_tensors_override ? s->n_tensors_override : (uint64_t)n_tensors);
    b_u64(b, s->n_kv_override ? s->n_kv_override : (uint64_t)n_kv);
    kv_str(b, "general.architecture", s->arch);
    b_str(b, "general.name");
    b_u32(b, AV_GGUF_STRING);
    b_u64(b, s->name_len ? s->name_len : 4);
    b_put(b, "tiny", 4);
    if (s->alignment) kv_u32(b, "general.alignment", s->alignment);
    if (s->dup_key) kv_u32(b, "general.name", 1);
    kv_u32(b, "llama.context_length", T_CTX);
    kv_u32(b, "llama.embedding_length", (uint32_t)s->dim);
    kv_u32(b, "llama.block_count", (uint32_t)s->layers);
    kv_u32(b, "llama.feed_forward_length", T_HIDDEN);
    kv_u32(b, "llama.attention.head_count", T_HEADS);
    kv_u32(b, "llama.attention.head_count_kv", T_HEADS);
    b_str(b, "llama.attention.layer_norm_rms_epsilon");
    b_u32(b, AV_GGUF_F32);
    b_f32(b, 1e-5f);
    b_str(b, "llama.rope.freq_base");
    b_u32(b, AV_GGUF_F32);
    b_f32(b, 10000.0f);
    if (s->n_tok) {
        kv_str(b, "tokenizer.ggml.model", "llama");
        b_str(b, "tokenizer.ggml.tokens");
        b_u32(b, AV_GGUF_ARRAY);
        b_u32(b, AV_GGUF_STRING);
        b_u64(b, (uint64_t)s->n_tok);
        for (int i = 0; i < s->n_tok; i++) {
            char piece[16];
            snprintf(piece, sizeof piece, "%s", i == 0 ? "<unk>" : i == 1 ? "<s>" : i == 2 ? "</s>" : "");
            if (i > 2) snprintf(piece, sizeof piece, "\xe2\x96\x81w%d", i);
            b_str(b, piece);
        }
        b_str(b, "tokenizer.ggml.scores");
        b_u32(b, AV_GGUF_ARRAY);
        b_u32(b, AV_GGUF_F32);
        b_u64(b, (uint64_t)s->n_tok);
        for (int i = 0; i < s->n_tok; i++)
            b_f32(b, (float)-i);
        b_str(b, "tokenizer.ggml.token_type");
        b_u32(b, AV_GGUF_ARRAY);
        b_u32(b, AV_GGUF_I32);
        b_u64(b, (uint64_t)s->n_tok);
        for (int i = 0; i < s->n_tok; i++)
            b_i32(b, i == 0 ? 2 : i < 3 ? 3 : 1);
    }
    /* tensor infos: token_embd, output_norm, then blk.0.* ; data laid out 32-aligned */
    uint64_t offset = 0, sizes[11];
    for (int t = 0; t < n_tensors; t++) {
        char name[64];
        uint64_t ne[3] = {T_DIM, T_VOCAB, 1};
        int nd = 2;
        uint32_t type = AV_GGML_F32;
        if (t == 0) {
            snprintf(name, sizeof name, "token_embd.weight");
            type = s->emb_type;
        } else if (t == 1) {
            snprintf(name, sizeof name, "output_norm.weight");
            nd = 1;
        } else {
            snprintf(name, sizeof name, "blk.0.%s.weight", layer_names[t - 2]);
            ne[0] = layer_ne[t - 2][0];
            ne[1] = layer_ne[t - 2][1];
            nd = ne[1] == 1 ? 1 : 2;
            if (t == 3 && s->ne_overflow) { /* 2: an empty row, so the bytes stay 0 whatever the rest */
                ne[0] = s->ne_overflow == 2 ? 0 : 1ull << 32;
                ne[1] = ne[2] = 1ull << 32;
                nd = 3;
            }
        }
        sizes[t] = ne[0] * (nd > 1 ? ne[1] : 1) * 4;
        b_str(b, name);
        b_u32(b, (uint32_t)nd);
        for (int d = 0; d < nd; d++)
            b_u64(b, ne[d]);
        b_u32(b, type);
        b_u64(b, t == 1 && s->norm_offset ? s->norm_offset : offset);
        offset += (sizes[t] + 31) / 32 * 32;
    }
    size_t align = s->alignment && (s->alignment & (s->alignment - 1)) == 0 ? s->alignment : 32;
    b_zeros(b, (align - b->n % align) % align);
    for (int t = 0; t < n_tensors; t++) {
        size_t start = b->n;
        for (uint64_t k = 0; k < sizes[t] / 4; k++)
            b_f32(b, t == 1 || t == 2 || t == 7 ? 1.0f : 0.01f);
        b_zeros(b, (32 - (b->n - start) % 32) % 32);
    }
    if (s->truncate && s->truncate < b->n) b->n = s->truncate;
    if (s->cut_tail && (size_t)s->cut_tail < b->n) b->n -= (size_t)s->cut_tail;
}

static const char *write_gguf(const char *name, const gguf_spec *s) {
    buf b = {0};
    gguf_build(&b, s);
    const char *path = tmp_path(name);
    if (write_file(path, b.p, b.n)) path = "/nonexistent";
    free(b.p);
    return path;
}

static void make_gguf_cases(void) {
    gguf_spec s;
#define GG(file, name, expect, expect2, ...)                                                                 \
    do {                                                                                                     \
        s = gguf_default();                                                                                  \
        __VA_ARGS__;                                                                                         \
        add_case("gguf: " name, write_gguf(file, &s), NULL, expect, expect2);                                \
    } while (0)
    GG("magic.gguf", "bad magic", "bad magic", NULL, s.magic = "GGUX");
    GG("v1.gguf", "version 1", "version 1 is not supported", NULL, s.version = 1);
    GG("v9.gguf", "version 9", "unsupported GGUF version 9", NULL, s.version = 9);
    GG("trunc_header.gguf", "truncated header", "truncated", NULL, s.truncate = 14);
    GG("trunc_kv.gguf", "truncated in the kvs", "truncated", NULL, s.truncate = 200);
    GG("trunc_info.gguf", "truncated in the tensor infos", "truncated: info of tensor", NULL,
       s.truncate = 800);
    GG("trunc_data.gguf", "truncated data", "runs past the end", NULL, s.cut_tail = 64);
    GG("dim.gguf", "absurd dim", "llama.embedding_length = 1073741824 is out of range", NULL,
       s.dim = 1u << 30);
    GG("layers0.gguf", "zero layers", "llama.block_count = 0 is out of range", NULL, s.layers = 0);
    GG("offset.gguf", "tensor offset past the end", "'output_norm.weight'", "past the end",
       s.norm_offset = 1ull << 40);
    GG("misaligned.gguf", "tensor offset misaligned", "not a multiple of the alignment", NULL,
       s.norm_offset = 4);
    GG("ne.gguf", "ne product overflows", "shape overflows", NULL, s.ne_overflow = 1);
    GG("ne0.gguf", "an empty row with huge other dimensions", "empty dimension (ne[0] = 0)", NULL,
       s.ne_overflow = 2);
    GG("nkv.gguf", "kv count 2^62", "keys and", "more than the", s.n_kv_override = 1ull << 62);
    GG("ntensors.gguf", "tensor count 2^62", "tensors, more than", NULL, s.n_tensors_override = 1ull << 62);
    GG("type.gguf", "unknown tensor type", "unknown tensor type 1234", NULL, s.emb_type = 1234);
    GG("iq2.gguf", "unsupported tensor type",
       "tensor 'token_embd.weight' has type IQ2_XXS (16), not supported",
       "(supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_NL, "
       "IQ4_XS)",
       s.emb_type = 16);
    GG("q4k.gguf", "Q4_K rows shorter than a block", "tensor 'token_embd.weight': Q4_K rows of 8 values",
       "not a multiple of its block of 256", s.emb_type = 12);
    GG("q4_0.gguf", "Q4_0 rows shorter than a block", "tensor 'token_embd.weight': Q4_0 rows of 8 values",
       "not a multiple of its block of 32", s.emb_type = 2);
    GG("strlen.gguf", "string length past the end", "general.name", "past the end of the file",
       s.name_len = 1ull << 40);
    GG("arch.gguf", "wrong architecture", "architecture 'gpt2' is not supported", "supported: llama, qwen2",
       s.arch = "gpt2");
    GG("align.gguf", "alignment not a power of 2", "general.alignment 3 is not a power of two", NULL,
       s.alignment = 3);
    GG("dup.gguf", "duplicate key", "duplicate key 'general.name'", NULL, s.dup_key = 1);
    GG("tok100.gguf", "wrong tokenizer size", "100", "512", s.n_tok = 100);
#undef GG
}

/* ---- llama2.c ---- */

static const char *write_l2c(const char *name, const int32_t hdr[7], size_t cut_tail, size_t extra) {
    buf b = {0};
    for (int i = 0; i < 7; i++)
        b_i32(&b, hdr[i]);
    size_t floats = (size_t)T_VOCAB * T_DIM + T_DIM + 4 * T_DIM * T_DIM + T_DIM + 3 * T_DIM * T_HIDDEN +
                    T_DIM + (size_t)T_CTX * (T_DIM / T_HEADS);
    for (size_t i = 0; i < floats; i++)
        b_f32(&b, 0.01f);
    b_zeros(&b, extra);
    if (cut_tail < b.n) b.n -= cut_tail;
    const char *path = tmp_path(name);
    if (write_file(path, b.p, b.n)) path = "/nonexistent";
    free(b.p);
    return path;
}

static void make_l2c_cases(const char *tok100) {
    int32_t ok[7] = {T_DIM, T_HIDDEN, 1, T_HEADS, T_HEADS, T_VOCAB, T_CTX}, h[7];
#define L2C(file, name, expect, expect2, cut, extra, ...)                                                    \
    do {                                                                                                     \
        memcpy(h, ok, sizeof h);                                                                             \
        __VA_ARGS__;                                                                                         \
        add_case("llama2c: " name, write_l2c(file, h, cut, extra), NULL, expect, expect2);                   \
    } while (0)
    L2C("magic.bin", "bad magic (garbage header)", "not a llama2.c checkpoint or corrupt header", NULL, 0, 0,
        memcpy(h, "this is not a model", 19 + 1));
    L2C("dim.bin", "absurd dim", "corrupt header (dim 1073741824", NULL, 0, 0, h[0] = 1 << 30);
    L2C("layers0.bin", "zero layers", "layers 0", NULL, 0, 0, h[2] = 0);
    L2C("heads.bin", "heads not dividing dim", "inconsistent", NULL, 0, 0, h[3] = 3, h[4] = 3);
    L2C("trunc_data.bin", "truncated data", "truncated", NULL, 100, 0, (void)0);
    L2C("extra.bin", "trailing bytes", "unexpected bytes", NULL, 0, 12, (void)0);
#undef L2C
    buf b = {0};
    b_i32(&b, T_DIM);
    b_i32(&b, T_HIDDEN);
    const char *path = tmp_path("trunc_header.bin");
    write_file(path, b.p, b.n);
    free(b.p);
    add_case("llama2c: truncated header", path, NULL, "truncated", NULL);
    add_case("llama2c: wrong tokenizer size", write_l2c("tok.bin", ok, 0, 0), tok100, "100", "512");
}

/* ---- Hugging Face directories ---- */

typedef struct hf_spec {
    const char *model_type;
    int intermediate; /* config value (tensors are always T_HIDDEN) */
    int hidden;       /* config hidden_size */
    int layers;
    int tok_n;       /* tokenizer.bin tokens, 0: none */
    const char *raw; /* != NULL: model.safetensors is this header + raw_data_len zero bytes */
    size_t raw_data_len;
    uint64_t raw_hlen; /* != 0: header length written instead of strlen(raw) */
    const char
        *index; /* != NULL: model.safetensors.index.json text (shard file written as model-00001-of-00002) */
    const char *config_text; /* != NULL: config.json verbatim */
} hf_spec;

static hf_spec hf_default(void) {
    hf_spec s;
    memset(&s, 0, sizeof s);
    s.model_type = "llama";
    s.intermediate = T_HIDDEN;
    s.hidden = T_DIM;
    s.layers = 1;
    return s;
}

static float g_zeros[T_VOCAB * T_DIM]; /* (vocab, dim): big enough for every tiny tensor */

static int hf_safetensors(const char *path) {
    av_st_writer w;
    av_err err = {{0}};
    av_st_writer_init(&w);
    int64_t emb[2] = {T_VOCAB, T_DIM}, sq[2] = {T_DIM, T_DIM}, up[2] = {T_HIDDEN, T_DIM},
            down[2] = {T_DIM, T_HIDDEN}, vec[1] = {T_DIM};
    static const char *const names[9] = {"input_layernorm",  "self_attn.q_proj", "self_attn.k_proj",
                                         "self_attn.v_proj", "self_attn.o_proj", "post_attention_layernorm",
                                         "mlp.gate_proj",    "mlp.down_proj",    "mlp.up_proj"};
    const int64_t *shapes[9] = {vec, sq, sq, sq, sq, vec, up, down, up};
    int rc = av_st_writer_add(&w, "model.embed_tokens.weight", AV_DTYPE_F32, AV_DTYPE_F32, 2, emb, g_zeros,
                              &err) ||
             av_st_writer_add(&w, "model.norm.weight", AV_DTYPE_F32, AV_DTYPE_F32, 1, vec, g_zeros, &err);
    for (int k = 0; !rc && k < 9; k++) {
        char name[96];
        snprintf(name, sizeof name, "model.layers.0.%s.weight", names[k]);
        rc = av_st_writer_add(&w, name, AV_DTYPE_F32, AV_DTYPE_F32, shapes[k] == vec ? 1 : 2, shapes[k],
                              g_zeros, &err);
    }
    if (!rc) rc = av_st_writer_save(&w, path, &err);
    av_st_writer_free(&w);
    return rc;
}

static const char *write_hf(const char *name, const hf_spec *s) {
    const char *dir = tmp_path(name);
    char path[700], text[1024];
    mkdir(dir, 0755);
    snprintf(path, sizeof path, "%s/config.json", dir);
    char type[96]; /* model_type, or (NULL) only "architectures" */
    if (s->model_type)
        snprintf(type, sizeof type, "\"model_type\": \"%s\"", s->model_type);
    else
        snprintf(type, sizeof type, "\"architectures\": [\"MambaForCausalLM\"]");
    snprintf(text, sizeof text,
             "{%s, \"hidden_size\": %d, \"intermediate_size\": %d, \"num_hidden_layers\": %d, "
             "\"num_attention_heads\": %d, \"num_key_value_heads\": %d, \"rms_norm_eps\": 1e-5, "
             "\"max_position_embeddings\": %d, \"vocab_size\": %d, \"tie_word_embeddings\": true}",
             type, s->hidden, s->intermediate, s->layers, T_HEADS, T_HEADS, T_CTX, T_VOCAB);
    const char *cfg = s->config_text ? s->config_text : text;
    write_file(path, cfg, strlen(cfg));
    if (s->raw) {
        buf b = {0};
        b_u64(&b, s->raw_hlen ? s->raw_hlen : strlen(s->raw));
        b_put(&b, s->raw, strlen(s->raw));
        b_zeros(&b, s->raw_data_len);
        snprintf(path, sizeof path, "%s/model.safetensors", dir);
        write_file(path, b.p, b.n);
        free(b.p);
    } else if (s->index) {
        snprintf(path, sizeof path, "%s/model-00001-of-00002.safetensors", dir);
        hf_safetensors(path);
        snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
        write_file(path, s->index, strlen(s->index));
    } else {
        snprintf(path, sizeof path, "%s/model.safetensors", dir);
        hf_safetensors(path);
    }
    if (s->tok_n) {
        char tp[64];
        snprintf(tp, sizeof tp, "hf_tok_%d.bin", s->tok_n);
        const char *src = write_l2c_tokenizer(tp, s->tok_n);
        char *data = NULL;
        size_t n = 0;
        av_err err;
        snprintf(path, sizeof path, "%s/tokenizer.bin", dir);
        if (av_file_read_all(src, 1 << 20, &data, &n, &err) == 0) write_file(path, data, n);
        free(data);
    }
    return dir;
}

static void make_hf_cases(void) {
    hf_spec s;
#define HF(dir, name, expect, expect2, ...)                                                                  \
    do {                                                                                                     \
        s = hf_default();                                                                                    \
        __VA_ARGS__;                                                                                         \
        add_case("hf: " name, write_hf(dir, &s), NULL, expect, expect2);                                     \
    } while (0)
    HF("hf_magic", "bad magic (an ELF file)", "not a safetensors file", "does not fit", s.raw = "garbage",
       s.raw_hlen = 0x00010102464c457full);
    HF("hf_trunc_header", "truncated header", "not a safetensors file", "does not fit",
       s.raw = "{\"model.norm.weight\": {\"dtype\": \"F32\", \"shape\": [8], \"data_", s.raw_hlen = 200);
    HF("hf_trunc_data", "truncated data / offsets past the end", "past the end of the data", NULL,
       s.raw = "{\"model.norm.weight\": {\"dtype\": \"F32\", \"shape\": [8], \"data_offsets\": [0, 32]}}",
       s.raw_data_len = 16);
    HF("hf_overflow", "shape overflows", "shape overflows", NULL,
       s.raw =
           "{\"model.norm.weight\": {\"dtype\": \"F32\", \"shape\": [4294967296, 4294967296, 4294967296], "
           "\"data_offsets\": [0, 32]}}",
       s.raw_data_len = 32);
    HF("hf_dtype", "unknown tensor type", "unsupported dtype 'F8_E4M3'", NULL,
       s.raw = "{\"model.norm.weight\": {\"dtype\": \"F8_E4M3\", \"shape\": [8], \"data_offsets\": [0, 8]}}",
       s.raw_data_len = 8);
    HF("hf_dim", "absurd dim", "\"hidden_size\" = 1073741824 is out of range", NULL, s.hidden = 1 << 30);
    HF("hf_layers0", "zero layers", "\"num_hidden_layers\" = 0 is out of range", NULL, s.layers = 0);
    HF("hf_arch", "wrong architecture", "model_type 'mamba' is not supported", "llama",
       s.model_type = "mamba");
    HF("hf_arch2", "wrong architectures[0]", "'MambaForCausalLM' is not supported", "llama",
       s.model_type = NULL);
    HF("hf_shapes", "config disagrees with the tensor shapes", "does not match the config", "ffn gate",
       s.intermediate = 20);
    HF("hf_json", "config is not JSON", "invalid JSON", NULL, s.config_text = "{\"model_type\": \"llama\",");
    HF("hf_missing_shard", "index names a missing shard", "model-00002-of-00002.safetensors", NULL,
       s.index = "{\"weight_map\": {\"model.norm.weight\": \"model-00001-of-00002.safetensors\", "
                 "\"model.embed_tokens.weight\": \"model-00002-of-00002.safetensors\"}}");
    HF("hf_dotdot", "index names a path with ..", "not a plain file name", "..",
       s.index = "{\"weight_map\": {\"model.norm.weight\": \"../../etc/model.safetensors\"}}");
    /* HF configs may pad the vocabulary past the tokenizer (model.c accepts fewer tokens), so: more tokens */
    HF("hf_tok600", "wrong tokenizer size", "600", "512", s.tok_n = 600);
#undef HF
    /* a directory with a config but no weights at all */
    s = hf_default();
    const char *dir = write_hf("hf_noweights", &s);
    char p[700];
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    unlink(p);
    add_case("hf: no weights", dir, NULL, "no model.safetensors", NULL);
}

static int g_made;
static char g_tok100[512];

static void make_all(void) {
    if (g_made++) return;
    snprintf(g_tok100, sizeof g_tok100, "%s", write_l2c_tokenizer("tok100.bin", 100));
    make_gguf_cases();
    make_l2c_cases(g_tok100);
    make_hf_cases();
}

/* The unmodified tiny files load: each case fails for its corruption alone. */
static void test_baselines_load(void) {
    make_all();
    gguf_spec gs = gguf_default();
    gs.n_tok = T_VOCAB;
    int32_t ok[7] = {T_DIM, T_HIDDEN, 1, T_HEADS, T_HEADS, T_VOCAB, T_CTX};
    hf_spec hs = hf_default();
    hs.tok_n = T_VOCAB;
    const char *paths[3] = {write_gguf("good.gguf", &gs), write_l2c("good.bin", ok, 0, 0),
                            write_hf("hf_good", &hs)};
    for (int i = 0; i < 3; i++) {
        av_model *m = NULL;
        av_err err = {{0}};
        av_model_params mp = av_model_default_params();
        mp.tokenizer_path = i == 1 ? write_l2c_tokenizer("tok512.bin", T_VOCAB) : NULL;
        CHECKF(av_model_load(paths[i], &mp, &m, &err) == 0, "%s: %s", paths[i], err.msg);
        if (!m) continue;
        CHECK(m->dim == T_DIM && m->n_layers == 1 && m->vocab_size == T_VOCAB && m->tok != NULL);
        av_trace *t = NULL;
        CHECKF(av_trace_from_text(m, "a3 a4", NULL, &t, &err) == 0, "%s: %s", paths[i], err.msg);
        av_trace_free(t);
        av_model_free(m);
    }
}

static void test_corrupt_gguf(void) {
    make_all();
    run_cases("gguf: ");
}

static void test_corrupt_llama2c(void) {
    make_all();
    run_cases("llama2c: ");
}

static void test_corrupt_hf(void) {
    make_all();
    run_cases("hf: ");
}

/* A GGUF v2 with a kv of every type, including nested arrays, parses and reads back. */
static void test_gguf_all_kv_types(void) {
    buf b = {0};
    b_put(&b, "GGUF", 4);
    b_u32(&b, 2);
    b_u64(&b, 0);
    b_u64(&b, 15);
    uint8_t u8 = 200, bo = 1;
    int8_t i8 = -100;
    uint16_t u16 = 60000;
    int16_t i16 = -30000;
    double f64 = 2.5;
    int64_t i64 = -(1ll << 40);
    b_str(&b, "a.u8"), b_u32(&b, AV_GGUF_U8), b_put(&b, &u8, 1);
    b_str(&b, "a.i8"), b_u32(&b, AV_GGUF_I8), b_put(&b, &i8, 1);
    b_str(&b, "a.u16"), b_u32(&b, AV_GGUF_U16), b_put(&b, &u16, 2);
    b_str(&b, "a.i16"), b_u32(&b, AV_GGUF_I16), b_put(&b, &i16, 2);
    b_str(&b, "a.u32"), b_u32(&b, AV_GGUF_U32), b_u32(&b, 4000000000u);
    b_str(&b, "a.i32"), b_u32(&b, AV_GGUF_I32), b_i32(&b, -7);
    b_str(&b, "a.f32"), b_u32(&b, AV_GGUF_F32), b_f32(&b, 0.25f);
    b_str(&b, "a.bool"), b_u32(&b, AV_GGUF_BOOL), b_put(&b, &bo, 1);
    b_str(&b, "a.str"), b_u32(&b, AV_GGUF_STRING), b_str(&b, "h\xc3\xa9llo");
    b_str(&b, "a.u64"), b_u32(&b, AV_GGUF_U64), b_u64(&b, 1ull << 50);
    b_str(&b, "a.i64"), b_u32(&b, AV_GGUF_I64), b_put(&b, &i64, 8);
    b_str(&b, "a.f64"), b_u32(&b, AV_GGUF_F64), b_put(&b, &f64, 8);
    b_str(&b, "a.arr_i16"), b_u32(&b, AV_GGUF_ARRAY), b_u32(&b, AV_GGUF_I16), b_u64(&b, 3);
    for (int16_t v = -1; v <= 1; v++)
        b_put(&b, &v, 2);
    /* [[1, 2], ["x", "yz"], []]: an array of arrays of different element types */
    b_str(&b, "a.nested"), b_u32(&b, AV_GGUF_ARRAY), b_u32(&b, AV_GGUF_ARRAY), b_u64(&b, 3);
    b_u32(&b, AV_GGUF_U32), b_u64(&b, 2), b_u32(&b, 1), b_u32(&b, 2);
    b_u32(&b, AV_GGUF_STRING), b_u64(&b, 2), b_str(&b, "x"), b_str(&b, "yz");
    b_u32(&b, AV_GGUF_F64), b_u64(&b, 0);
    /* float elements read as integers: truncated, saturated, NaN 0 (issue #19: the cast was undefined) */
    const float big[5] = {1e30f, -1e30f, NAN, -2.75f, INFINITY};
    b_str(&b, "a.arr_f32"), b_u32(&b, AV_GGUF_ARRAY), b_u32(&b, AV_GGUF_F32), b_u64(&b, 5),
        b_put(&b, big, sizeof big);
    av_gguf g;
    av_err err = {{0}};
    int rc = av_gguf_parse(b.p, b.n, "kv.gguf", &g, &err);
    if (rc) free(b.p);
    REQUIREF(rc == 0, "%s", err.msg);
    int64_t v = 0;
    float f = 0;
    const char *s = NULL;
    size_t len = 0;
    CHECK(g.version == 2 && g.n_kv == 15 && g.n_tensors == 0 && g.alignment == 32);
    CHECK(av_gguf_get_int(&g, "a.u8", &v, &err) == 0 && v == 200);
    CHECK(av_gguf_get_int(&g, "a.i8", &v, &err) == 0 && v == -100);
    CHECK(av_gguf_get_int(&g, "a.u16", &v, &err) == 0 && v == 60000);
    CHECK(av_gguf_get_int(&g, "a.i16", &v, &err) == 0 && v == -30000);
    CHECK(av_gguf_get_int(&g, "a.u32", &v, &err) == 0 && v == 4000000000ll);
    CHECK(av_gguf_get_int(&g, "a.i32", &v, &err) == 0 && v == -7);
    CHECK(av_gguf_get_int(&g, "a.bool", &v, &err) == 0 && v == 1);
    CHECK(av_gguf_get_int(&g, "a.u64", &v, &err) == 0 && v == 1ll << 50);
    CHECK(av_gguf_get_int(&g, "a.i64", &v, &err) == 0 && v == -(1ll << 40));
    CHECK(av_gguf_get_f32(&g, "a.f32", &f, &err) == 0 && f == 0.25f);
    CHECK(av_gguf_get_f32(&g, "a.f64", &f, &err) == 0 && f == 2.5f);
    CHECK(av_gguf_get_str(&g, "a.str", &s, &len, &err) == 0 && len == 6 && memcmp(s, "h\xc3\xa9llo", 6) == 0);
    CHECK(av_gguf_get_int(&g, "a.str", &v, &err) == -1 &&
          strstr(err.msg, "'a.str' is a string, expected an integer"));
    const av_gguf_value *a = NULL;
    CHECK(av_gguf_get_array(&g, "a.arr_i16", AV_GGUF_I16, &a, &err) == 0 && a && a->arr_n == 3 &&
          av_gguf_array_int(a, 0) == -1 && av_gguf_array_int(a, 2) == 1 && av_gguf_array_f64(a, 1) == 0);
    CHECK(av_gguf_get_array(&g, "a.arr_i16", AV_GGUF_F32, &a, &err) == -1 && strstr(err.msg, "array of i16"));
    CHECK(av_gguf_get_array(&g, "a.nested", AV_GGUF_ARRAY, &a, &err) == 0 && a && a->arr_n == 3);
    CHECK(av_gguf_get_array(&g, "a.arr_f32", AV_GGUF_F32, &a, &err) == 0 && a &&
          av_gguf_array_int(a, 0) == INT64_MAX && av_gguf_array_int(a, 1) == INT64_MIN &&
          av_gguf_array_int(a, 2) == 0 && av_gguf_array_int(a, 3) == -2 &&
          av_gguf_array_int(a, 4) == INT64_MAX);
    const av_gguf_kv *kv = av_gguf_find_kv(&g, "a.nested");
    CHECK(kv && kv->v.arr_bytes == (4 + 8 + 8) + (4 + 8 + 9 + 10) + (4 + 8));
    av_gguf_close(&g);
    free(b.p);
}

/* Every prefix of a valid GGUF, and random byte flips, fail cleanly (or parse) without reading out of bounds.
 */
static void test_gguf_truncations_and_flips(void) {
    gguf_spec s = gguf_default();
    s.n_tok = 8;
    buf b = {0};
    gguf_build(&b, &s);
    av_err err = {{0}};
    av_gguf g;
    REQUIREF(av_gguf_parse(b.p, b.n, "good", &g, &err) == 0, "%s", err.msg);
    av_gguf_close(&g);
    int failures_ok = 1;
    for (size_t n = 0; n < b.n; n += n < 2048 ? 1 : 97) {
        uint8_t *copy = malloc(n ? n : 1); /* exact size: ASan sees any overread */
        memcpy(copy, b.p, n);
        memset(&err, 0, sizeof err);
        int rc = av_gguf_parse(copy, n, "prefix", &g, &err);
        if (rc == 0)
            av_gguf_close(&g);
        else
            failures_ok &= err.msg[0] != 0;
        CHECKF(rc == -1, "a %zu-byte prefix of %zu parsed", n, b.n);
        free(copy);
    }
    CHECK(failures_ok);
    uint64_t seed = 12345;
    for (int iter = 0; iter < 3000; iter++) {
        uint8_t *copy = malloc(b.n);
        memcpy(copy, b.p, b.n);
        for (int k = 0; k < 1 + iter % 4; k++) {
            seed = seed * 6364136223846793005ull + 1442695040888963407ull;
            size_t pos = (size_t)(seed >> 33) % (iter % 2 ? 1500 : b.n); /* half the flips in the header */
            copy[pos] ^= (uint8_t)(1u << ((seed >> 20) % 8));
        }
        memset(&err, 0, sizeof err);
        if (av_gguf_parse(copy, b.n, "flipped", &g, &err) == 0)
            av_gguf_close(&g);
        else
            failures_ok &= err.msg[0] != 0 && !strchr(err.msg, '\n');
        if (iter % 10 == 0) { /* the whole loader too: config, tensors, tokenizer metadata */
            const char *path = tmp_path("flipped.gguf");
            av_model *m = NULL;
            memset(&err, 0, sizeof err);
            REQUIRE(write_file(path, copy, b.n) == 0);
            if (av_model_load(path, NULL, &m, &err) == 0)
                av_model_free(m);
            else
                failures_ok &= err.msg[0] != 0 && !strchr(err.msg, '\n');
        }
        free(copy);
    }
    CHECK(failures_ok);
    free(b.p);
}

/* A prompt longer than the context window: a clear error from the library and the CLI. */
static void test_context_window(void) {
    char model[4096];
    if (!h_shared_file(model, sizeof model, "models/stories260K/stories260K.bin"))
        SKIP("stories260K not found");
    av_model *m = NULL;
    av_err err = {{0}};
    REQUIREF(av_model_load(model, NULL, &m, &err) == 0, "%s", err.msg);
    size_t n = (size_t)m->max_seq_len + 1;
    int32_t *ids = calloc(n, sizeof *ids);
    REQUIRE(ids);
    for (size_t i = 0; i < n; i++)
        ids[i] = (int32_t)(i % 200) + 3;
    av_trace *t = NULL;
    CHECK(av_trace_from_ids(m, ids, n, NULL, &t, &err) == -1 && t == NULL);
    CHECKF(strstr(err.msg, "513") && strstr(err.msg, "context window") && strstr(err.msg, "512"), "%s",
           err.msg);
    free(ids);
    av_model_free(m);
    const char *bin = getenv("ATTNVIZ_BIN");
    if (access(bin && *bin ? bin : "build/attnviz", X_OK) != 0) return;
    /* the CLI with text of ~600 tokens */
    char text[4000] = "";
    for (int i = 0; i < 600; i++)
        strcat(text, "x ");
    char cmd[12000], errf[512];
    snprintf(errf, sizeof errf, "%s/ctx.err", h_tmpdir());
    snprintf(cmd, sizeof cmd, "'%s' run --model '%s' --text '%s' -o '%s/ctx.trace' 2>'%s' >/dev/null",
             bin && *bin ? bin : "build/attnviz", model, text, h_tmpdir(), errf);
    int st = system(cmd);
    char *out = NULL;
    size_t len = 0;
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 1);
    REQUIRE(av_file_read_all(errf, 1 << 16, &out, &len, &err) == 0);
    CHECKF(strncmp(out, "attnviz run: ", 13) == 0 && strstr(out, "context window") &&
               strchr(out, '\n') == out + len - 1,
           "stderr: %s", out);
    free(out);
}

int main(void) {
    RUN(test_baselines_load);
    RUN(test_corrupt_gguf);
    RUN(test_corrupt_llama2c);
    RUN(test_corrupt_hf);
    RUN(test_gguf_all_kv_types);
    RUN(test_gguf_truncations_and_flips);
    RUN(test_context_window);
    return h_exit_code();
}
