/* Analysis on real models: value norms and norm-based attention of stories260K against the PyTorch reference
 * (scripts/ref_vnorm.py -> tests/fixtures/stories260K_vnorm.safetensors); the induction and previous-token
 * heads of the project's demo attention-only model at the heads its MODEL_CARD.md names; role probes on
 * stories260K. */
#include "analysis/analysis.h"
#include "harness.h"
#include "io/io.h"
#include "model/model.h"

#define INDUCTION_DIR "models/induction"

/* The role probes' runner: the model on the ids as given. */
static int run_probe(void *model, const int32_t *ids, size_t n, av_trace **out, av_err *err) {
    av_run_params rp = av_run_default_params();
    rp.add_bos = 0;
    return av_trace_from_ids(model, ids, n, &rp, out, err);
}

static av_model *load(const char *path, const char *tok) {
    av_model_params p = av_model_default_params();
    p.tokenizer_path = tok;
    av_model *m = NULL;
    av_err err = {{0}};
    if (av_model_load(path, &p, &m, &err)) {
        fprintf(stderr, "load %s failed: %s\n", path, err.msg);
        return NULL;
    }
    return m;
}

static av_model *load_stories(void) {
    char path[4096], tok[4096];
    if (!h_shared_file(path, sizeof path, "models/stories260K/stories260K.bin") ||
        !h_shared_file(tok, sizeof tok, "models/stories260K/tok512.bin"))
        return NULL;
    return load(path, tok);
}

static void test_vnorm_matches_pytorch(void) {
    av_model *m = load_stories();
    if (!m) SKIP("../shared/models/stories260K not found");
    av_safetensors ref;
    av_err err = {{0}};
    REQUIREF(av_st_open("tests/fixtures/stories260K_vnorm.safetensors", &ref, &err) == 0, "%s", err.msg);
    const char *prompt = av_st_meta(&ref, "prompt");
    const av_tensor *ids = av_st_find(&ref, "ids");
    REQUIRE(prompt && ids);
    av_trace *t = NULL;
    REQUIREF(av_trace_from_text(m, prompt, NULL, &t, &err) == 0, "%s", err.msg);
    int T = av_trace_n_tokens(t);
    REQUIREF(T == ids->shape[0], "%d tokens, reference %lld", T, (long long)ids->shape[0]);
    for (int i = 0; i < T; i++)
        CHECK(av_trace_token_id(t, i) == ((const int32_t *)ids->data)[i]);
    /* the same numbers after a save/load round trip (what the viewer reads) */
    char path[512];
    snprintf(path, sizeof path, "%s/vnorm_trace.safetensors", h_tmpdir());
    av_trace *back = NULL;
    REQUIREF(av_trace_save(t, path, &err) == 0 && av_trace_load(path, &back, &err) == 0, "%s", err.msg);
    float worst_vn = 0, worst_norm = 0;
    float *norm = malloc(sizeof(float) * (size_t)T * (size_t)T); /* (T, T) one head */
    for (int l = 0; l < m->n_layers; l++) {
        char name[32];
        snprintf(name, sizeof name, "vnorm.%d", l);
        const av_tensor *rv = av_st_find(&ref, name);
        snprintf(name, sizeof name, "norm.%d", l);
        const av_tensor *rn = av_st_find(&ref, name);
        REQUIRE(rv && rn && rv->shape[0] == m->n_heads && rv->shape[1] == T);
        av_tensor vn, vn2;
        av_attn_view v;
        REQUIREF(av_trace_vnorm(t, l, &vn, &err) == 0 && av_trace_vnorm(back, l, &vn2, &err) == 0, "%s",
                 err.msg);
        REQUIRE(vn.shape[0] == m->n_heads && vn.shape[1] == T && vn2.dtype == AV_DTYPE_F32);
        float d = h_max_abs_diff(vn.data, rv->data, (size_t)m->n_heads * (size_t)T);
        worst_vn = d > worst_vn ? d : worst_vn;
        CHECKF(d <= 1e-4f, "layer %d: vnorm differs from PyTorch by %g", l, d);
        CHECK(memcmp(vn.data, vn2.data, sizeof(float) * (size_t)m->n_heads * (size_t)T) == 0);
        REQUIRE(av_trace_attn(back, AV_ATTN_SELF, l, &v, &err) == 0);
        for (int h = 0; h < m->n_heads; h++) {
            REQUIREF(av_norm_attn_head(&v, &vn2, h, norm, &err) == 0, "%s", err.msg);
            float dn = h_max_abs_diff(norm, (const float *)rn->data + (size_t)h * (size_t)T * (size_t)T,
                                      (size_t)T * (size_t)T);
            worst_norm = dn > worst_norm ? dn : worst_norm;
            CHECKF(dn <= 1e-4f, "layer %d head %d: norm-based attention differs by %g", l, h, dn);
        }
    }
    printf("# %d tokens: max |vnorm diff| %.3g, max |norm-based attention diff| %.3g (limit 1e-4)\n", T,
           worst_vn, worst_norm);
    free(norm);
    av_trace_free(back);
    av_trace_free(t);
    av_st_close(&ref);
    av_model_free(m);
}

