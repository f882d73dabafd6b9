/* A structure-aware mutator for JSON inputs (config.json, tokenizer.json, safetensors headers): it parses the
 * input with jansson, changes one thing (a value replaced by an edge case, a member deleted, a known key
 * added, a subtree copied elsewhere, a number nudged) and writes the JSON back, so the mutations reach the
 * code that reads the values instead of dying in the JSON parser. Inputs that do not parse get libFuzzer's
 * byte mutations; one mutation in eight is a byte mutation of the result. */
#ifndef AV_FUZZ_JSON_MUTATOR_H
#define AV_FUZZ_JSON_MUTATOR_H

#include <jansson.h>
#include <stdint.h>
#include <string.h>

size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size);

typedef struct fuzz_rng {
    uint64_t s;
} fuzz_rng;

static inline uint32_t fuzz_rand(fuzz_rng *r, uint32_t n) { /* uniform enough in [0, n) */
    r->s ^= r->s << 13, r->s ^= r->s >> 7, r->s ^= r->s << 17;
    return n ? (uint32_t)(r->s % n) : 0;
}

/* What a harness knows about its format: keys worth adding and strings worth setting. */
typedef struct fuzz_json_dict {
    const char *const *keys;
    int n_keys;
    const char *const *strings;
    int n_strings;
} fuzz_json_dict;

static json_t *fuzz_json_scalar(fuzz_rng *r, const fuzz_json_dict *d) {
    /* clang-format off */
    static const long long ints[] = {0, 1, -1, 2, 3, 4, 7, 8, 16, 31, 32, 33, 64, 255, 256, 1023, 1024, 4096, 65535,
                                     65536, 1 << 20, 1 << 24, 2147483647, 2147483648LL, -2147483648LL, 4294967296LL,
                                     9007199254740993LL, 9223372036854775807LL, -9223372036854775807LL - 1};
    /* clang-format on */
    static const double reals[] = {0.0,   -0.0, 0.5, 1e-300, 1e300, 1e216, -1e216,  3.5e38,
                                   1e-45, 0.1,  2.5, -3.75,  1e-12, 1e-6,  10000.0, 4.0e9};
    switch (fuzz_rand(r, 8)) {
    case 0:
    case 1:
    case 2: return json_integer(ints[fuzz_rand(r, sizeof ints / sizeof ints[0])]);
    case 3: return json_real(reals[fuzz_rand(r, sizeof reals / sizeof reals[0])]);
    case 4:
    case 5:
        if (d->n_strings) return json_string(d->strings[fuzz_rand(r, (uint32_t)d->n_strings)]);
        return json_string("");
    case 6: return fuzz_rand(r, 2) ? json_true() : json_false();
    default:
        switch (fuzz_rand(r, 3)) {
        case 0: return json_null();
        case 1: return json_array();
        default: return json_object();
        }
    }
}

/* Every value of the tree in pre-order (at most cap). */
static void fuzz_json_collect(json_t *j, json_t **out, int *n, int cap) {
    if (*n >= cap) return;
    out[(*n)++] = j;
    if (json_is_object(j)) {
        const char *k;
        json_t *v;
        json_object_foreach(j, k, v) fuzz_json_collect(v, out, n, cap);
    } else if (json_is_array(j)) {
        for (size_t i = 0; i < json_array_size(j); i++)
            fuzz_json_collect(json_array_get(j, i), out, n, cap);
    }
}

/* Replaces child (a value inside container) by v (reference taken). */
static void fuzz_json_replace(json_t *container, json_t *child, json_t *v) {
    if (json_is_object(container)) {
        const char *k;
        json_t *x;
        json_object_foreach(container, k, x) if (x == child) {
            json_object_set_new(container, k, v);
            return;
        }
    } else {
        for (size_t i = 0; i < json_array_size(container); i++)
            if (json_array_get(container, i) == child) {
                json_array_set_new(container, i, v);
                return;
            }
    }
    json_decref(v);
}

/* The container holding child, or NULL for the root. */
static json_t *fuzz_json_parent(json_t *root, json_t *child) {
    json_t *all[512];
    int n = 0;
    fuzz_json_collect(root, all, &n, 512);
    for (int i = 0; i < n; i++) {
        if (json_is_object(all[i])) {
            const char *k;
            json_t *v;
            json_object_foreach(all[i], k, v) if (v == child) return all[i];
        } else if (json_is_array(all[i])) {
            for (size_t e = 0; e < json_array_size(all[i]); e++)
                if (json_array_get(all[i], e) == child) return all[i];
        }
    }
    return NULL;
}

