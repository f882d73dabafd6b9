/* Values of the Jinja interpreter: the arena they live in, their text, their JSON, JSON input, and equality.
 *
 * Text and JSON follow @huggingface/jinja, the reference the chat templates are tested against: booleans
 * print as true/false, floats with a ".0" when integral, lists and mappings as JSON with ", " and ": "
 * separators; tojson writes numbers as JavaScript does (1.0 is 1) and keeps non-ASCII characters unless
 * ensure_ascii is set. */
#include "jinja.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- arena and errors ---- */

struct jj_chunk {
    jj_chunk *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
};

void *jj_alloc(jj_ctx *c, size_t n) {
    n = (n + 15) & ~(size_t)15;
    if (n > JJ_MAX_MEMORY || c->used + n > JJ_MAX_MEMORY)
        return jj_fail(c, 0, "uses more than %zu MiB of memory", JJ_MAX_MEMORY >> 20);
    jj_chunk *k = c->chunks;
    if (!k || k->cap - k->used < n) {
        size_t cap = n > ((size_t)1 << 16) ? n : ((size_t)1 << 16);
        if (!(k = malloc(sizeof *k + cap))) return jj_fail(c, 0, "out of memory");
        k->next = c->chunks, k->used = 0, k->cap = cap;
        c->chunks = k;
    }
    void *p = k->data + k->used;
    k->used += n;
    c->used += n;
    memset(p, 0, n);
    return p;
}

char *jj_strndup(jj_ctx *c, const char *s, size_t n) {
    char *p = jj_alloc(c, n + 1);
    if (p) {
        if (n) memcpy(p, s, n);
        p[n] = 0;
    }
    return p;
}

void jj_ctx_free(jj_ctx *c) {
    for (jj_chunk *k = c->chunks, *next; k; k = next) {
        next = k->next;
        free(k);
    }
    c->chunks = NULL;
}

void *jj_fail(jj_ctx *c, int line, const char *fmt, ...) {
    if (c->failed) return NULL;
    c->failed = 1;
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (line > 0)
        av_errf(c->err, "chat template line %d: %s", line, msg);
    else
        av_errf(c->err, "chat template: %s", msg);
    return NULL;
}

int jj_buf_add(jj_ctx *c, jj_buf *b, const char *s, size_t n) {
    if (c->output + n > JJ_MAX_OUTPUT)
        return jj_fail(c, 0, "builds more than %zu MiB of text", JJ_MAX_OUTPUT >> 20), -1;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) return jj_fail(c, 0, "out of memory"), -1;
        b->p = p;
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
    c->output += n;
    return 0;
}

void jj_buf_free(jj_buf *b) {
    free(b->p);
    memset(b, 0, sizeof *b);
}

static int add_str(jj_ctx *c, jj_buf *b, const char *s) { return jj_buf_add(c, b, s, strlen(s)); }

/* ---- constructors ---- */

static jv v_undef = {JV_UNDEF, 0, 0, {0}}, v_none = {JV_NONE, 0, 0, {0}};
static jv v_true = {JV_BOOL, 0, 0, {.b = 1}}, v_false = {JV_BOOL, 0, 0, {.b = 0}};

jv *jv_undef(void) { return &v_undef; }
jv *jv_none(void) { return &v_none; }
jv *jv_bool(int b) { return b ? &v_true : &v_false; }

jv *jv_new(jj_ctx *c, jv_type t) {
    jv *v = jj_alloc(c, sizeof *v);
    if (v) v->type = t;
    return v;
}

jv *jv_int(jj_ctx *c, int64_t i) {
    jv *v = jv_new(c, JV_INT);
    if (v) v->u.i = i;
    return v;
}

jv *jv_float(jj_ctx *c, double f) {
    jv *v = jv_new(c, JV_FLOAT);
    if (v) v->u.f = f;
    return v;
}

jv *jv_str_ref(jj_ctx *c, const char *s, size_t n) {
    jv *v = jv_new(c, JV_STR);
    if (v) v->u.str.s = s, v->u.str.n = n;
    return v;
}

