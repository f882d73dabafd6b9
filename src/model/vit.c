/* Vision Transformers: timm checkpoints (cls_token, pos_embed, patch_embed.proj, blocks.N.{norm1, attn.qkv,
 * attn.proj, norm2, mlp.fc1, mlp.fc2}, norm, head) and Hugging Face ViTForImageClassification
 * (vit.embeddings.*, vit.encoder.layer.N.*, vit.layernorm, classifier). Pre-norm blocks, exact GELU, [CLS] +
 * grid x grid patches with learned positions, classifier on [CLS]. Preprocessing comes from the config:
 * timm's pretrained_cfg (resize the shorter side to floor(size / crop_pct), center crop, mean/std) or the
 * Hugging Face preprocessor_config.json (resize to size, mean/std). Class names: imagenet_labels.txt next to
 * the weights (one per line) or the config's id2label. */
#include "hf.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- class names ---- */

static int set_labels_from_file(av_model *m, const char *dir, av_err *err) {
    char path[4096], *text;
    size_t n;
    av_hf_path(path, sizeof path, dir, "imagenet_labels.txt");
    if (access(path, R_OK) != 0) return 0;
    if (av_file_read_all(path, 16u << 20, &text, &n, err)) return -1;
    char **labels = calloc((size_t)m->head.n_out, sizeof *labels);
    int count = 0;
    for (char *line = text; labels && line < text + n && count < m->head.n_out; count++) {
        char *end = memchr(line, '\n', (size_t)(text + n - line));
        size_t len = end ? (size_t)(end - line) : (size_t)(text + n - line);
        while (len && (line[len - 1] == '\r' || line[len - 1] == ' '))
            len--;
        labels[count] = av_strndup(line, len);
        line = end ? end + 1 : text + n;
    }
    free(text);
    if (!labels) return av_errf(err, "out of memory");
    if (count != m->head.n_out) { /* a list for another head: ignore it */
        av_strings_free(labels, (size_t)count);
        return 0;
    }
    m->vision.labels = labels;
    return 0;
}

static int set_labels_from_config(const av_hf_dir *h, av_model *m, av_err *err) {
    json_t *map = json_object_get(h->cfg, "id2label");
    if (!json_is_object(map) || (int)json_object_size(map) != m->head.n_out) return 0;
    m->vision.labels = calloc((size_t)m->head.n_out, sizeof *m->vision.labels);
    if (!m->vision.labels) return av_errf(err, "out of memory");
    const char *key;
    json_t *v;
    json_object_foreach(map, key, v) {
        char *end;
        long id = strtol(key, &end, 10);
        if (*end || id < 0 || id >= m->head.n_out || !json_is_string(v) || m->vision.labels[id]) continue;
        m->vision.labels[id] = av_strdup(json_string_value(v));
    }
    return 0;
}

/* ---- preprocessing configs ---- */

static int read_floats3(const json_t *arr, float out[3]) {
    if (!json_is_array(arr) || json_array_size(arr) != 3) return -1;
    for (int i = 0; i < 3; i++) {
        json_t *v = json_array_get(arr, (size_t)i);
        if (!json_is_number(v)) return -1;
        out[i] = (float)json_number_value(v);
    }
    return 0;
}

static int check_prep(const av_image_prep *p, const char *path, av_err *err) {
    for (int c = 0; c < 3; c++)
        if (!(p->std[c] > 0) || !isfinite(p->mean[c]))
            return av_errf(err, "%s: image mean/std must be finite with std > 0", path);
    return 0;
}

