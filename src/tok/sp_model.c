/* SentencePiece .model files: a protobuf ModelProto read field by field through the bounded reader.
 *
 *   ModelProto      1: repeated SentencePiece pieces   2: TrainerSpec   3: NormalizerSpec
 *   SentencePiece   1: piece (string)   2: score (float)   3: type (enum, default NORMAL)
 *   TrainerSpec     3: model_type (1 unigram, 2 bpe, 3 word, 4 char)   24: treat_whitespace_as_suffix
 *                   35: byte_fallback   46/47: bos_piece/eos_piece
 *   NormalizerSpec  2: precompiled_charsmap   3: add_dummy_prefix   4: remove_extra_whitespaces
 *                   5: escape_whitespaces (all three default true)
 * Unknown fields are skipped by wire type, as protobuf requires; malformed ones are errors. */
#include "sp.h"

#include <float.h>
#include <stdlib.h>
#include <string.h>

#define SP_MAX_PIECES (1 << 22)

static int pb_varint(av_reader *r, uint64_t *v, av_err *err) {
    uint64_t x = 0;
    for (int shift = 0; shift < 70; shift += 7) {
        uint8_t b;
        if (av_read_u8(r, &b, err)) return -1;
        x |= (uint64_t)(b & 0x7F) << shift;
        if (!(b & 0x80)) {
            *v = x;
            return 0;
        }
    }
    return av_errf(err, "%s: malformed varint at offset %zu", r->name, r->pos);
}

/* Reads a field key; wire types 3 and 4 (groups) are rejected. */
static int pb_key(av_reader *r, uint32_t *field, int *wt, av_err *err) {
    uint64_t key;
    size_t at = r->pos;
    if (pb_varint(r, &key, err)) return -1;
    *field = (uint32_t)(key >> 3);
    *wt = (int)(key & 7);
    if (*field == 0 || key >> 32 || (*wt != 0 && *wt != 1 && *wt != 2 && *wt != 5))
        return av_errf(err, "%s: malformed protobuf field key at offset %zu: not a SentencePiece model",
                       r->name, at);
    return 0;
}

static int pb_view(av_reader *r, const char **p, size_t *n, av_err *err) {
    uint64_t len;
    if (pb_varint(r, &len, err)) return -1;
    if (len > av_reader_left(r))
        return av_errf(err, "%s: field of %llu bytes at offset %zu runs past the end", r->name,
                       (unsigned long long)len, r->pos);
    const void *v;
    if (av_read_view(r, &v, (size_t)len, err)) return -1;
    *p = v;
    *n = (size_t)len;
    return 0;
}

static int pb_skip(av_reader *r, int wt, av_err *err) {
    uint64_t v;
    const char *p;
    size_t n;
    switch (wt) {
    case 0: return pb_varint(r, &v, err);
    case 1: return av_reader_seek(r, r->pos + (av_reader_left(r) >= 8 ? 8 : av_reader_left(r) + 1), err);
    case 2: return pb_view(r, &p, &n, err);
    default: return av_reader_seek(r, r->pos + (av_reader_left(r) >= 4 ? 4 : av_reader_left(r) + 1), err);
    }
}

static int pb_expect(av_reader *r, int wt, int want, uint32_t field, const char *msg, av_err *err) {
    if (wt == want) return 0;
    return av_errf(err, "%s: %s field %u has wire type %d, expected %d", r->name, msg, field, wt, want);
}

typedef struct sp_parse {
    int n, cap;
    char **pieces; /* as in the file */
    float *scores;
    int *types;
    int model_type, byte_fallback, ws_suffix;
    int add_dummy_prefix, remove_extra_ws, escape_ws;
    const char *charsmap;
    size_t charsmap_len;
    char bos_piece[64], eos_piece[64];
} sp_parse;

