/* Attention rollout (Abnar & Zuidema 2020, "Quantifying Attention Flow in Transformers"): the residual
 * connection is modelled by mixing each layer's attention with the identity, A' = rownorm((1-r) A + r I)
 * (r = 0.5 gives the paper's (A + I) / 2), and the layers are chained by matrix products,
 * R = A'_{L-1} ... A'_1 A'_0, so R[i][j] is the share of input token j in token i's final representation.
 * The encoder-decoder variant carries the source share through the decoder's cross-attention. */
#include "analysis.h"
#include "core/core.h"
#include "internal.h"
#include "kernels/kernels.h"
#include "trace/trace.h"

#include <stdlib.h>
#include <string.h>

av_rollout_params av_rollout_default_params(void) { return (av_rollout_params){AV_REDUCE_MEAN, 0.5f, 0}; }

void av_an_rownorm(float *m, int rows, int cols) {
    for (int i = 0; i < rows; i++) {
        float *row = m + (size_t)i * (size_t)cols;
        double s = 0;
        for (int j = 0; j < cols; j++)
            s += row[j];
        if (s > 0)
            for (int j = 0; j < cols; j++)
                row[j] = (float)(row[j] / s);
    }
}

void av_an_residual(const float *a, int T, float r, float *out) {
    for (int i = 0; i < T; i++)
        for (int j = 0; j < T; j++) {
            size_t k = (size_t)i * (size_t)T + (size_t)j;
            out[k] = (1.0f - r) * a[k] + (i == j ? r : 0.0f);
        }
    av_an_rownorm(out, T, T);
}

float *av_an_alloc(size_t a, size_t b, av_err *err) {
    size_t n;
    if (!av_mul_size(a, b, &n) || !av_mul_size(n, sizeof(float), &n)) {
        av_errf(err, "matrix size overflows");
        return NULL;
    }
    float *p = malloc(n ? n : sizeof(float));
    if (!p) av_errf(err, "out of memory for a %zu x %zu matrix", a, b);
    return p;
}

int av_an_fused_layers(const av_trace *t, av_attn_kind kind, av_reduce fusion, float ***out, int *n_layers,
                       int *n_query, int *n_key, av_err *err) {
    *out = NULL;
    int L = av_trace_n_layers(t, kind), nq = av_trace_n_query(t, kind), nk = av_trace_n_key(t, kind);
    if (L == 0) return av_errf(err, "the trace has no '%s' attention", av_attn_kind_name(kind));
    float **mats = calloc((size_t)L, sizeof *mats); /* (L) pointers to (n_query, n_key) */
    if (!mats) return av_errf(err, "out of memory");
    /* each layer's heads fused row by row as the tile API reads them (F16 converted, lazy rows recomputed a
     * block at a time): no layer is held whole in f32 (av_trace_attn would keep every one) */
    int heads = fusion == AV_REDUCE_MAX   ? AV_HEADS_MAX
                : fusion == AV_REDUCE_MIN ? AV_HEADS_MIN
                                          : AV_HEADS_MEAN;
    for (int l = 0; l < L; l++) {
        if (!(mats[l] = av_an_alloc((size_t)nq, (size_t)nk, err)) ||
            av_trace_rows(t, kind, l, heads, 0, nq, 0, 0, mats[l], err))
            goto fail;
    }
    *out = mats;
    *n_layers = L;
    *n_query = nq;
    *n_key = nk;
    return 0;
fail:
    av_an_free_layers(mats, L);
    return -1;
}

void av_an_free_layers(float **mats, int n) {
    if (!mats) return;
    for (int l = 0; l < n; l++)
        free(mats[l]);
    free(mats);
}

int av_rollout_mats(const float *const *layers, int n_layers, int T, float residual, float *out,
                    av_err *err) {
    if (n_layers <= 0 || T <= 0) return av_errf(err, "rollout needs at least one layer and one token");
    if (!(residual >= 0 && residual <= 1)) return av_errf(err, "rollout residual weight must be in [0, 1]");
    float *a = av_an_alloc((size_t)T, (size_t)T, err);   /* (T, T) A'_l */
    float *tmp = av_an_alloc((size_t)T, (size_t)T, err); /* (T, T) product */
    if (!a || !tmp) {
        free(a);
        free(tmp);
        return -1;
    }
    av_an_residual(layers[0], T, residual, out);
    for (int l = 1; l < n_layers; l++) {
        av_an_residual(layers[l], T, residual, a);
        /* tmp (T, T) = A'_l (T, T) R (T, T) */
        av_gemm_f32(0, 0, T, T, T, 1.0f, a, T, out, T, 0.0f, tmp, T, 1);
        memcpy(out, tmp, sizeof(float) * (size_t)T * (size_t)T);
    }
    free(a);
    free(tmp);
    return 0;
}

int av_rollout_trace(const av_trace *t, av_attn_kind kind, const av_rollout_params *p, float *out,
                     av_err *err) {
    av_rollout_params defaults = av_rollout_default_params();
    if (!p) p = &defaults;
    if (kind == AV_ATTN_CROSS)
        return av_errf(
            err, "rollout of cross-attention needs the encoder-decoder variant (av_rollout_cross_trace)");
    float **mats;
    int L, nq, nk;
    if (av_an_fused_layers(t, kind, p->fusion, &mats, &L, &nq, &nk, err)) return -1;
    int rc = nq != nk ? av_errf(err, "rollout needs square attention; '%s' is %d x %d",
                                av_attn_kind_name(kind), nq, nk)
                      : av_rollout_mats((const float *const *)mats, L, nq, p->residual, out, err);
    av_an_free_layers(mats, L);
    return rc;
}