/* timm pretrained_cfg: input_size, interpolation, crop_pct, crop_mode, mean, std. */
static int timm_prep(const av_hf_dir *h, av_model *m, av_err *err) {
    av_image_prep *p = &m->vision.prep;
    json_t *pc = json_object_get(h->cfg, "pretrained_cfg");
    double crop_pct = 0.875; /* timm's default */
    const char *interp = json_is_object(pc) ? av_json_str(pc, "interpolation") : NULL;
    const char *mode = json_is_object(pc) ? av_json_str(pc, "crop_mode") : NULL;
    float mean[3] = {0.485f, 0.456f, 0.406f}, std[3] = {0.229f, 0.224f, 0.225f}; /* ImageNet defaults */
    if (json_is_object(pc)) {
        if (av_json_num(pc, "crop_pct", 0.875, &crop_pct, err)) return av_err_prefix(err, "%s", h->cfg_path);
        if ((json_object_get(pc, "mean") && read_floats3(json_object_get(pc, "mean"), mean)) ||
            (json_object_get(pc, "std") && read_floats3(json_object_get(pc, "std"), std)))
            return av_errf(err, "%s: pretrained_cfg mean/std must be arrays of 3 numbers", h->cfg_path);
    }
    if (!(crop_pct > 0.1 && crop_pct <= 1.0))
        return av_errf(err, "%s: crop_pct %g is out of range", h->cfg_path, crop_pct);
    if (interp && strcmp(interp, "bicubic") != 0 && strcmp(interp, "bilinear") != 0)
        return av_errf(err, "%s: interpolation '%.32s' is not supported (bicubic, bilinear)", h->cfg_path,
                       interp);
    if (mode && strcmp(mode, "center") != 0)
        return av_errf(err, "%s: crop_mode '%.32s' is not supported (center)", h->cfg_path, mode);
    p->out_h = p->out_w = m->vision.image_size;
    p->resize_short = (int)floor(m->vision.image_size / crop_pct);
    p->resample = interp && strcmp(interp, "bilinear") == 0 ? AV_RESAMPLE_BILINEAR : AV_RESAMPLE_BICUBIC;
    memcpy(p->mean, mean, sizeof mean);
    memcpy(p->std, std, sizeof std);
    return check_prep(p, h->cfg_path, err);
}

/* Hugging Face preprocessor_config.json (ViTImageProcessor): resize to size, resample (2 bilinear, 3
 * bicubic), image_mean, image_std. Absent: the ViTImageProcessor defaults. */
static int hf_prep(const av_hf_dir *h, av_model *m, av_err *err) {
    av_image_prep *p = &m->vision.prep;
    *p = (av_image_prep){m->vision.image_size, m->vision.image_size, 0,
                         AV_RESAMPLE_BILINEAR, {0.5f, 0.5f, 0.5f},   {0.5f, 0.5f, 0.5f}};
    char path[4096];
    av_hf_path(path, sizeof path, h->dir, "preprocessor_config.json");
    if (access(path, F_OK) != 0) return 0;
    json_t *pc;
    if (av_json_load_file(path, &pc, err)) return -1;
    int rc = -1;
    int64_t resample;
    json_t *size = json_object_get(pc, "size");
    if ((json_object_get(pc, "image_mean") && read_floats3(json_object_get(pc, "image_mean"), p->mean)) ||
        (json_object_get(pc, "image_std") && read_floats3(json_object_get(pc, "image_std"), p->std))) {
        av_errf(err, "%s: image_mean/image_std must be arrays of 3 numbers", path);
        goto done;
    }
    if (av_json_int(pc, "resample", 2, &resample, err)) {
        av_err_prefix(err, "%s", path);
        goto done;
    }
    if (resample != 2 && resample != 3) {
        av_errf(err, "%s: resample %lld is not supported (2 bilinear, 3 bicubic)", path, (long long)resample);
        goto done;
    }
    p->resample = resample == 3 ? AV_RESAMPLE_BICUBIC : AV_RESAMPLE_BILINEAR;
    int64_t hh = m->vision.image_size, ww = m->vision.image_size;
    if (json_is_integer(size))
        hh = ww = json_integer_value(size);
    else if (json_is_object(size) &&
             (av_json_int(size, "height", hh, &hh, err) || av_json_int(size, "width", ww, &ww, err)))
        goto done;
    if (hh != m->vision.image_size || ww != m->vision.image_size) {
        av_errf(err, "%s: size %lldx%lld differs from the model's image_size %d", path, (long long)hh,
                (long long)ww, m->vision.image_size);
        goto done;
    }
    rc = check_prep(p, path, err);
done:
    json_decref(pc);
    return rc;
}

/* ---- loaders ---- */

/* t seen as (rows, cols), or a "does not match config.json" error. */
static int view2d(const av_tensor *t, int64_t rows, int64_t cols, av_tensor *out, const char *name,
                  av_err *err) {
    *out = av_tensor_view2d(t, rows, cols);
    if (out->data) return 0;
    char got[64];
    av_tensor_shape_text(t, got, sizeof got);
    return av_errf(err, "%s: shape [%s] does not match config.json (expected %lld x %lld values)", name, got,
                   (long long)rows, (long long)cols);
}

