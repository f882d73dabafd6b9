/* llama2.c tokenizer files: int32 max_token_length, then per token: float32 score, int32 length, bytes. */
#include "tok.h"

#include <stdlib.h>
#include <string.h>

#define AV_TOK_MAX_VOCAB (1 << 22)

int av_tok_load_llama2c(const char *path, av_tokenizer **out, av_err *err) {
    av_mapped_file f;
    if (av_file_map(path, &f, err)) return -1;
    av_reader r;
    av_reader_init(&r, f.data, f.size, path);
    int32_t max_len;
    int rc = -1, n = 0, cap = 0;
    char **pieces = NULL;
    float *scores = NULL;
    if (av_read_i32(&r, &max_len, err)) goto done;
    if (max_len <= 0 || max_len > 4096) {
        av_errf(err, "%s: not a llama2.c tokenizer (max token length %d)", path, max_len);
        goto done;
    }
    while (av_reader_left(&r) > 0) {
        float score;
        int32_t len;
        const void *bytes;
        if (n >= AV_TOK_MAX_VOCAB) {
            av_errf(err, "%s: more than %d tokens", path, AV_TOK_MAX_VOCAB);
            goto done;
        }
        if (av_read_f32(&r, &score, err) || av_read_i32(&r, &len, err)) goto done;
        if (len < 0 || len > max_len) {
            av_errf(err, "%s: token %d has length %d (max %d): not a llama2.c tokenizer or corrupt", path, n,
                    len, max_len);
            goto done;
        }
        if (av_read_view(&r, &bytes, (size_t)len, err)) goto done;
        if (memchr(bytes, 0, (size_t)len)) {
            av_errf(err, "%s: token %d contains a NUL byte", path, n);
            goto done;
        }
        if (n == cap) {
            cap = cap ? 2 * cap : 1024;
            char **p2 = realloc(pieces, sizeof *p2 * (size_t)cap);
            float *s2 = p2 ? realloc(scores, sizeof *s2 * (size_t)cap) : NULL;
            if (p2) pieces = p2;
            if (s2) scores = s2;
            if (!p2 || !s2) {
                av_errf(err, "out of memory");
                goto done;
            }
        }
        pieces[n] = av_strndup(bytes, (size_t)len);
        if (!pieces[n]) {
            av_errf(err, "out of memory");
            goto done;
        }
        scores[n++] = score;
    }
    if (n < 3) {
        av_errf(err, "%s: only %d tokens: not a llama2.c tokenizer", path, n);
        goto done;
    }
    rc = av_tok_spm_create(n, pieces, scores, NULL, 1, 2, 0, out, err);
    pieces = NULL; /* owned by the tokenizer now (or freed on its failure) */
    scores = NULL;
    n = 0;
done:
    for (int i = 0; i < n; i++)
        free(pieces[i]);
    free(pieces);
    free(scores);
    av_file_unmap(&f);
    return rc;
}