/* Encoder-decoder rollout. With r the residual weight, R_enc the encoder rollout (S, S), and per decoder
 * layer l the fused self-attention D_l (T, T) and cross-attention C_l (T, S):
 *   R_tt = I, R_ts = 0
 *   self:  R_tt <- D'_l R_tt,  R_ts <- D'_l R_ts           (D' = rownorm((1-r) D + r I))
 *   cross: R_tt <- r R_tt,     R_ts <- r R_ts + (1-r) rownorm(C_l) R_enc
 * Rows of [R_tt | R_ts] sum to 1; R_ts[i][j] is the share of source token j in target token i. R_tt never
 * feeds R_ts, so only R_ts is computed. */
int av_rollout_cross_trace(const av_trace *t, const av_rollout_params *p, float *out, int *n_target,
                           int *n_source, av_err *err) {
    av_rollout_params defaults = av_rollout_default_params();
    if (!p) p = &defaults;
    float r = p->residual;
    if (!(r >= 0 && r <= 1)) return av_errf(err, "rollout residual weight must be in [0, 1]");
    float **enc = NULL, **dec = NULL, **cross = NULL;
    float *renc = NULL, *rts = NULL, *a = NULL, *tmp = NULL, *c = NULL;
    int Le = 0, Ld = 0, Lc = 0, S = 0, S2, T = 0, T2, Tc, Sc, rc = -1;
    if (av_trace_n_layers(t, AV_ATTN_CROSS) == 0)
        return av_errf(err,
                       "the trace has no cross-attention (attn.cross.<layer>): not an encoder-decoder trace");
    if (av_an_fused_layers(t, AV_ATTN_CROSS, p->fusion, &cross, &Lc, &Tc, &Sc, err)) return -1;
    if (av_trace_n_layers(t, AV_ATTN_DEC) &&
        av_an_fused_layers(t, AV_ATTN_DEC, p->fusion, &dec, &Ld, &T, &T2, err))
        goto done;
    if (av_trace_n_layers(t, AV_ATTN_ENC) &&
        av_an_fused_layers(t, AV_ATTN_ENC, p->fusion, &enc, &Le, &S, &S2, err))
        goto done;
    if (dec && Ld != Lc) {
        av_errf(err, "the trace has %d decoder self-attention layers but %d cross-attention layers", Ld, Lc);
        goto done;
    }
    if ((dec && (T != T2 || T != Tc)) || (enc && (S != S2 || S != Sc))) {
        av_errf(err, "encoder/decoder attention shapes do not match the cross-attention (%d x %d)", Tc, Sc);
        goto done;
    }
    T = Tc;
    S = Sc;
    /* renc (S, S), rts (T, S), a (T, T), tmp (T, S), c (T, S) */
    if (!(renc = av_an_alloc((size_t)S, (size_t)S, err)) || !(rts = av_an_alloc((size_t)T, (size_t)S, err)) ||
        !(a = av_an_alloc((size_t)T, (size_t)T, err)) || !(tmp = av_an_alloc((size_t)T, (size_t)S, err)) ||
        !(c = av_an_alloc((size_t)T, (size_t)S, err)))
        goto done;
    if (enc) {
        if (av_rollout_mats((const float *const *)enc, Le, S, r, renc, err)) goto done;
    } else { /* no encoder self-attention stored: the source tokens stay themselves */
        memset(renc, 0, sizeof(float) * (size_t)S * (size_t)S);
        for (int j = 0; j < S; j++)
            renc[(size_t)j * (size_t)S + (size_t)j] = 1;
    }
    memset(rts, 0, sizeof(float) * (size_t)T * (size_t)S);
    for (int l = 0; l < Lc; l++) {
        if (dec) {
            av_an_residual(dec[l], T, r, a);
            /* R_ts (T, S) = D' (T, T) R_ts (T, S) */
            av_gemm_f32(0, 0, T, S, T, 1.0f, a, T, rts, S, 0.0f, tmp, S, 1);
            memcpy(rts, tmp, sizeof(float) * (size_t)T * (size_t)S);
        }
        memcpy(c, cross[l], sizeof(float) * (size_t)T * (size_t)S);
        av_an_rownorm(c, T, S);
        /* R_ts (T, S) = r R_ts + (1-r) C (T, S) R_enc (S, S) */
        av_gemm_f32(0, 0, T, S, S, 1.0f - r, c, S, renc, S, r, rts, S, 1);
    }
    memcpy(out, rts, sizeof(float) * (size_t)T * (size_t)S);
    if (p->normalize) av_an_rownorm(out, T, S);
    *n_target = T;
    *n_source = S;
    rc = 0;
done:
    av_an_free_layers(enc, Le);
    av_an_free_layers(dec, Ld);
    av_an_free_layers(cross, Lc);
    free(renc);
    free(rts);
    free(a);
    free(tmp);
    free(c);
    return rc;
}