/* The image sizes and the embedding tensors, by their names in the checkpoint: the class token, the learned
 * positions of [CLS] + patches, and the patch projection "<proj>.weight" (dim, channels, patch, patch) seen
 * as a matrix, with its optional bias. */
static int take_embeddings(av_hf_dir *h, av_model *m, int dim, int img, int patch, int channels,
                           const char *cls, const char *pos, const char *proj, av_err *err) {
    av_vision *v = &m->vision;
    *v = (av_vision){.image_size = img, .patch_size = patch, .grid = img / patch, .channels = channels};
    av_tensor t;
    return av_hf_take(h, &t, 0, err, "%s", cls) || view2d(&t, 1, dim, &v->cls_token, cls, err) ||
                   av_hf_take(h, &t, 0, err, "%s", pos) ||
                   view2d(&t, v->grid * v->grid + 1, dim, &m->stacks[0].emb.pos, pos, err) ||
                   av_hf_take(h, &t, 0, err, "%s.weight", proj) ||
                   view2d(&t, dim, (int64_t)channels * patch * patch, &v->patch.w, proj, err) ||
                   av_hf_take(h, &v->patch.b, 1, err, "%s.bias", proj)
               ? -1
               : 0;
}

static void set_model_fields(av_model *m) {
    m->family = AV_FAMILY_VIT;
    m->n_stacks = 1;
    m->vocab_size = m->head.n_out; /* classes */
    m->max_seq_len = m->vision.grid * m->vision.grid + 1;
}

/* Heads of timm ViT names (the checkpoint's shapes cannot tell). */
static int timm_default_heads(const char *arch) {
    static const struct {
        const char *prefix;
        int heads;
    } t[] = {{"vit_tiny_", 3}, {"vit_small_", 6}, {"vit_base_", 12}, {"vit_large_", 16}, {"vit_huge_", 16}};
    for (size_t i = 0; arch && i < sizeof t / sizeof t[0]; i++)
        if (strncmp(arch, t[i].prefix, strlen(t[i].prefix)) == 0) return t[i].heads;
    return 0;
}

/* blocks.<l>.{norm1, attn.qkv (fused), attn.proj, norm2, mlp.fc1, mlp.fc2} */
static int timm_layers(const av_hf_dir *h, av_stack *st, av_err *err) {
    int dim = st->cfg.dim;
    for (int l = 0; l < st->n_layers; l++) {
        av_block *B = &st->blocks[l];
        av_tensor qw, qb;
        char name[64];
        snprintf(name, sizeof name, "layer %d attn.qkv", l);
        if (av_hf_take_wb(h, &B->attn_norm.w, &B->attn_norm.b, 0, err, "blocks.%d.norm1", l) ||
            av_hf_take_wb(h, &qw, &qb, AV_HF_OPT_BIAS, err, "blocks.%d.attn.qkv", l) ||
            av_linear_split3(&qw, &qb, dim, dim, &B->attn, name, err) ||
            av_hf_take_wb(h, &B->attn.o.w, &B->attn.o.b, AV_HF_OPT_BIAS, err, "blocks.%d.attn.proj", l) ||
            av_hf_take_wb(h, &B->ffn_norm.w, &B->ffn_norm.b, 0, err, "blocks.%d.norm2", l) ||
            av_hf_take_wb(h, &B->ffn.up.w, &B->ffn.up.b, AV_HF_OPT_BIAS, err, "blocks.%d.mlp.fc1", l) ||
            av_hf_take_wb(h, &B->ffn.down.w, &B->ffn.down.b, AV_HF_OPT_BIAS, err, "blocks.%d.mlp.fc2", l))
            return -1;
        B->attn_scale = 1.0f / sqrtf((float)st->cfg.head_dim);
    }
    return 0;
}