jv *jv_str(jj_ctx *c, const char *s, size_t n) {
    char *p = jj_strndup(c, s, n);
    return p ? jv_str_ref(c, p, n) : NULL;
}

jv *jv_list(jj_ctx *c, size_t cap) {
    jv *v = jv_new(c, JV_LIST);
    if (v && cap && !(v->u.list.v = jj_alloc(c, sizeof *v->u.list.v * cap))) return NULL;
    if (v) v->u.list.cap = cap;
    return v;
}

int jv_list_push(jj_ctx *c, jv *l, jv *item) {
    if (l->u.list.n >= JJ_MAX_ITEMS)
        return jj_fail(c, 0, "builds a list of more than %d items", JJ_MAX_ITEMS), -1;
    if (l->u.list.n == l->u.list.cap) {
        size_t cap = l->u.list.cap ? l->u.list.cap * 2 : 8;
        jv **v = jj_alloc(c, sizeof *v * cap);
        if (!v) return -1;
        if (l->u.list.n) memcpy(v, l->u.list.v, sizeof *v * l->u.list.n);
        l->u.list.v = v;
        l->u.list.cap = cap;
    }
    l->u.list.v[l->u.list.n++] = item;
    return 0;
}

jv *jv_dict(jj_ctx *c, jv_dict_kind kind) {
    jv *v = jv_new(c, JV_DICT);
    if (v) v->dict_kind = (uint8_t)kind;
    return v;
}

static long dict_find(const jv *d, const char *key, size_t n) {
    for (size_t i = 0; i < d->u.dict.n; i++)
        if (d->u.dict.key_lens[i] == n && memcmp(d->u.dict.keys[i], key, n) == 0) return (long)i;
    return -1;
}

jv *jv_dict_get(const jv *d, const char *key, size_t n) {
    long i = dict_find(d, key, n);
    return i >= 0 ? d->u.dict.vals[i] : NULL;
}

jv *jv_dict_sized(jj_ctx *c, jv_dict_kind kind, size_t cap) {
    jv *d = jv_dict(c, kind);
    if (d && cap) {
        d->u.dict.keys = jj_alloc(c, sizeof *d->u.dict.keys * cap);
        d->u.dict.key_lens = jj_alloc(c, sizeof *d->u.dict.key_lens * cap);
        d->u.dict.vals = jj_alloc(c, sizeof *d->u.dict.vals * cap);
        if (!d->u.dict.keys || !d->u.dict.key_lens || !d->u.dict.vals) return NULL;
        d->u.dict.cap = cap;
    }
    return d;
}

static int dict_put(jj_ctx *c, jv *d, const char *key, size_t n, jv *val, int copy_key);

int jv_dict_set(jj_ctx *c, jv *d, const char *key, size_t n, jv *val) {
    return dict_put(c, d, key, n, val, 1);
}

int jv_dict_set_static(jj_ctx *c, jv *d, const char *key, jv *val) {
    return dict_put(c, d, key, strlen(key), val, 0);
}

static int dict_put(jj_ctx *c, jv *d, const char *key, size_t n, jv *val, int copy_key) {
    long i = dict_find(d, key, n);
    if (i >= 0) {
        d->u.dict.vals[i] = val;
        return 0;
    }
    if (d->u.dict.n >= JJ_MAX_ITEMS)
        return jj_fail(c, 0, "builds a mapping of more than %d keys", JJ_MAX_ITEMS), -1;
    if (d->u.dict.n == d->u.dict.cap) {
        size_t cap = d->u.dict.cap ? d->u.dict.cap * 2 : 8;
        const char **keys = jj_alloc(c, sizeof *keys * cap);
        size_t *lens = jj_alloc(c, sizeof *lens * cap);
        jv **vals = jj_alloc(c, sizeof *vals * cap);
        if (!keys || !lens || !vals) return -1;
        size_t k = d->u.dict.n;
        if (k) {
            memcpy(keys, d->u.dict.keys, sizeof *keys * k);
            memcpy(lens, d->u.dict.key_lens, sizeof *lens * k);
            memcpy(vals, d->u.dict.vals, sizeof *vals * k);
        }
        d->u.dict.keys = keys, d->u.dict.key_lens = lens, d->u.dict.vals = vals, d->u.dict.cap = cap;
    }
    const char *copy = copy_key ? jj_strndup(c, key, n) : key;
    if (!copy) return -1;
    size_t k = d->u.dict.n++;
    d->u.dict.keys[k] = copy, d->u.dict.key_lens[k] = n, d->u.dict.vals[k] = val;
    return 0;
}