static void fuzz_json_mutate_tree(json_t *root, fuzz_rng *r, const fuzz_json_dict *d) {
    json_t *all[512];
    int n = 0;
    fuzz_json_collect(root, all, &n, 512);
    json_t *node = all[fuzz_rand(r, (uint32_t)n)], *parent = fuzz_json_parent(root, node);
    switch (fuzz_rand(r, 6)) {
    case 0: /* an edge-case value */
        if (parent) fuzz_json_replace(parent, node, fuzz_json_scalar(r, d));
        break;
    case 1: /* a member or element removed */
        if (json_is_object(parent)) {
            const char *k;
            json_t *v;
            json_object_foreach(parent, k, v) if (v == node) {
                json_object_del(parent, k);
                break;
            }
        } else if (json_is_array(parent) && json_array_size(parent)) {
            json_array_remove(parent, fuzz_rand(r, (uint32_t)json_array_size(parent)));
        }
        break;
    case 2: /* a known key added (mostly at the top level) */
    case 3: {
        json_t *obj = json_is_object(node) && fuzz_rand(r, 2) ? node : root;
        if (json_is_object(obj) && d->n_keys)
            json_object_set_new(obj, d->keys[fuzz_rand(r, (uint32_t)d->n_keys)], fuzz_json_scalar(r, d));
        break;
    }
    case 4: { /* a number nudged */
        if (json_is_integer(node) && parent) {
            static const long long delta[] = {1, -1, 2, -2, 16, -16};
            long long v = json_integer_value(node), k = fuzz_rand(r, 3);
            long long nv =
                k == 0   ? (long long)((unsigned long long)v + (unsigned long long)delta[fuzz_rand(r, 6)])
                : k == 1 ? (v > -(1LL << 61) && v < (1LL << 61) ? v * 2 : 0)
                         : (v == INT64_MIN ? 0 : -v);
            fuzz_json_replace(parent, node, json_integer(nv));
        } else if (json_is_real(node) && parent) {
            fuzz_json_replace(parent, node,
                              json_real(json_real_value(node) * (fuzz_rand(r, 2) ? 0.5 : -4.0)));
        } else if (json_is_array(node)) { /* an element duplicated */
            size_t sz = json_array_size(node);
            if (sz && sz < 64) json_array_append(node, json_array_get(node, fuzz_rand(r, (uint32_t)sz)));
        }
        break;
    }
    default: { /* a subtree copied over another value */
        json_t *src = all[fuzz_rand(r, (uint32_t)n)];
        if (parent && src != node && n < 400) fuzz_json_replace(parent, node, json_deep_copy(src));
        break;
    }
    }
}

/* The LLVMFuzzerCustomMutator body of a JSON harness. */
static inline size_t fuzz_json_mutate(uint8_t *data, size_t size, size_t max_size, unsigned seed,
                                      const fuzz_json_dict *d) {
    fuzz_rng r = {((uint64_t)seed << 1) | 1};
    json_t *root = json_loadb((const char *)data, size, 0, NULL);
    if (!root || fuzz_rand(&r, 8) == 0) {
        json_decref(root);
        return LLVMFuzzerMutate(data, size, max_size);
    }
    int rounds = 1 + (int)fuzz_rand(&r, 3);
    for (int i = 0; i < rounds; i++)
        fuzz_json_mutate_tree(root, &r, d);
    char *s = json_dumps(root, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(root);
    size_t n = s ? strlen(s) : 0;
    if (!s || n > max_size) {
        free(s);
        return LLVMFuzzerMutate(data, size, max_size);
    }
    memcpy(data, s, n);
    free(s);
    return n;
}

/* Defines the harness's LLVMFuzzerCustomMutator over its key and string lists. */
#define FUZZ_JSON_MUTATOR(keys, strings)                                                                     \
    static const fuzz_json_dict fuzz_dict = {keys, sizeof keys / sizeof keys[0], strings,                    \
                                             sizeof strings / sizeof strings[0]};                            \
    size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned seed);              \
    size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned seed) {             \
        return fuzz_json_mutate(data, size, max_size, seed, &fuzz_dict);                                     \
    }

#endif