static int load_timm(av_hf_dir *h, av_model *m, av_err *err) {
    const char *arch = av_hf_str(h, "architecture");
    json_t *args = json_object_get(h->cfg, "model_args");
    const av_tensor *cls = av_hf_find(h, "cls_token"), *pw = av_hf_find(h, "patch_embed.proj.weight");
    if (!cls || !pw || pw->ndim != 4 || pw->shape[2] != pw->shape[3] || pw->shape[1] != 3)
        return av_errf(err,
                       "%s: not a timm RGB ViT checkpoint (needs cls_token and a square 3-channel "
                       "patch_embed.proj.weight)",
                       h->dir);
    if (av_hf_find(h, "fc_norm.weight") || av_hf_find(h, "reg_token") || av_hf_find(h, "blocks.0.ls1.gamma"))
        return av_errf(err,
                       "%s: this timm ViT variant (average pooling, register tokens or layer scale) is not "
                       "supported",
                       h->dir);
    int64_t dim = cls->shape[cls->ndim - 1], depth = 0, heads = timm_default_heads(arch);
    int64_t patch = pw->shape[2], img = 0, classes = 0;
    char name[64];
    for (;; depth++) {
        snprintf(name, sizeof name, "blocks.%lld.norm1.weight", (long long)depth);
        if (!av_hf_find(h, name)) break;
    }
    json_t *pc = json_object_get(h->cfg, "pretrained_cfg");
    json_t *in = json_is_object(pc) ? json_object_get(pc, "input_size") : NULL;
    if (json_is_array(in) && json_array_size(in) == 3) img = json_integer_value(json_array_get(in, 2));
    double ratio = 4.0;
    if (json_is_object(args) &&
        (av_json_int(args, "embed_dim", dim, &dim, err) || av_json_int(args, "depth", depth, &depth, err) ||
         av_json_int(args, "num_heads", heads, &heads, err) ||
         av_json_int(args, "patch_size", patch, &patch, err) ||
         av_json_int(args, "img_size", img ? img : 224, &img, err) ||
         av_json_num(args, "mlp_ratio", 4.0, &ratio, err)))
        return av_err_prefix(err, "%s: model_args", h->cfg_path);
    if (!img) img = 224;
    const char *pool = av_hf_str(h, "global_pool");
    if (pool && strcmp(pool, "token") != 0)
        return av_errf(err, "%s: global_pool '%.32s' is not supported (token)", h->cfg_path, pool);
    if (heads <= 0)
        return av_errf(err, "%s: unknown number of heads for '%.64s': add model_args.num_heads", h->cfg_path,
                       arch ? arch : "?");
    if (dim <= 0 || dim > (1 << 16) || depth <= 0 || depth > 1024 || heads > 1024 || dim % heads ||
        patch <= 0 || img <= 0 || img > 8192 || img % patch || !(ratio > 0 && ratio < 64))
        return av_errf(
            err, "%s: inconsistent ViT sizes (dim %lld, depth %lld, heads %lld, patch %lld, image %lld)",
            h->cfg_path, (long long)dim, (long long)depth, (long long)heads, (long long)patch,
            (long long)img);
    if (av_hf_int(h, "num_classes", 0, 0, 1 << 20, &m->head.n_out, err)) return -1;
    classes = m->head.n_out;
    av_stack_cfg *c = &m->stacks[0].cfg;
    *c = av_stack_cfg_mha((int)dim, (int)heads, (int)(dim / heads), (int)(dim * ratio + 0.5), AV_NORM_LAYER,
                          1e-6f, AV_ACT_GELU);
    if (take_embeddings(h, m, (int)dim, (int)img, (int)patch, (int)pw->shape[1], "cls_token", "pos_embed",
                        "patch_embed.proj", err) ||
        av_hf_take_wb(h, &m->stacks[0].final_norm.w, &m->stacks[0].final_norm.b, 0, err, "norm") ||
        (classes && av_hf_take_wb(h, &m->head.out.w, &m->head.out.b, AV_HF_OPT_BIAS, err, "head")) ||
        av_stack_alloc(&m->stacks[0], (int)depth, err) || timm_layers(h, &m->stacks[0], err))
        return -1;
    snprintf(m->arch, sizeof m->arch, "vit");
    set_model_fields(m);
    return timm_prep(h, m, err) || (classes && set_labels_from_file(m, h->dir, err)) ? -1 : 0;
}