static int parse_piece(av_reader *r, sp_parse *ps, av_err *err) {
    const char *p = NULL;
    size_t n = 0;
    float score = 0;
    uint64_t type = AV_TOKTYPE_NORMAL;
    while (av_reader_left(r)) {
        uint32_t f;
        int wt;
        if (pb_key(r, &f, &wt, err)) return -1;
        if (f == 1) {
            if (pb_expect(r, wt, 2, f, "piece", err) || pb_view(r, &p, &n, err)) return -1;
        } else if (f == 2) {
            if (pb_expect(r, wt, 5, f, "score", err) || av_read_f32(r, &score, err)) return -1;
        } else if (f == 3) {
            if (pb_expect(r, wt, 0, f, "type", err) || pb_varint(r, &type, err)) return -1;
        } else if (pb_skip(r, wt, err)) {
            return -1;
        }
    }
    if (!p || n == 0) return av_errf(err, "%s: piece %d is empty", r->name, ps->n);
    if (n > 4096) return av_errf(err, "%s: piece %d is %zu bytes long", r->name, ps->n, n);
    if (memchr(p, 0, n)) return av_errf(err, "%s: piece %d contains a NUL byte", r->name, ps->n);
    if (type < 1 || type > 6)
        return av_errf(err, "%s: piece %d has unknown type %llu", r->name, ps->n, (unsigned long long)type);
    if (ps->n >= SP_MAX_PIECES) return av_errf(err, "%s: more than %d pieces", r->name, SP_MAX_PIECES);
    if (ps->n == ps->cap) {
        int cap = ps->cap ? ps->cap * 2 : 1024;
        char **np = realloc(ps->pieces, sizeof *np * (size_t)cap);
        if (np) ps->pieces = np;
        float *ns = np ? realloc(ps->scores, sizeof *ns * (size_t)cap) : NULL;
        if (ns) ps->scores = ns;
        int *nt = ns ? realloc(ps->types, sizeof *nt * (size_t)cap) : NULL;
        if (nt) ps->types = nt;
        if (!nt) return av_errf(err, "out of memory");
        ps->cap = cap;
    }
    ps->pieces[ps->n] = av_strndup(p, n);
    if (!ps->pieces[ps->n]) return av_errf(err, "out of memory");
    ps->scores[ps->n] = score;
    ps->types[ps->n] = (int)type;
    ps->n++;
    return 0;
}

static void copy_piece_name(char *dst, size_t cap, const char *p, size_t n) {
    if (n >= cap) n = cap - 1;
    memcpy(dst, p, n);
    dst[n] = 0;
}

static int parse_trainer(av_reader *r, sp_parse *ps, av_err *err) {
    while (av_reader_left(r)) {
        uint32_t f;
        int wt;
        uint64_t v;
        const char *p;
        size_t n;
        if (pb_key(r, &f, &wt, err)) return -1;
        if ((f == 3 || f == 24 || f == 35) && wt == 0) {
            if (pb_varint(r, &v, err)) return -1;
            if (f == 3)
                ps->model_type = (int)(v > 100 ? 100 : v);
            else if (f == 24)
                ps->ws_suffix = v != 0;
            else
                ps->byte_fallback = v != 0;
        } else if ((f == 46 || f == 47) && wt == 2) {
            if (pb_view(r, &p, &n, err)) return -1;
            copy_piece_name(f == 46 ? ps->bos_piece : ps->eos_piece, sizeof ps->bos_piece, p, n);
        } else if (pb_skip(r, wt, err)) {
            return -1;
        }
    }
    return 0;
}

static int parse_normalizer(av_reader *r, sp_parse *ps, av_err *err) {
    while (av_reader_left(r)) {
        uint32_t f;
        int wt;
        uint64_t v;
        if (pb_key(r, &f, &wt, err)) return -1;
        if (f == 2 && wt == 2) {
            if (pb_view(r, &ps->charsmap, &ps->charsmap_len, err)) return -1;
        } else if (f >= 3 && f <= 5 && wt == 0) {
            if (pb_varint(r, &v, err)) return -1;
            if (f == 3)
                ps->add_dummy_prefix = v != 0;
            else if (f == 4)
                ps->remove_extra_ws = v != 0;
            else
                ps->escape_ws = v != 0;
        } else if (pb_skip(r, wt, err)) {
            return -1;
        }
    }
    return 0;
}

static int parse_model(av_reader *r, sp_parse *ps, av_err *err) {
    int seen_normalizer = 0;
    while (av_reader_left(r)) {
        uint32_t f;
        int wt;
        if (pb_key(r, &f, &wt, err)) return -1;
        if (f >= 1 && f <= 3) {
            const char *p;
            size_t n;
            if (pb_expect(r, wt, 2, f, "ModelProto", err) || pb_view(r, &p, &n, err)) return -1;
            av_reader sub;
            av_reader_init(&sub, p, n, r->name);
            if (f == 3 && seen_normalizer++)
                continue; /* protobuf: the last one wins; libsentencepiece's is single */
            int rc = f == 1   ? parse_piece(&sub, ps, err)
                     : f == 2 ? parse_trainer(&sub, ps, err)
                              : parse_normalizer(&sub, ps, err);
            if (rc) return -1;
        } else if (pb_skip(r, wt, err)) {
            return -1;
        }
    }
    return 0;
}

