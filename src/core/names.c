/* Text names of the public enums (trace files, JSON, the CLI): one table each, checked against _COUNT. */
#include "core.h"

#include <string.h>

static const char *const kind_names[] = {"self", "enc", "dec", "cross"};
static const char *const family_names[] = {"llama", "gpt2", "bert", "vit", "encoder-decoder"};
static const char *const format_names[] = {"llama2c", "gguf", "hf"};
static const char *const attr_method_names[] = {"occlusion", "shapley", "saliency", "ixg", "ig", "attn-grad"};
static const char *const baseline_names[] = {"token", "zero", "remove"};
static const char *const ig_rule_names[] = {"gausslegendre", "riemann_left", "riemann_right",
                                            "riemann_middle", "riemann_trapezoid"};
_Static_assert(sizeof kind_names / sizeof kind_names[0] == AV_ATTN_KIND_COUNT, "one name per attention kind");
_Static_assert(sizeof family_names / sizeof family_names[0] == AV_FAMILY_COUNT, "one name per family");
_Static_assert(sizeof format_names / sizeof format_names[0] == AV_MODEL_FORMAT_COUNT, "one name per format");
_Static_assert(sizeof attr_method_names / sizeof attr_method_names[0] == AV_ATTR_METHOD_COUNT,
               "one per method");
_Static_assert(sizeof baseline_names / sizeof baseline_names[0] == AV_BASELINE_COUNT, "one per baseline");
_Static_assert(sizeof ig_rule_names / sizeof ig_rule_names[0] == AV_IG_RULE_COUNT, "one per IG rule");

static int find_name(const char *const *names, int n, const char *s) {
    for (int i = 0; s && i < n; i++)
        if (strcmp(names[i], s) == 0) return i;
    return -1;
}

const char *av_attn_kind_name(av_attn_kind k) {
    return (unsigned)k < AV_ATTN_KIND_COUNT ? kind_names[k] : "?";
}
const char *av_family_name(av_family f) { return (unsigned)f < AV_FAMILY_COUNT ? family_names[f] : "?"; }
const char *av_model_format_name(av_model_format f) {
    return (unsigned)f < AV_MODEL_FORMAT_COUNT ? format_names[f] : "?";
}

int av_attn_kind_parse(const char *s, av_attn_kind *out) {
    int i = find_name(kind_names, AV_ATTN_KIND_COUNT, s);
    if (i >= 0) *out = (av_attn_kind)i;
    return i >= 0 ? 0 : -1;
}

int av_family_parse(const char *s, av_family *out) {
    int i = find_name(family_names, AV_FAMILY_COUNT, s);
    if (i >= 0) *out = (av_family)i;
    return i >= 0 ? 0 : -1;
}

int av_model_format_parse(const char *s, av_model_format *out) {
    int i = find_name(format_names, AV_MODEL_FORMAT_COUNT, s);
    if (i >= 0) *out = (av_model_format)i;
    return i >= 0 ? 0 : -1;
}

const char *av_attr_method_name(av_attr_method m) {
    return (unsigned)m < AV_ATTR_METHOD_COUNT ? attr_method_names[m] : "?";
}
const char *av_attr_baseline_name(av_attr_baseline b) {
    return (unsigned)b < AV_BASELINE_COUNT ? baseline_names[b] : "?";
}
const char *av_ig_rule_name(av_ig_rule r) { return (unsigned)r < AV_IG_RULE_COUNT ? ig_rule_names[r] : "?"; }

int av_attr_method_parse(const char *s, av_attr_method *out) {
    int i = find_name(attr_method_names, AV_ATTR_METHOD_COUNT, s);
    if (i >= 0) *out = (av_attr_method)i;
    return i >= 0 ? 0 : -1;
}

int av_attr_baseline_parse(const char *s, av_attr_baseline *out) {
    int i = find_name(baseline_names, AV_BASELINE_COUNT, s);
    if (i >= 0) *out = (av_attr_baseline)i;
    return i >= 0 ? 0 : -1;
}

int av_ig_rule_parse(const char *s, av_ig_rule *out) {
    int i = find_name(ig_rule_names, AV_IG_RULE_COUNT, s);
    if (i >= 0) *out = (av_ig_rule)i;
    return i >= 0 ? 0 : -1;
}

const char *av_attn_kind_labels_key(av_attn_kind kind, int key_side) {
    switch (kind) {
    case AV_ATTN_ENC: return "source_tokens";
    case AV_ATTN_DEC: return "target_tokens";
    case AV_ATTN_CROSS: return key_side ? "source_tokens" : "target_tokens";
    default: return NULL;
    }
}