static int load_hf(av_hf_dir *h, av_model *m, av_err *err) {
    int dim, depth, heads, hidden, img, patch, channels;
    double eps;
    const char *act = av_hf_str(h, "hidden_act");
    if (av_hf_int(h, "hidden_size", -1, 1, 1 << 16, &dim, err) ||
        av_hf_int(h, "num_hidden_layers", -1, 1, 1024, &depth, err) ||
        av_hf_int(h, "num_attention_heads", -1, 1, 1024, &heads, err) ||
        av_hf_int(h, "intermediate_size", -1, 1, 1 << 19, &hidden, err) ||
        av_hf_int(h, "image_size", 224, 1, 8192, &img, err) ||
        av_hf_int(h, "patch_size", 16, 1, 8192, &patch, err) ||
        av_hf_int(h, "num_channels", 3, 3, 3, &channels, err) ||
        av_hf_num(h, "layer_norm_eps", 1e-12, &eps, err))
        return -1;
    if (dim % heads || img % patch)
        return av_errf(err, "%s: hidden_size %d / %d heads or image_size %d / patch_size %d is not whole",
                       h->cfg_path, dim, heads, img, patch);
    av_stack_cfg *c = &m->stacks[0].cfg;
    *c = av_stack_cfg_mha(dim, heads, dim / heads, hidden, AV_NORM_LAYER, (float)eps, AV_ACT_GELU);
    if (act && av_act_parse(act, &c->act))
        return av_errf(err, "%s: hidden_act '%.32s' is not supported", h->cfg_path, act);
    const char *p = av_hf_find(h, "vit.embeddings.cls_token") ? "vit." : "";
    char cls[64], pos[64], proj[80];
    snprintf(cls, sizeof cls, "%sembeddings.cls_token", p);
    snprintf(pos, sizeof pos, "%sembeddings.position_embeddings", p);
    snprintf(proj, sizeof proj, "%sembeddings.patch_embeddings.projection", p);
    if (take_embeddings(h, m, dim, img, patch, channels, cls, pos, proj, err) ||
        av_hf_take_wb(h, &m->stacks[0].final_norm.w, &m->stacks[0].final_norm.b, 0, err, "%slayernorm", p) ||
        av_hf_take(h, &m->head.out.w, 1, err, "classifier.weight") ||
        av_hf_take(h, &m->head.out.b, 1, err, "classifier.bias") || av_stack_alloc(&m->stacks[0], depth, err))
        return -1;
    m->head.n_out = m->head.out.w.data && m->head.out.w.ndim == 2 ? (int)m->head.out.w.shape[0] : 0;
    for (int l = 0; l < depth; l++) {
        av_block *B = &m->stacks[0].blocks[l];
        struct {
            av_tensor *w, *b;
            const char *name;
        } parts[] = {{&B->attn_norm.w, &B->attn_norm.b, "layernorm_before"},
                     {&B->attn.q.w, &B->attn.q.b, "attention.attention.query"},
                     {&B->attn.k.w, &B->attn.k.b, "attention.attention.key"},
                     {&B->attn.v.w, &B->attn.v.b, "attention.attention.value"},
                     {&B->attn.o.w, &B->attn.o.b, "attention.output.dense"},
                     {&B->ffn_norm.w, &B->ffn_norm.b, "layernorm_after"},
                     {&B->ffn.up.w, &B->ffn.up.b, "intermediate.dense"},
                     {&B->ffn.down.w, &B->ffn.down.b, "output.dense"}};
        for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++)
            if (av_hf_take_wb(h, parts[i].w, parts[i].b, AV_HF_OPT_BIAS, err, "%sencoder.layer.%d.%s", p, l,
                              parts[i].name))
                return -1;
        B->attn_scale = 1.0f / sqrtf((float)c->head_dim);
    }
    snprintf(m->arch, sizeof m->arch, "vit");
    set_model_fields(m);
    return hf_prep(h, m, err) || set_labels_from_config(h, m, err) ? -1 : 0;
}

int av_vit_load(av_hf_dir *h, av_model *m, av_err *err) {
    return h->timm ? load_timm(h, m, err) : load_hf(h, m, err);
}

int av_vit_preprocess_file(const av_model *m, const char *path, float **out, av_image_seen *seen,
                           av_err *err) {
    *out = NULL;
    if (m->family != AV_FAMILY_VIT) return av_errf(err, "%s is not an image model", m->name);
    av_rgb_image im;
    if (av_image_decode_file(path, &im, err)) return -1;
    int rc = av_image_preprocess_rgb(&im, &m->vision.prep, out, seen, err);
    av_rgb_image_free(&im);
    return rc;
}
