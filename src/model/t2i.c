/* attnviz's own text-to-image diffusion model (model_type "attnviz-t2i", docs/T2I_MODEL.md), mapped onto two
 * stacks of the one block: a pre-norm text encoder (stack 0) and a pre-norm denoiser with cross-attention to
 * the text (stack 1) over [time token; patch tokens]. config.json fixes the sampler too; every key that
 * changes the math is read, and a value this engine does not implement is refused rather than ignored. */
#include "hf.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* String keys whose only implemented value is the spec's. */
static const struct {
    const char *key, *value;
} fixed_str[] = {{"beta_schedule", "squaredcos_cap_v2"},
                 {"prediction_type", "v_prediction"},
                 {"sampler", "ddim"},
                 {"timestep_spacing", "trailing"},
                 {"noise", "splitmix64_box_muller"},
                 {"hidden_act", "gelu"},
                 {"uncond_prompt", ""}};

/* Numeric keys likewise (eta 0: deterministic DDIM; x0 clamped to [-1, 1]; one prefix token). */
static const struct {
    const char *key;
    double value;
} fixed_num[] = {{"eta", 0.0}, {"clip_sample_range", 1.0}, {"prefix_tokens", 1}, {"channels", 3}};

static int check_fixed(const av_hf_dir *h, av_err *err) {
    for (size_t i = 0; i < sizeof fixed_str / sizeof fixed_str[0]; i++) {
        json_t *v = json_object_get(h->cfg, fixed_str[i].key);
        if (!json_is_string(v) || strcmp(json_string_value(v), fixed_str[i].value) != 0)
            return av_errf(err, "%s: \"%s\" must be \"%s\" (the only one implemented)", h->cfg_path,
                           fixed_str[i].key, fixed_str[i].value);
    }
    for (size_t i = 0; i < sizeof fixed_num / sizeof fixed_num[0]; i++) {
        json_t *v = json_object_get(h->cfg, fixed_num[i].key);
        if (!json_is_number(v) || json_number_value(v) != fixed_num[i].value)
            return av_errf(err, "%s: \"%s\" must be %g (the only value implemented)", h->cfg_path,
                           fixed_num[i].key, fixed_num[i].value);
    }
    json_t *range = json_object_get(h->cfg, "image_range"), *clip = json_object_get(h->cfg, "clip_sample");
    if (!json_is_array(range) || json_array_size(range) != 2 ||
        json_number_value(json_array_get(range, 0)) != -1.0 ||
        json_number_value(json_array_get(range, 1)) != 1.0)
        return av_errf(err, "%s: \"image_range\" must be [-1.0, 1.0]", h->cfg_path);
    if (!json_is_true(clip)) return av_errf(err, "%s: \"clip_sample\" must be true", h->cfg_path);
    return 0;
}