/* Translated copy of a piece: "▁" -> ' ' (the spelling every SPM kind stores). */
static char *translate_piece(const char *p) {
    size_t n = strlen(p);
    char *o = malloc(n + 1);
    if (!o) return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        if (i + 3 <= n && memcmp(p + i, "\xE2\x96\x81", 3) == 0) {
            o[k++] = ' ';
            i += 3;
        } else {
            o[k++] = p[i++];
        }
    }
    o[k] = 0;
    return o;
}

static int build(sp_parse *ps, const char *name, av_tokenizer **out, av_err *err) {
    if (ps->n == 0) return av_errf(err, "%s: no pieces: not a SentencePiece model", name);
    if (ps->model_type != AV_SP_UNIGRAM && ps->model_type != AV_SP_BPE)
        return av_errf(err, "%s: SentencePiece model_type %d is not supported (only 1 unigram and 2 bpe)",
                       name, ps->model_type);
    av_tokenizer *t = av_tok_alloc(AV_TOK_SP, ps->n, err);
    if (!t) return -1;
    av_tok_sp *sp = calloc(1, sizeof *sp);
    t->sp = sp;
    if (!sp) goto oom;
    sp->model_type = ps->model_type;
    sp->byte_fallback = ps->byte_fallback;
    sp->add_dummy_prefix = ps->add_dummy_prefix;
    sp->remove_extra_ws = ps->remove_extra_ws;
    sp->escape_ws = ps->escape_ws;
    sp->ws_suffix = ps->ws_suffix;
    sp->orig = ps->pieces; /* ownership moves to the tokenizer */
    ps->pieces = NULL;
    sp->orig_lens = malloc(sizeof(int) * (size_t)ps->n);
    if (!sp->orig_lens) goto oom;
    t->text = AV_TOK_TEXT_SPACE;
    t->family = ps->model_type == AV_SP_BPE ? "llama" : "t5";
    sp->min_score = FLT_MAX;
    sp->max_score = FLT_MIN;
    for (int i = 0; i < ps->n; i++) {
        t->pieces[i] = translate_piece(sp->orig[i]);
        if (!t->pieces[i]) goto oom;
        t->scores[i] = ps->scores[i];
        t->types[i] = ps->types[i];
        sp->orig_lens[i] = (int)strlen(sp->orig[i]);
        if (ps->types[i] == AV_TOKTYPE_NORMAL) {
            if (ps->scores[i] < sp->min_score) sp->min_score = ps->scores[i];
            if (ps->scores[i] > sp->max_score) sp->max_score = ps->scores[i];
        }
        if (ps->types[i] == AV_TOKTYPE_UNKNOWN) {
            if (t->unk >= 0) {
                av_errf(err, "%s: two unknown pieces (%d and %d)", name, t->unk, i);
                goto fail;
            }
            t->unk = i;
        }
        if (ps->types[i] == AV_TOKTYPE_BYTE && av_tok_byte_piece(sp->orig[i], (size_t)sp->orig_lens[i]) < 0) {
            av_errf(err, "%s: byte piece %d is '%s', not <0xNN>", name, i, sp->orig[i]);
            goto fail;
        }
    }
    if (t->unk < 0) {
        av_errf(err, "%s: the model has no unknown piece", name);
        goto fail;
    }
    if (tok_strmap_init(&sp->normal, sp->orig, sp->orig_lens, (size_t)ps->n) ||
        tok_strmap_init(&sp->reserved, sp->orig, sp->orig_lens, (size_t)ps->n) || tok_trie_init(&sp->user) ||
        tok_trie_init(&sp->trie))
        goto oom;
    for (int i = 0; i < ps->n; i++) {
        int ty = ps->types[i];
        int normal = ty == AV_TOKTYPE_NORMAL || ty == AV_TOKTYPE_USER_DEFINED || ty == AV_TOKTYPE_UNUSED;
        if (tok_strmap_add(normal ? &sp->normal : &sp->reserved, i)) {
            av_errf(err, "%s: piece %d ('%s') is already defined", name, i, sp->orig[i]);
            goto fail;
        }
        if (ty == AV_TOKTYPE_UNUSED) sp->has_unused = 1;
        if (ty == AV_TOKTYPE_USER_DEFINED) {
            if (tok_trie_insert(&sp->user, sp->orig[i], (size_t)sp->orig_lens[i], i, 0)) goto oom;
            sp->n_user++;
        }
        if (normal && tok_trie_insert(&sp->trie, sp->orig[i], (size_t)sp->orig_lens[i], i, 0)) goto oom;
    }
    if (tok_charsmap_parse(&sp->charsmap, ps->charsmap, ps->charsmap_len, name, err)) goto fail;
    sp->split_at_spaces = !sp->has_unused;
    const char *space = sp->escape_ws ? "\xE2\x96\x81" : " ";
    size_t sl = strlen(space);
    for (int i = 0; i < ps->n && sp->split_at_spaces; i++) {
        int ty = ps->types[i];
        if (ty != AV_TOKTYPE_NORMAL && ty != AV_TOKTYPE_USER_DEFINED && ty != AV_TOKTYPE_UNUSED) continue;
        const char *p = sp->orig[i];
        size_t n = (size_t)sp->orig_lens[i];
        for (size_t k = 1; k + sl <= n; k++)
            if (memcmp(p + k, space, sl) == 0 && (k < sl || memcmp(p + k - sl, space, sl) != 0)) {
                sp->split_at_spaces = 0;
                break;
            }
    }
    t->bos = tok_strmap_get(&sp->reserved, ps->bos_piece, strlen(ps->bos_piece));
    if (t->bos < 0) t->bos = tok_strmap_get(&sp->normal, ps->bos_piece, strlen(ps->bos_piece));
    t->eos = tok_strmap_get(&sp->reserved, ps->eos_piece, strlen(ps->eos_piece));
    if (t->eos < 0) t->eos = tok_strmap_get(&sp->normal, ps->eos_piece, strlen(ps->eos_piece));
    /* every piece is findable by av_tok_find (encoding uses sp->normal and sp->reserved) */
    if (av_tok_index(t, 1, err) || av_tok_build_text(t, err)) goto fail;
    *out = t;
    return 0;
oom:
    av_errf(err, "out of memory");
fail:
    av_tokenizer_free(t);
    return -1;
}

