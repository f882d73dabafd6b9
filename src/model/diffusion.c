/* The pieces of text-to-image diffusion around the denoiser (docs/T2I_MODEL.md sections 3, 4, 6, 7): the
 * noise schedule, the DDIM timesteps, the time token and the prompt's token ids. The sampler loop that uses
 * them, with its capture, is src/trace/t2i.c. */
#include "forward.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void av_t2i_alphas_cumprod(const av_model *m, double *ab) {
    const av_diffusion *d = &m->diff;
    int T = d->n_train_steps;
    double s = d->cosine_s, prod = 1.0;
    for (int t = 0; t < T; t++) {
        double f0 = cos(((double)t / T + s) / (1 + s) * M_PI / 2),
               f1 = cos(((double)(t + 1) / T + s) / (1 + s) * M_PI / 2);
        double beta = 1.0 - (f1 * f1) / (f0 * f0);
        prod *= 1.0 - (beta < d->max_beta ? beta : d->max_beta);
        ab[t] = prod;
    }
}

void av_t2i_timesteps(int T, int n, int32_t *ts) {
    for (int i = 0; i < n; i++)
        ts[i] = (int32_t)((int64_t)(n - i) * T / n - 1);
}

void av_t2i_time_sinusoid(const av_model *m, int t, float *out) {
    int half = m->diff.freq_dim / 2;
    for (int j = 0; j < half; j++) {
        double w = exp(-log(m->diff.max_period) * j / half);
        out[j] = (float)cos(t * w);
        out[half + j] = (float)sin(t * w);
    }
}

int av_t2i_time_token(const av_model *m, av_state *s, int t, float *out, av_err *err) {
    const av_diffusion *d = &m->diff;
    int dim = s->st->cfg.dim;
    float *sin_t = malloc(sizeof(float) * (size_t)(d->freq_dim + dim)); /* (freq_dim) then (dim) */
    if (!sin_t) return av_errf(err, "out of memory");
    float *hid = sin_t + d->freq_dim;
    av_t2i_time_sinusoid(m, t, sin_t);
    av_linear_apply(hid, sin_t, &d->time_1, 1, s->wscratch, 1);
    av_activate(hid, (size_t)dim, AV_ACT_GELU);
    av_linear_apply(out, hid, &d->time_2, 1, s->wscratch, 1);
    free(sin_t);
    return 0;
}

int av_t2i_prompt_ids(const av_model *m, const char *prompt, int32_t **ids, size_t *n, av_err *err) {
    *ids = NULL;
    *n = 0;
    if (!m->tok)
        return av_errf(err, "%s: no tokenizer (tokenizer.json or vocab.txt next to the weights)", m->name);
    if (av_tokenizer_encode(m->tok, prompt, strlen(prompt), 1, ids, n, err)) return -1;
    if (*n < 2 || (*ids)[0] != m->diff.cls_id || (*ids)[*n - 1] != m->diff.sep_id) {
        free(*ids);
        *ids = NULL;
        return av_errf(err, "%s: the tokenizer does not wrap prompts in [CLS] ... [SEP] as the model expects",
                       m->name);
    }
    if (*n > (size_t)m->diff.max_text) {
        free(*ids);
        *ids = NULL;
        return av_errf(err, "the prompt is %zu tokens ([CLS] and [SEP] included); the model takes at most %d",
                       *n, m->diff.max_text);
    }
    return 0;
}