jv *jv_func(jj_ctx *c, const char *name, jj_builtin fn, jv *self) {
    jv *v = jv_new(c, JV_FUNC);
    if (v) v->u.fn.name = name, v->u.fn.fn = fn, v->u.fn.self = self;
    return v;
}

const char *jv_type_name(const jv *v) {
    static const char *const names[] = {"undefined", "none", "boolean", "integer", "float",
                                        "string",    "list", "mapping", "function"};
    if (v->type == JV_LIST && v->tuple) return "tuple";
    if (v->type == JV_DICT && v->dict_kind == JD_NAMESPACE) return "namespace";
    return names[v->type];
}

/* ---- truth, numbers, equality ---- */

int jv_truthy(const jv *v) {
    switch (v->type) {
    case JV_UNDEF:
    case JV_NONE: return 0;
    case JV_BOOL: return v->u.b;
    case JV_INT: return v->u.i != 0;
    case JV_FLOAT: return v->u.f != 0 && !isnan(v->u.f);
    case JV_STR: return v->u.str.n > 0;
    case JV_LIST: return v->u.list.n > 0;
    case JV_DICT: return v->dict_kind == JD_NAMESPACE || v->u.dict.n > 0; /* a namespace is always true */
    default: return 1;
    }
}

int jv_is_number(const jv *v) { return v->type == JV_INT || v->type == JV_FLOAT; }

double jv_num(const jv *v) {
    return v->type == JV_INT     ? (double)v->u.i
           : v->type == JV_FLOAT ? v->u.f
           : v->type == JV_BOOL  ? v->u.b
                                 : NAN;
}

/* JavaScript's Number(string): surrounding whitespace ignored, "" is 0, anything unparsable NaN. */
static double js_string_number(const char *s, size_t n) {
    while (n && (*s == ' ' || (*s >= 9 && *s <= 13)))
        s++, n--;
    while (n && (s[n - 1] == ' ' || (s[n - 1] >= 9 && s[n - 1] <= 13)))
        n--;
    if (!n) return 0;
    char buf[64];
    if (n >= sizeof buf) return NAN;
    memcpy(buf, s, n);
    buf[n] = 0;
    char *end;
    double d = strtod(buf, &end);
    return *end || strchr(buf, 'n') || strchr(buf, 'N') ? NAN : d; /* no "nan"/"inf" spellings */
}

int jv_loose_eq(const jv *a, const jv *b) {
    int a_nil = a->type == JV_UNDEF || a->type == JV_NONE, b_nil = b->type == JV_UNDEF || b->type == JV_NONE;
    if (a_nil || b_nil) return a_nil && b_nil;
    if (a->type == JV_STR && b->type == JV_STR)
        return a->u.str.n == b->u.str.n && memcmp(a->u.str.s, b->u.str.s, a->u.str.n) == 0;
    int a_prim = a->type <= JV_STR, b_prim = b->type <= JV_STR;
    if (!a_prim || !b_prim) return a == b;
    double x = a->type == JV_STR ? js_string_number(a->u.str.s, a->u.str.n) : jv_num(a);
    double y = b->type == JV_STR ? js_string_number(b->u.str.s, b->u.str.n) : jv_num(b);
    return x == y;
}