/* The sizes of both stacks, the vision and diffusion fields, and the special tokens from config.json. */
static int read_config(const av_hf_dir *h, av_model *m, int *n_text, int *n_den, av_err *err) {
    int dim, heads, head_dim, ff, img, patch, grid_n, T, steps, unk, cross_from;
    double eps, guidance;
    av_diffusion *d = &m->diff;
    if (av_hf_int(h, "hidden_size", -1, 1, 1 << 16, &dim, err) ||
        av_hf_int(h, "num_attention_heads", -1, 1, 1024, &heads, err) ||
        av_hf_int(h, "head_dim", -1, 1, 4096, &head_dim, err) ||
        av_hf_int(h, "intermediate_size", -1, 1, 1 << 19, &ff, err) ||
        av_hf_int(h, "text_layers", -1, 0, 1024, n_text, err) ||
        av_hf_int(h, "cross_attention_from", -1, 0, 1, &cross_from, err) ||
        av_hf_int(h, "denoiser_layers", -1, 1, 1024, n_den, err) ||
        av_hf_int(h, "max_text_positions", -1, 2, 1 << 16, &d->max_text, err) ||
        av_hf_int(h, "image_size", -1, 1, 4096, &img, err) ||
        av_hf_int(h, "patch_size", -1, 1, 4096, &patch, err) ||
        av_hf_int(h, "num_patches", -1, 1, 1 << 20, &grid_n, err) ||
        av_hf_int(h, "time_freq_dim", -1, 2, 1 << 16, &d->freq_dim, err) ||
        av_hf_num(h, "time_max_period", -1, &d->max_period, err) ||
        av_hf_int(h, "num_train_timesteps", -1, 1, 1 << 20, &T, err) ||
        av_hf_num(h, "cosine_s", -1, &d->cosine_s, err) || av_hf_num(h, "max_beta", -1, &d->max_beta, err) ||
        av_hf_int(h, "default_steps", -1, 1, 1 << 20, &steps, err) ||
        av_hf_num(h, "guidance_scale", -1, &guidance, err) || av_hf_num(h, "layer_norm_eps", -1, &eps, err) ||
        av_hf_int(h, "vocab_size", -1, 1, 1 << 22, &m->vocab_size, err) ||
        av_hf_int(h, "pad_token_id", -1, 0, 1 << 22, &m->pad_id, err) ||
        av_hf_int(h, "unk_token_id", -1, 0, 1 << 22, &unk, err) ||
        av_hf_int(h, "cls_token_id", -1, 0, 1 << 22, &d->cls_id, err) ||
        av_hf_int(h, "sep_token_id", -1, 0, 1 << 22, &d->sep_id, err))
        return -1;
    int g = img / patch;
    if (img % patch || grid_n != g * g || dim != heads * head_dim || d->freq_dim % 2 || steps > T)
        return av_errf(
            err,
            "%s: inconsistent sizes (image_size %d, patch_size %d, num_patches %d, hidden_size %d = "
            "%d heads x %d, time_freq_dim %d, default_steps %d of %d)",
            h->cfg_path, img, patch, grid_n, dim, heads, head_dim, d->freq_dim, steps, T);
    if (!(d->max_period > 1) || !(d->cosine_s >= 0) || !(d->max_beta > 0 && d->max_beta < 1) ||
        !isfinite(guidance) || !(eps > 0))
        return av_errf(
            err, "%s: time_max_period, cosine_s, max_beta, guidance_scale or layer_norm_eps out of range",
            h->cfg_path);
    d->n_train_steps = T;
    d->default_steps = steps;
    d->guidance = (float)guidance;
    m->vision = (av_vision){.image_size = img, .patch_size = patch, .grid = g, .channels = 3};
    for (int i = 0; i < 2; i++)
        m->stacks[i].cfg = av_stack_cfg_mha(dim, heads, head_dim, ff, AV_NORM_LAYER, (float)eps, AV_ACT_GELU);
    m->stacks[1].cfg.cross_from = cross_from; /* 1: the time token reads no text */
    m->max_seq_len = 1 + grid_n > d->max_text ? 1 + grid_n : d->max_text;
    return 0;
}

#define LAYER "%s.layers.%d." /* side, layer */

/* <side>.layers.<l>.<which>.{q,k,v,o}.weight / .bias */
static int take_attn(const av_hf_dir *h, av_attn_weights *a, av_err *err, const char *side, int l,
                     const char *which) {
    av_linear *ls[4] = {&a->q, &a->k, &a->v, &a->o};
    for (int i = 0; i < 4; i++)
        if (av_hf_take_wb(h, &ls[i]->w, &ls[i]->b, 0, err, LAYER "%s.%c", side, l, which, "qkvo"[i]))
            return -1;
    return 0;
}

/* <side>.layers.<l>.{attn_norm, attn, [cross_norm, cross], mlp_norm, mlp.up, mlp.down} and <side>.norm */
static int take_stack(const av_hf_dir *h, av_stack *st, const char *side, int cross, av_err *err) {
    for (int l = 0; l < st->n_layers; l++) {
        av_block *B = &st->blocks[l];
        if (av_hf_take_wb(h, &B->attn_norm.w, &B->attn_norm.b, 0, err, LAYER "attn_norm", side, l) ||
            take_attn(h, &B->attn, err, side, l, "attn") ||
            (cross &&
             (av_hf_take_wb(h, &B->cross_norm.w, &B->cross_norm.b, 0, err, LAYER "cross_norm", side, l) ||
              take_attn(h, &B->cross, err, side, l, "cross"))) ||
            av_hf_take_wb(h, &B->ffn_norm.w, &B->ffn_norm.b, 0, err, LAYER "mlp_norm", side, l) ||
            av_hf_take_wb(h, &B->ffn.up.w, &B->ffn.up.b, 0, err, LAYER "mlp.up", side, l) ||
            av_hf_take_wb(h, &B->ffn.down.w, &B->ffn.down.b, 0, err, LAYER "mlp.down", side, l))
            return -1;
        B->attn_scale = 1.0f / sqrtf((float)st->cfg.head_dim);
    }
    return av_hf_take_wb(h, &st->final_norm.w, &st->final_norm.b, 0, err, "%s.norm", side);
}