int av_tok_load_sp_buffer(const void *data, size_t size, const char *name, av_tokenizer **out, av_err *err) {
    sp_parse ps;
    memset(&ps, 0, sizeof ps);
    ps.model_type = AV_SP_UNIGRAM;
    ps.add_dummy_prefix = ps.remove_extra_ws = ps.escape_ws = 1;
    strcpy(ps.bos_piece, "<s>");
    strcpy(ps.eos_piece, "</s>");
    av_reader r;
    av_reader_init(&r, data, size, name);
    int rc = parse_model(&r, &ps, err);
    if (rc == 0) rc = build(&ps, name, out, err);
    if (ps.pieces)
        for (int i = 0; i < ps.n; i++)
            free(ps.pieces[i]);
    free(ps.pieces);
    free(ps.scores);
    free(ps.types);
    return rc;
}

int av_tok_sp_from_pieces(int n, char **pieces, float *scores, int *types, int add_dummy_prefix, int bos,
                          int eos, av_tokenizer **out, av_err *err) {
    sp_parse ps;
    memset(&ps, 0, sizeof ps);
    ps.n = ps.cap = n;
    ps.pieces = pieces;
    ps.scores = scores;
    ps.types = types;
    ps.model_type = AV_SP_BPE;
    ps.add_dummy_prefix = add_dummy_prefix;
    ps.escape_ws = 1; /* llama.cpp's defaults for "llama" vocabularies: no extra-whitespace removal */
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        if (!pieces[i] || !pieces[i][0])
            rc = av_errf(err, "gguf tokenizer: token %d is empty", i);
        else if (types[i] < 1 || types[i] > 6)
            rc = av_errf(err, "gguf tokenizer: token %d has type %d", i, types[i]);
        if (types[i] == AV_TOKTYPE_BYTE) ps.byte_fallback = 1;
    }
    if (rc == 0) rc = build(&ps, "gguf tokenizer", out, err);
    if (rc == 0) {
        if (bos >= 0 && bos < n) (*out)->bos = bos;
        if (eos >= 0 && eos < n) (*out)->eos = eos;
    }
    if (ps.pieces)
        for (int i = 0; i < n; i++)
            free(ps.pieces[i]);
    free(ps.pieces);
    free(ps.scores);
    free(ps.types);
    return rc;
}

int av_tok_load_sp_model(const char *path, av_tokenizer **out, av_err *err) {
    av_mapped_file f;
    if (av_file_map(path, &f, err)) return -1;
    int rc = av_tok_load_sp_buffer(f.data, f.size, path, out, err);
    av_file_unmap(&f);
    return rc;
}

void av_tok_sp_free(av_tok_sp *sp, int n) {
    if (!sp) return;
    if (sp->orig)
        for (int i = 0; i < n; i++)
            free(sp->orig[i]);
    tok_strmap_free(&sp->normal);
    tok_strmap_free(&sp->reserved);
    tok_trie_free(&sp->user);
    tok_trie_free(&sp->trie);
    tok_charsmap_free(&sp->charsmap);
    free(sp->orig_lens);
    free(sp->orig);
    free(sp);
}
