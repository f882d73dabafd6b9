/* A random Llama-family model built in memory for tests (no file): n_layers layers of width dim, n_heads
 * heads (n_kv_heads key/value heads), a SwiGLU of width hidden, vocabulary 97, context ctx. Weights are
 * uniform in +-scale/2 from rand_r with a fixed seed, norms are 1, the head is tied to the embedding. */
#ifndef AV_TEST_SYNTH_MODEL_H
#define AV_TEST_SYNTH_MODEL_H

#include "model/model.h"

#include <stdio.h>
#include <stdlib.h>

enum { H_SYNTH_VOCAB = 97 };

/* A (rows, cols) random matrix the model owns (cols 0: a vector of rows ones). */
__attribute__((unused)) static av_tensor h_synth_tensor(av_model *m, int rows, int cols, float scale,
                                                        unsigned *seed) {
    size_t n = (size_t)rows * (size_t)(cols ? cols : 1);
    float *p = malloc(sizeof(float) * n);
    for (size_t i = 0; p && i < n; i++)
        p[i] = cols ? ((float)rand_r(seed) / (float)RAND_MAX - 0.5f) * scale : 1.0f;
    av_model_own(m, p, NULL);
    return av_tensor_f32(p, rows, cols);
}

__attribute__((unused)) static av_model *h_synth_llama(int dim, int hidden, int n_layers, int n_heads,
                                                       int n_kv_heads, int ctx) {
    av_model *m = av_model_new();
    av_llama_cfg c = {dim, hidden, n_layers, n_heads, n_kv_heads, 0, 1e-5f, 10000.0f, AV_ROPE_INTERLEAVED};
    int kv = dim / n_heads * n_kv_heads;
    m->vocab_size = H_SYNTH_VOCAB, m->max_seq_len = ctx, m->n_threads = 2;
    snprintf(m->name, sizeof m->name, "synthetic");
    snprintf(m->arch, sizeof m->arch, "llama");
    m->format = AV_MODEL_FORMAT_LLAMA2C; /* built in memory, laid out as a llama2.c checkpoint */
    if (av_llama_init(m, &c, NULL)) return NULL;
    unsigned seed = 12345;
    m->tok_emb = h_synth_tensor(m, H_SYNTH_VOCAB, dim, 2.0f, &seed);
    m->head.out.w = m->tok_emb;
    m->head.n_out = H_SYNTH_VOCAB;
    m->stacks[0].final_norm.w = h_synth_tensor(m, dim, 0, 0, &seed);
    for (int l = 0; l < n_layers; l++) {
        av_block *B = &m->stacks[0].blocks[l];
        B->attn_norm.w = h_synth_tensor(m, dim, 0, 0, &seed);
        B->ffn_norm.w = h_synth_tensor(m, dim, 0, 0, &seed);
        B->attn.q.w = h_synth_tensor(m, dim, dim, 0.8f, &seed);
        B->attn.k.w = h_synth_tensor(m, kv, dim, 0.8f, &seed);
        B->attn.v.w = h_synth_tensor(m, kv, dim, 0.5f, &seed);
        B->attn.o.w = h_synth_tensor(m, dim, dim, 0.5f, &seed);
        B->ffn.gate.w = h_synth_tensor(m, hidden, dim, 0.5f, &seed);
        B->ffn.up.w = h_synth_tensor(m, hidden, dim, 0.5f, &seed);
        B->ffn.down.w = h_synth_tensor(m, dim, hidden, 0.5f, &seed);
    }
    av_err err = {{0}};
    if (av_model_check(m, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        av_model_free(m);
        return NULL;
    }
    return m;
}

#endif