/* Reads "- <label> (layer.head): 1.2, 1.3" from the model card into heads[] (layer * 100 + head). */
static int card_heads(const char *card, const char *label, int *heads, int max) {
    const char *p = strstr(card, label);
    if (!p) return -1;
    p = strchr(p, ':');
    if (!p) return -1;
    p++;
    int n = 0;
    while (*p && *p != '\n' && n < max) {
        int l, h, used;
        if (sscanf(p, " %d.%d%n", &l, &h, &used) != 2) break;
        heads[n++] = l * 100 + h;
        p += used;
        while (*p == ',' || *p == ' ')
            p++;
    }
    return n;
}

static int in_list(const int *list, int n, int v) {
    for (int i = 0; i < n; i++)
        if (list[i] == v) return 1;
    return 0;
}

static void test_induction_heads_match_model_card(void) {
    av_model *m = load(INDUCTION_DIR "/induction.bin", NULL);
    REQUIREF(m, "cannot load " INDUCTION_DIR "/induction.bin");
    REQUIREF(av_model_tokenizer(m), "the tokenizer next to the model was not found");
    /* attention-only: the exported FFN is inert (down projection all zeros) */
    for (int l = 0; l < m->n_layers; l++) {
        const float *w2 = m->stacks[0].blocks[l].ffn.down.w.data;
        for (int k = 0; k < m->dim * m->hidden_dim; k++)
            CHECK(w2[k] == 0.0f);
    }
    char *card = NULL;
    size_t size;
    av_err err = {{0}};
    REQUIREF(av_file_read_all(INDUCTION_DIR "/MODEL_CARD.md", 1 << 20, &card, &size, &err) == 0, "%s",
             err.msg);
    int ind[64], prev[64];
    int n_ind = card_heads(card, "- Induction heads (layer.head)", ind, 64);
    int n_prev = card_heads(card, "- Previous-token heads (layer.head)", prev, 64);
    free(card);
    REQUIREF(n_ind >= 1 && n_prev >= 1, "model card names %d induction and %d previous-token heads", n_ind,
             n_prev);
    av_roles_result r;
    REQUIREF(av_model_roles(m, run_probe, m, NULL, &r, &err) == 0, "%s", err.msg);
    for (int k = 0; k < r.n_layers * r.n_heads; k++) {
        const av_head_roles *h = &r.heads[k];
        int id = h->layer * 100 + h->head;
        printf("# head %d.%d: %-15s induction %.3f previous %.3f\n", h->layer, h->head, av_role_name(h->best),
               h->score[AV_ROLE_INDUCTION], h->score[AV_ROLE_PREV]);
        if (in_list(ind, n_ind, id))
            CHECKF(h->best == AV_ROLE_INDUCTION && h->score[AV_ROLE_INDUCTION] >= 0.5,
                   "card names %d.%d an induction head; detected %s, induction score %.3f", h->layer, h->head,
                   av_role_name(h->best), h->score[AV_ROLE_INDUCTION]);
        else if (in_list(prev, n_prev, id))
            CHECKF(h->best == AV_ROLE_PREV, /* implies a score >= AV_ROLE_MIN_SCORE */
                   "card names %d.%d a previous-token head; detected %s, previous-token score %.3f", h->layer,
                   h->head, av_role_name(h->best), h->score[AV_ROLE_PREV]);
        else
            CHECKF(h->best != AV_ROLE_INDUCTION && h->best != AV_ROLE_PREV,
                   "head %d.%d detected as %s but the card does not name it", h->layer, h->head,
                   av_role_name(h->best));
    }
    /* the mechanism: previous-token heads feed the later layer's induction heads; at least one is strong */
    double best_prev = 0;
    for (int k = 0; k < r.n_layers * r.n_heads; k++)
        if (r.heads[k].score[AV_ROLE_PREV] > best_prev) best_prev = r.heads[k].score[AV_ROLE_PREV];
    CHECKF(best_prev >= 0.5, "strongest previous-token score %.3f", best_prev);
    for (int i = 0; i < n_ind; i++)
        for (int j = 0; j < n_prev; j++)
            CHECK(prev[j] / 100 < ind[i] / 100);
    av_roles_result_free(&r);
    av_model_free(m);
}

static void test_roles_on_stories260K(void) {
    av_model *m = load_stories();
    if (!m) SKIP("../shared/models/stories260K not found");
    av_roles_result r;
    av_err err = {{0}};
    av_roles_params p = av_roles_default_params();
    p.seq_len = 24;
    p.n_samples = 2;
    REQUIREF(av_model_roles(m, run_probe, m, &p, &r, &err) == 0, "%s", err.msg);
    REQUIRE(r.n_layers == 5 && r.n_heads == 8 && r.text_tokens > 20);
    int n_prev = 0;
    for (int k = 0; k < r.n_layers * r.n_heads; k++) {
        for (int s = 0; s < AV_ROLE_COUNT; s++)
            CHECKF(r.heads[k].score[s] >= 0 && r.heads[k].score[s] <= 1 + 1e-6, "head %d score %d = %g", k, s,
                   r.heads[k].score[s]);
        n_prev += r.heads[k].best == AV_ROLE_PREV;
    }
    CHECKF(n_prev >= 1, "no previous-token head found in stories260K");
    av_roles_result_free(&r);
    /* too long a probe for the context gets a clear message */
    p.seq_len = 400;
    CHECK(av_model_roles(m, run_probe, m, &p, &r, &err) == -1 && strstr(err.msg, "--seq-len 255"));
    av_model_free(m);
}

int main(void) {
    RUN(test_vnorm_matches_pytorch);
    RUN(test_induction_heads_match_model_card);
    RUN(test_roles_on_stories260K);
    return h_exit_code();
}
