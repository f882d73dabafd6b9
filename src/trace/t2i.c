/* Text-to-image runs (docs/T2I_MODEL.md section 7): the deterministic DDIM sampler with classifier-free
 * guidance on the t2i family, capturing the conditional pass's cross-attention at every step into daam.raw
 * (per step, layer and head, the time token's row dropped) and its mean over steps as attn.cross.<l>; the
 * trace also holds the image and every prompt token's DAAM map. */
#include "capture.h"
#include "kernels/sample.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* One run: the states (text encoder, the denoiser attached to the prompt and to the empty prompt), the
 * latent and the capture. */
typedef struct t2i_run {
    const av_model *m;
    int S, n_steps, n_layers, n_heads, g, size, n_pix; /* prompt tokens, ..., image side, 3 * size^2 */
    av_state *text, *cond, *uncond;
    av_run_capture cap;
    float *x, *v_c, *v_u, *tt; /* (n_pix) x3, (dim) time token */
    float **sum;               /* (n_layers) -> (n_heads, 1 + g^2, S): cross-attention summed over steps */
    float *raw;                /* (n_steps, n_layers, n_heads, S, g, g) */
} t2i_run;

av_t2i_params av_t2i_default_params(void) { return (av_t2i_params){.seed = 1, .steps = 0, .guidance = -1}; }

static void run_free(t2i_run *r) {
    av_state_free(r->text);
    av_state_free(r->cond);
    av_state_free(r->uncond);
    av_cap_free(&r->cap);
    free(r->x);
    for (int l = 0; r->sum && l < r->n_layers; l++)
        free(r->sum[l]);
    free(r->sum);
    free(r->raw);
}

/* Encodes ids (n) and attaches the result to a new denoiser state *dec. */
static int encode(t2i_run *r, const int32_t *ids, int n, int n_threads, av_state **dec, av_err *err) {
    return av_forward_ids(r->m, r->text, ids, n, 0, NULL, err) ||
                   av_state_new(r->m, 1, r->m->vision.grid * r->m->vision.grid + 1, n_threads, dec, err) ||
                   av_state_attach(*dec, r->text, err)
               ? -1
               : 0;
}

static int run_init(t2i_run *r, const av_model *m, const int32_t *ids, int S, const av_t2i_params *p,
                    const av_run_params *rp, av_err *err) {
    memset(r, 0, sizeof *r);
    r->m = m;
    r->S = S;
    r->n_steps = p->steps;
    r->n_layers = m->stacks[1].n_layers;
    r->n_heads = m->stacks[1].cfg.n_heads;
    r->g = m->vision.grid;
    r->size = m->vision.image_size;
    r->n_pix = m->vision.channels * r->size * r->size;
    int T = 1 + r->g * r->g, dim = m->stacks[1].cfg.dim;
    int32_t uncond[2] = {m->diff.cls_id, m->diff.sep_id}; /* the empty prompt */
    size_t raw_n =
        (size_t)r->n_steps * (size_t)r->n_layers * (size_t)r->n_heads * (size_t)S * (size_t)(T - 1);
    if (av_cap_init(&r->cap, m, rp, err)) return -1;
    av_cap_declare(&r->cap, AV_ATTN_CROSS, 1, 1, T, S);
    r->x = malloc(sizeof(float) * (3 * (size_t)r->n_pix + (size_t)dim));
    r->sum = calloc((size_t)r->n_layers, sizeof *r->sum);
    r->raw = malloc(sizeof(float) * raw_n);
    if (!r->x || !r->sum || !r->raw) return av_errf(err, "out of memory");
    for (int l = 0; l < r->n_layers; l++)
        if (!(r->sum[l] = calloc((size_t)r->n_heads * (size_t)T * (size_t)S, sizeof(float))))
            return av_errf(err, "out of memory");
    r->v_c = r->x + r->n_pix;
    r->v_u = r->v_c + r->n_pix;
    r->tt = r->v_u + r->n_pix;
    return av_cap_alloc(&r->cap, 0, err) ||
                   av_state_new(m, 0, m->diff.max_text, rp->n_threads, &r->text, err) ||
                   encode(r, ids, S, rp->n_threads, &r->cond, err) ||
                   encode(r, uncond, 2, rp->n_threads, &r->uncond, err)
               ? -1
               : 0;
}

