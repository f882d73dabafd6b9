/* Image models to traces: the model's preprocessing, one forward pass over [CLS] + patches capturing "self",
 * and the image metadata (patch_grid, prefix_tokens, image and patch sizes, top predictions, "row,col" patch
 * labels). */
#include "capture.h"
#include "kernels/sample.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_TOP = 16, META_TOP = 5 };

int av_image_preprocess(const av_model *m, const char *path, float **pixels, int *height, int *width,
                        av_err *err) {
    *pixels = NULL;
    if (av_vit_preprocess_file(m, path, pixels, NULL, err)) return -1;
    *height = m->vision.prep.out_h;
    *width = m->vision.prep.out_w;
    return 0;
}

/* The k best classes of logits (n), softmaxed; returns how many were filled. */
static int top_classes(const av_model *m, const float *logits, int n, av_class_score *top, int k) {
    double mx = logits[0], sum = 0;
    for (int i = 1; i < n; i++)
        mx = logits[i] > mx ? logits[i] : mx;
    for (int i = 0; i < n; i++)
        sum += exp(logits[i] - mx);
    int32_t ids[MAX_TOP];
    k = av_top_k(logits, n, k, ids, NULL);
    for (int j = 0; j < k; j++) {
        top[j].id = ids[j];
        top[j].prob = (float)(exp(logits[ids[j]] - mx) / sum);
        top[j].label = m->vision.labels ? m->vision.labels[ids[j]] : NULL;
    }
    return k;
}

/* predictions: [{"id": 281, "label": "tabby", "prob": 0.61}, ...] */
static json_t *predictions(const av_class_score *top, int k) {
    json_t *arr = json_array();
    for (int j = 0; arr && j < k; j++) {
        json_t *o = json_pack("{s:i, s:f}", "id", top[j].id, "prob", (double)top[j].prob);
        if (o && top[j].label) json_object_set_new(o, "label", json_string(top[j].label));
        json_array_append_new(arr, o);
    }
    return arr;
}

static int patch_labels(av_trace *t, int grid, const char *first, av_err *err) {
    int T = grid * grid + 1;
    char **labels = calloc((size_t)T, sizeof *labels), buf[32];
    int32_t *ids = malloc(sizeof *ids * (size_t)T);
    int ok = labels && ids;
    for (int i = 0; ok && i < T; i++) {
        if (i == 0)
            snprintf(buf, sizeof buf, "%s", first);
        else
            snprintf(buf, sizeof buf, "%d,%d", (i - 1) / grid, (i - 1) % grid);
        ids[i] = i;
        ok = (labels[i] = av_strdup(buf)) != NULL;
    }
    if (ok) return av_trace_set_tokens(t, labels, ids, T, err);
    av_strings_free(labels, (size_t)T);
    free(ids);
    return av_errf(err, "out of memory");
}

int av_cap_image_meta(const av_model *m, av_trace *t, const char *first, json_t *preds, av_err *err) {
    const av_vision *v = &m->vision;
    char buf[64];
    snprintf(buf, sizeof buf, "%dx%d", v->grid, v->grid);
    int rc = av_trace_set_meta(t, "patch_grid", buf, err) ||
             av_trace_set_meta(t, "prefix_tokens", "1", err) ||
             av_trace_set_meta_int(t, "image_size", v->image_size, err) ||
             av_trace_set_meta_int(t, "patch_size", v->patch_size, err);
    if (rc)
        json_decref(preds);
    else if (preds)
        rc = av_trace_set_meta_json(t, "predictions", preds, JSON_ENSURE_ASCII, err);
    return rc || patch_labels(t, v->grid, first, err) ? -1 : 0;
}

int av_trace_from_pixels(const av_model *m, const float *pixels, int height, int width,
                         const av_run_params *params, av_trace **out, av_class_score *top, int k,
                         av_err *err) {
    *out = NULL;
    av_run_params defaults = av_run_default_params();
    if (!params) params = &defaults;
    if (m->family != AV_FAMILY_VIT) return av_errf(err, "%s is not an image model", m->name);
    const av_vision *v = &m->vision;
    if (height != v->image_size || width != v->image_size)
        return av_errf(err, "the model takes %dx%d images, not %dx%d", v->image_size, v->image_size, width,
                       height);
    int T = v->grid * v->grid + 1, n_out = m->head.n_out, rc = -1, n_best = 0;
    av_class_score best[MAX_TOP];
    k = !top || k < 0 ? 0 : k > MAX_TOP ? MAX_TOP : k;
    av_run_capture c;
    av_state *s = NULL;
    float *logits = malloc(sizeof(float) * (size_t)(n_out ? n_out : 1)); /* (n_out) of [CLS] */
    if (av_cap_init(&c, m, params, err)) {
        free(logits);
        return -1;
    }
    av_cap_declare(&c, AV_ATTN_SELF, 0, 0, T, T);
    c.write_out = 1;
    if (!logits) av_errf(err, "out of memory");
    if (!logits || av_cap_alloc(&c, 0, err) || av_state_new(m, 0, T, params->n_threads, &s, err)) goto done;
    av_cap_progress rp;
    av_cap_progress_init(&rp, &c, AV_ATTN_SELF, T);
    av_pass pass = {.self = av_cap_view(&c, AV_ATTN_SELF),
                    .logits = n_out ? logits : NULL,
                    .on_layer = av_cap_on_layer,
                    .on_layer_ctx = &rp};
    if (av_forward_pixels(m, s, pixels, &pass, err) || av_cap_finish(&c, out, err)) goto done;
    n_best = n_out ? top_classes(m, logits, n_out, best, k > META_TOP ? k : META_TOP) : 0;
    if (av_cap_image_meta(m, *out, "[CLS]",
                          n_best > 0 ? predictions(best, n_best < META_TOP ? n_best : META_TOP) : NULL, err))
        goto done;
    for (int j = 0; j < k && j < n_best; j++)
        top[j] = best[j];
    rc = 0;
done:
    if (rc) av_trace_free(*out), *out = NULL;
    av_cap_free(&c);
    av_state_free(s);
    free(logits);
    return rc;
}

/* What the model saw: the 8-bit crop as the trace's "image" tensor, and image_crop {"box": [x0, y0, x1, y1],
 * "width", "height"}: the crop in the original file's pixels (the viewer overlays the patches on it). */
static int seen_meta(av_trace *t, av_image_seen *seen, av_err *err) {
    json_t *o = json_pack("{s:[f,f,f,f], s:i, s:i}", "box", seen->crop[0], seen->crop[1], seen->crop[2],
                          seen->crop[3], "width", seen->width, "height", seen->height);
    int rc = av_trace_set_meta_json(t, "image_crop", o, JSON_REAL_PRECISION(9), err) ||
             av_trace_set_image(t, seen->rgb, seen->out_h, seen->out_w, err);
    seen->rgb = NULL; /* the trace has it */
    return rc ? -1 : 0;
}

int av_trace_from_image(const av_model *m, const char *path, const av_run_params *params, av_trace **out,
                        av_class_score *top, int k, av_err *err) {
    *out = NULL;
    float *px;
    av_image_seen seen = {0};
    if (av_vit_preprocess_file(m, path, &px, &seen, err)) return -1;
    int rc = av_trace_from_pixels(m, px, seen.out_h, seen.out_w, params, out, top, k, err);
    free(px);
    if (rc == 0)
        rc = av_trace_set_meta(*out, "image", av_path_basename(path), err) || seen_meta(*out, &seen, err) ? -1
                                                                                                          : 0;
    if (rc && *out) av_trace_free(*out), *out = NULL;
    free(seen.rgb);
    return rc;
}