int jv_strict_eq(const jv *a, const jv *b) {
    if (jv_is_number(a) && jv_is_number(b)) return jv_num(a) == jv_num(b);
    if (a->type != b->type) return 0;
    if (a->type == JV_UNDEF || a->type == JV_NONE) return 1;
    if (a->type == JV_BOOL) return a->u.b == b->u.b;
    if (a->type == JV_STR) return a->u.str.n == b->u.str.n && memcmp(a->u.str.s, b->u.str.s, a->u.str.n) == 0;
    return a == b;
}

/* ---- UTF-8 ---- */

size_t jj_utf8_count(const char *s, size_t n) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += ((uint8_t)s[i] & 0xC0) != 0x80;
    return k;
}

size_t jj_utf8_offset(const char *s, size_t n, size_t k) {
    size_t i = 0;
    for (; i < n; i++)
        if (((uint8_t)s[i] & 0xC0) != 0x80 && k-- == 0) return i;
    return n;
}

/* ---- numbers as JavaScript writes them ---- */

/* Number.prototype.toString: integers up to 1e21 in full, else the shortest digits that read back the same,
 * with an exponent below 1e-6 and from 1e21. */
static int js_number(jj_ctx *c, double d, jj_buf *out) {
    char buf[64];
    if (isnan(d)) return add_str(c, out, "NaN");
    if (isinf(d)) return add_str(c, out, d < 0 ? "-Infinity" : "Infinity");
    if (d == 0) return add_str(c, out, "0");
    if (d == floor(d) && fabs(d) < 1e21) {
        snprintf(buf, sizeof buf, "%.0f", d);
        return add_str(c, out, buf);
    }
    int prec = 1;
    for (; prec < 17; prec++) {
        snprintf(buf, sizeof buf, "%.*e", prec - 1, d);
        if (strtod(buf, NULL) == d) break;
    }
    snprintf(buf, sizeof buf, "%.*e", prec - 1, d); /* [-]d.ddde[+-]xx */
    char digits[32];
    int nd = 0, neg = buf[0] == '-';
    const char *p = buf + neg;
    for (; *p && *p != 'e'; p++)
        if (*p != '.') digits[nd++] = *p;
    while (nd > 1 && digits[nd - 1] == '0')
        nd--;
    int e = atoi(p + 1), k = 0; /* value = d1.d2d3... x 10^e */
    char o[64];
    if (neg) o[k++] = '-';
    if (e >= -6 && e < 21) {
        if (e < 0) {
            k += snprintf(o + k, sizeof o - (size_t)k, "0.");
            for (int i = 0; i < -e - 1; i++)
                o[k++] = '0';
            for (int i = 0; i < nd; i++)
                o[k++] = digits[i];
        } else {
            for (int i = 0; i < nd || i <= e; i++) {
                if (i == e + 1) o[k++] = '.';
                o[k++] = i < nd ? digits[i] : '0';
            }
        }
    } else {
        o[k++] = digits[0];
        if (nd > 1) o[k++] = '.';
        for (int i = 1; i < nd; i++)
            o[k++] = digits[i];
        k += snprintf(o + k, sizeof o - (size_t)k, "e%c%d", e < 0 ? '-' : '+', e < 0 ? -e : e);
    }
    o[k] = 0;
    return add_str(c, out, o);
}

/* ---- text ---- */

/* The reference's toString() of a value (what a list shows its items as). */
static int runtime_text(jj_ctx *c, const jv *v, jj_buf *out) {
    char buf[32];
    jj_json_opts o = {-1, 0, 0, 0, NULL, NULL};
    switch (v->type) {
    case JV_UNDEF: return add_str(c, out, "undefined");
    case JV_NONE: return add_str(c, out, "null");
    case JV_BOOL: return add_str(c, out, v->u.b ? "true" : "false");
    case JV_INT: snprintf(buf, sizeof buf, "%lld", (long long)v->u.i); return add_str(c, out, buf);
    case JV_FLOAT:
        if (v->u.f == 0 && signbit(v->u.f)) return add_str(c, out, "-0.0");
        if (v->u.f == floor(v->u.f) && fabs(v->u.f) < 1e21)
            return js_number(c, v->u.f, out) || add_str(c, out, ".0");
        return js_number(c, v->u.f, out);
    case JV_STR: return jj_buf_add(c, out, v->u.str.s, v->u.str.n);
    case JV_LIST:
    case JV_DICT: return jv_to_json(c, v, &o, 0, out);
    default: return jj_fail(c, 0, "cannot turn a function into text"), -1;
    }
}