/* Step i's captured cross-attention into raw (patch rows only, token-major) and the sums over steps. */
static void record_step(t2i_run *r, int i) {
    int S = r->S, gg = r->g * r->g;
    for (int l = 0; l < r->n_layers; l++) {
        const float *a = r->cap.kinds[AV_ATTN_CROSS].attn[l]; /* (n_heads, 1 + gg, S) */
        for (int h = 0; h < r->n_heads; h++) {
            const float *ah = a + (size_t)h * (size_t)(1 + gg) * (size_t)S;
            float *dst =
                r->raw + (((size_t)i * (size_t)r->n_layers + (size_t)l) * (size_t)r->n_heads + (size_t)h) *
                             (size_t)S * (size_t)gg; /* (S, g, g) */
            for (int n = 0; n < gg; n++)
                for (int j = 0; j < S; j++)
                    dst[(size_t)j * (size_t)gg + (size_t)n] = ah[(size_t)(1 + n) * (size_t)S + (size_t)j];
        }
        for (size_t k = 0; k < (size_t)r->n_heads * (size_t)(1 + gg) * (size_t)S; k++)
            r->sum[l][k] += a[k];
    }
}

/* The DDIM update of x at timestep t (next timestep t_next, or -1 after the last step) from the guided v. */
static void ddim_update(t2i_run *r, const double *ab, int t, int t_next, float w) {
    float a = (float)sqrt(ab[t]), b = (float)sqrt(1.0 - ab[t]);
    float a2 = t_next >= 0 ? (float)sqrt(ab[t_next]) : 1.0f,
          b2 = t_next >= 0 ? (float)sqrt(1.0 - ab[t_next]) : 0.0f;
    for (int k = 0; k < r->n_pix; k++) {
        float v = r->v_u[k] + w * (r->v_c[k] - r->v_u[k]);
        float ax = a * r->x[k], bv = b * v, x0 = ax - bv;
        x0 = x0 < -1.0f ? -1.0f : x0 > 1.0f ? 1.0f : x0;
        float bx = b * r->x[k], av = a * v, eps = bx + av;
        float ax0 = a2 * x0, beps = b2 * eps;
        r->x[k] = ax0 + beps;
    }
}

static int sample(t2i_run *r, const av_t2i_params *p, av_err *err) {
    const av_model *m = r->m;
    int T = m->diff.n_train_steps, rc = -1;
    double *ab = malloc(sizeof(double) * (size_t)T);
    int32_t *ts = malloc(sizeof(int32_t) * (size_t)r->n_steps);
    if (!ab || !ts) {
        av_errf(err, "out of memory");
        goto done;
    }
    av_t2i_alphas_cumprod(m, ab);
    av_t2i_timesteps(T, r->n_steps, ts);
    av_rng rng;
    av_rng_seed(&rng, p->seed);
    av_rng_normals(&rng, r->x, (size_t)r->n_pix);
    av_pass pass = {.cross = av_cap_view(&r->cap, AV_ATTN_CROSS)};
    for (int i = 0; i < r->n_steps; i++) {
        if (av_t2i_time_token(m, r->cond, ts[i], r->tt, err) ||
            av_forward_denoiser(m, r->cond, r->x, r->tt, &pass, r->v_c, err) ||
            av_forward_denoiser(m, r->uncond, r->x, r->tt, NULL, r->v_u, err))
            goto done;
        record_step(r, i);
        ddim_update(r, ab, ts[i], i + 1 < r->n_steps ? ts[i + 1] : -1, p->guidance);
    }
    rc = 0;
done:
    free(ab);
    free(ts);
    return rc;
}

/* metadata: prompt, prompt_tokens (= source_tokens, the cross-attention's keys), seed, steps, guidance,
 * timesteps, patch grid, image size */