/* Every F16/BF16 tensor of the weights converted to an F32 copy the model owns, before the tensors are taken.
 * The sampler feeds each step's output back in for 25 steps, which magnifies any difference in the products:
 * with F32 weights every product is the float32 sgemm's (the AMX path's split-bf16 products, within 2^-16
 * of sum |x w|, moved the image by 4e-3), and the model is small (2M weights, 8 MB as F32). */
static int weights_to_f32(av_model *m, av_err *err) {
    for (int s = 0; s < m->n_shards; s++)
        for (int i = 0; i < m->shards[s].n; i++) {
            av_tensor *t = &m->shards[s].entries[i].t;
            if (t->dtype != AV_DTYPE_F16 && t->dtype != AV_DTYPE_BF16) continue;
            int64_t n = av_tensor_numel(t);
            float *f = malloc(sizeof(float) * (size_t)(n ? n : 1));
            if (av_model_own(m, f, err)) return -1;
            av_dequantize(t->dtype, t->data, f, n);
            t->dtype = AV_DTYPE_F32;
            t->data = f;
            t->nbytes = sizeof(float) * (size_t)n;
        }
    return 0;
}

int av_t2i_load(av_hf_dir *h, av_model *m, av_err *err) {
    int n_text, n_den;
    if (check_fixed(h, err) || weights_to_f32(m, err)) return -1;
    m->family = AV_FAMILY_T2I;
    m->n_stacks = 2;
    snprintf(m->arch, sizeof m->arch, "attnviz-t2i");
    if (read_config(h, m, &n_text, &n_den, err) || av_stack_alloc(&m->stacks[0], n_text, err) ||
        av_stack_alloc(&m->stacks[1], n_den, err))
        return -1;
    av_diffusion *d = &m->diff;
    av_stack *text = &m->stacks[0], *den = &m->stacks[1];
    int dim = text->cfg.dim, P = m->vision.channels * m->vision.patch_size * m->vision.patch_size;
    if (av_hf_take(h, &m->tok_emb, 0, err, "text.embed_tokens.weight") ||
        av_hf_take(h, &text->emb.pos, 0, err, "text.embed_positions.weight") ||
        take_stack(h, text, "text", 0, err) || take_stack(h, den, "denoiser", 1, err) ||
        av_hf_take_wb(h, &d->time_1.w, &d->time_1.b, 0, err, "denoiser.time_embed.linear_1") ||
        av_hf_take_wb(h, &d->time_2.w, &d->time_2.b, 0, err, "denoiser.time_embed.linear_2") ||
        av_hf_take_wb(h, &m->vision.patch.w, &m->vision.patch.b, 0, err, "denoiser.patch_embed") ||
        av_hf_take(h, &den->emb.pos, 0, err, "denoiser.embed_positions.weight") ||
        av_hf_take_wb(h, &m->head.out.w, &m->head.out.b, 0, err, "denoiser.head"))
        return -1;
    m->head.n_out = P;
    if (av_linear_check(&d->time_1, "time embedding linear_1", dim, d->freq_dim, "config.json", err) ||
        av_linear_check(&d->time_2, "time embedding linear_2", dim, dim, "config.json", err) ||
        av_weight_check(&den->emb.pos, "denoiser position embedding", m->vision.grid * m->vision.grid, dim, 0,
                        "config.json", err) ||
        av_weight_check(&text->emb.pos, "text position embedding", d->max_text, dim, 0, "config.json", err))
        return -1;
    m->bos_id = d->cls_id;
    m->eos_id = d->sep_id;
    return 0;
}