int jv_to_text(jj_ctx *c, const jv *v, jj_buf *out) {
    return v->type == JV_UNDEF || v->type == JV_NONE ? 0 : runtime_text(c, v, out);
}

int jv_concat_text(jj_ctx *c, const jv *v, jj_buf *out) {
    if (v->type == JV_FLOAT) return js_number(c, v->u.f, out);
    if (v->type == JV_DICT) return add_str(c, out, "[object Map]");
    if (v->type != JV_LIST) return runtime_text(c, v, out);
    for (size_t i = 0; i < v->u.list.n; i++)
        if ((i && add_str(c, out, ",")) || runtime_text(c, v->u.list.v[i], out)) return -1;
    return 0;
}

/* ---- JSON ---- */

static int json_quote(jj_ctx *c, const char *s, size_t n, int ensure_ascii, jj_buf *out) {
    if (add_str(c, out, "\"")) return -1;
    for (size_t i = 0; i < n; i++) {
        uint8_t ch = (uint8_t)s[i];
        char esc[16] = {0};
        const char *named = ch == '"'    ? "\\\""
                            : ch == '\\' ? "\\\\"
                            : ch == '\b' ? "\\b"
                            : ch == '\f' ? "\\f"
                            : ch == '\n' ? "\\n"
                            : ch == '\r' ? "\\r"
                            : ch == '\t' ? "\\t"
                                         : NULL;
        if (named) {
            if (add_str(c, out, named)) return -1;
            continue;
        }
        if (ch < 0x20 || (ensure_ascii && ch == 0x7F)) {
            snprintf(esc, sizeof esc, "\\u%04x", ch);
        } else if (ensure_ascii && ch >= 0x80) {
            uint32_t cp = 0;
            size_t len = ch >= 0xF0 ? 4 : ch >= 0xE0 ? 3 : ch >= 0xC0 ? 2 : 1;
            if (i + len > n) len = 1;
            cp = len == 1 ? 0xFFFD : ch & (0xFF >> (len + 1));
            for (size_t k = 1; k < len; k++)
                cp = (cp << 6) | ((uint8_t)s[i + k] & 0x3F);
            i += len - 1;
            if (cp >= 0x10000)
                snprintf(esc, sizeof esc, "\\u%04x\\u%04x", 0xD800 + ((cp - 0x10000) >> 10),
                         0xDC00 + ((cp - 0x10000) & 0x3FF));
            else
                snprintf(esc, sizeof esc, "\\u%04x", cp);
        } else {
            esc[0] = (char)ch;
        }
        if (add_str(c, out, esc)) return -1;
    }
    return add_str(c, out, "\"");
}

static int padding(jj_ctx *c, const jj_json_opts *o, int depth, jj_buf *out) {
    if (add_str(c, out, "\n")) return -1;
    for (int i = 0; i < depth * o->indent; i++)
        if (add_str(c, out, " ")) return -1;
    return 0;
}