static int t2i_meta(t2i_run *r, av_trace *t, const char *prompt, const int32_t *ids, const av_t2i_params *p,
                    av_err *err) {
    char buf[64];
    int32_t *ts = malloc(sizeof(int32_t) * (size_t)r->n_steps);
    if (!ts) return av_errf(err, "out of memory");
    av_t2i_timesteps(r->m->diff.n_train_steps, r->n_steps, ts);
    int rc = av_trace_set_meta(t, "prompt", prompt, err) ||
             av_cap_json_list(r->m, t, "prompt_tokens", ids, (size_t)r->S, 0, err) ||
             av_cap_json_list(r->m, t, "source_tokens", ids, (size_t)r->S, 0, err) ||
             av_cap_json_list(r->m, t, "timesteps", ts, (size_t)r->n_steps, 1, err);
    free(ts);
    snprintf(buf, sizeof buf, "%llu", (unsigned long long)p->seed);
    rc = rc || av_trace_set_meta(t, "seed", buf, err) || av_trace_set_meta_int(t, "steps", r->n_steps, err);
    snprintf(buf, sizeof buf, "%.9g", (double)p->guidance);
    rc = rc || av_trace_set_meta(t, "guidance_scale", buf, err);
    return rc || av_cap_image_meta(r->m, t, "[time]", NULL, err) ? -1 : 0;
}

/* image = clamp((x + 1) / 2, 0, 1); daam.raw; daam.words over everything. */
static int t2i_tensors(t2i_run *r, av_trace *t, av_err *err) {
    int gg = r->g * r->g, dims[5] = {r->n_steps, r->n_layers, r->n_heads, r->S, r->g};
    float *img = malloc(sizeof(float) * (size_t)r->n_pix);
    float *words = malloc(sizeof(float) * (size_t)r->S * (size_t)r->size * (size_t)r->size);
    for (int k = 0; img && k < r->n_pix; k++) {
        float v = (r->x[k] + 1.0f) / 2.0f;
        img[k] = v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v;
    }
    if (!img || !words || av_daam_maps(r->raw, dims, r->size, NULL, words, err)) {
        free(img);
        free(words);
        return img && words ? -1 : av_errf(err, "out of memory");
    }
    int64_t img_shape[3] = {r->m->vision.channels, r->size, r->size},
            words_shape[3] = {r->S, r->size, r->size};
    int64_t raw_shape[4] = {r->n_steps, r->n_layers, r->n_heads, (int64_t)r->S * gg};
    float *raw = r->raw;
    r->raw = NULL; /* the trace owns it now, also on failure */
    return av_trace_put_tensor(t, "image", AV_DTYPE_F32, 3, img_shape, img, err) ||
                   av_trace_put_tensor(t, "daam.words", AV_DTYPE_F32, 3, words_shape, words, err) ||
                   av_trace_put_tensor(t, "daam.raw", AV_DTYPE_F32, 4, raw_shape, raw, err)
               ? -1
               : 0;
}

int av_trace_from_t2i(const av_model *m, const char *prompt, const av_t2i_params *params, av_trace **out,
                      av_err *err) {
    *out = NULL;
    if (m->family != AV_FAMILY_T2I) return av_errf(err, "%s is not a text-to-image model", m->name);
    av_t2i_params p = params ? *params : av_t2i_default_params();
    if (p.steps == 0) p.steps = m->diff.default_steps;
    if (p.guidance < 0) p.guidance = m->diff.guidance;
    if (p.steps < 1 || p.steps > m->diff.n_train_steps)
        return av_errf(err, "steps must be 1..%d, got %d", m->diff.n_train_steps, p.steps);
    if (!isfinite(p.guidance)) return av_errf(err, "the guidance scale must be finite");
    int32_t *ids;
    size_t S;
    if (av_t2i_prompt_ids(m, prompt, &ids, &S, err)) return -1;
    av_run_params rp = av_run_default_params();
    rp.n_threads = p.n_threads;
    t2i_run r;
    int rc = run_init(&r, m, ids, (int)S, &p, &rp, err) || sample(&r, &p, err) ? -1 : 0;
    int T = 1 + r.g * r.g;
    for (int l = 0; rc == 0 && l < r.n_layers; l++) /* the mean over steps is what attn.cross.<l> holds */
        for (size_t k = 0; k < (size_t)r.n_heads * (size_t)T * S; k++)
            r.cap.kinds[AV_ATTN_CROSS].attn[l][k] = r.sum[l][k] / (float)r.n_steps;
    if (rc == 0 && av_cap_finish(&r.cap, out, err) == 0 &&
        (t2i_meta(&r, *out, prompt, ids, &p, err) || t2i_tensors(&r, *out, err))) {
        av_trace_free(*out);
        *out = NULL;
    }
    rc = *out ? 0 : -1;
    run_free(&r);
    free(ids);
    return rc;
}