static int json_container(jj_ctx *c, const jv *v, const jj_json_opts *o, int depth, jj_buf *out) {
    int list = v->type == JV_LIST, indent = o->indent > 0;
    size_t n = list ? v->u.list.n : v->u.dict.n;
    const char *item_sep = o->item_sep ? o->item_sep
                           : indent    ? ","
                                       : ", ",
               *key_sep = o->key_sep ? o->key_sep : ": ";
    size_t *order = NULL;
    if (!list && o->sort_keys && n > 1) { /* insertion sort by key bytes: mappings of templates are small */
        if (!(order = jj_alloc(c, sizeof *order * n))) return -1;
        for (size_t i = 0; i < n; i++) {
            size_t k = i;
            for (; k > 0; k--) {
                size_t a = order[k - 1], la = v->u.dict.key_lens[a], lb = v->u.dict.key_lens[i];
                int cmp = memcmp(v->u.dict.keys[a], v->u.dict.keys[i], la < lb ? la : lb);
                if (cmp < 0 || (cmp == 0 && la <= lb)) break;
                order[k] = order[k - 1];
            }
            order[k] = i;
        }
    }
    if (add_str(c, out, list ? "[" : "{")) return -1;
    for (size_t i = 0; i < n; i++) {
        size_t k = order ? order[i] : i;
        if ((i && add_str(c, out, item_sep)) || (indent && padding(c, o, depth + 1, out))) return -1;
        if (!list && (json_quote(c, v->u.dict.keys[k], v->u.dict.key_lens[k], o->ensure_ascii, out) ||
                      add_str(c, out, key_sep)))
            return -1;
        if (jv_to_json(c, list ? v->u.list.v[k] : v->u.dict.vals[k], o, depth + 1, out)) return -1;
    }
    if (indent && n && padding(c, o, depth, out)) return -1;
    return add_str(c, out, list ? "]" : "}");
}

int jv_to_json(jj_ctx *c, const jv *v, const jj_json_opts *o, int depth, jj_buf *out) {
    if (depth > JJ_MAX_DEPTH) return jj_fail(c, 0, "tojson: nested more than %d levels", JJ_MAX_DEPTH), -1;
    switch (v->type) {
    case JV_UNDEF: return add_str(c, out, o->undefined_null ? "null" : "undefined");
    case JV_NONE: return add_str(c, out, "null");
    case JV_BOOL: return add_str(c, out, v->u.b ? "true" : "false");
    case JV_INT:
    case JV_FLOAT: {
        double d = jv_num(v);
        if (v->type == JV_INT) {
            char buf[32];
            snprintf(buf, sizeof buf, "%lld", (long long)v->u.i);
            return add_str(c, out, buf);
        }
        return isnan(d) || isinf(d) ? add_str(c, out, "null") : js_number(c, d, out);
    }
    case JV_STR: return json_quote(c, v->u.str.s, v->u.str.n, o->ensure_ascii, out);
    case JV_LIST:
    case JV_DICT: return json_container(c, v, o, depth, out);
    default: return jj_fail(c, 0, "cannot convert a function to JSON"), -1;
    }
}

jv *jv_from_json(jj_ctx *c, const json_t *j, int depth) {
    if (depth > JJ_MAX_DEPTH)
        return jj_fail(c, 0, "the messages are nested more than %d levels", JJ_MAX_DEPTH);
    switch (json_typeof(j)) {
    case JSON_OBJECT: {
        jv *d = jv_dict(c, JD_OBJECT);
        const char *key;
        json_t *val;
        json_object_foreach((json_t *)j, key, val) {
            jv *x = d ? jv_from_json(c, val, depth + 1) : NULL;
            if (!x || jv_dict_set(c, d, key, strlen(key), x)) return NULL;
        }
        return d;
    }
    case JSON_ARRAY: {
        jv *l = jv_list(c, json_array_size(j));
        for (size_t i = 0; l && i < json_array_size(j); i++) {
            jv *x = jv_from_json(c, json_array_get(j, i), depth + 1);
            if (!x || jv_list_push(c, l, x)) return NULL;
        }
        return l;
    }
    case JSON_STRING: return jv_str(c, json_string_value(j), json_string_length(j));
    case JSON_INTEGER: return jv_int(c, json_integer_value(j));
    case JSON_REAL: {
        double d = json_real_value(j); /* JSON.parse has one number type: integral values are integers */
        return d == floor(d) && fabs(d) < 9007199254740992.0 ? jv_int(c, (int64_t)d) : jv_float(c, d);
    }
    case JSON_TRUE: return jv_bool(1);
    case JSON_FALSE: return jv_bool(0);
    default: return jv_none();
    }
}
