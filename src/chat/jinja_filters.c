/* Filters and tests, as @huggingface/jinja applies them (by the type of the value filtered):
 *
 *   any:      safe tojson(indent, ensure_ascii, sort_keys, separators) default(value, boolean)
 *   lists:    list first last length reverse sort(reverse, case_sensitive, attribute) join(sep) string unique
 *             selectattr/rejectattr(attr, test, value) map(attribute=, default=) select/reject(test, value)
 *   strings:  length upper lower title capitalize trim indent(width, first, blank) join string int float
 *             replace(old, new, count)
 *   numbers:  abs int float string;  booleans: bool int float string
 *   mappings: items length, and their methods (keys, values, dictsort...)
 *
 *   tests:    boolean callable odd even false true none string number integer iterable mapping sequence lower
 *             upper defined undefined equalto eq
 *
 * An unknown filter or test is an error naming it. */
#include "jinja.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static jv *arg(const jargs *a, int i, const char *kw) {
    if (i >= 0 && i < a->n) return a->v[i];
    return a->kw && kw ? jv_dict_get(a->kw, kw, strlen(kw)) : NULL;
}

static int is(const char *name, const char *want) { return strcmp(name, want) == 0; }

/* ---- tests ---- */

static int eq(const jv *a, const jv *b) { return b && jv_strict_eq(a, b); }

int jj_test(jj_ctx *c, int line, const char *name, const jv *v) {
    int str = v->type == JV_STR, obj = v->type == JV_DICT && v->dict_kind != JD_NAMESPACE;
    if (is(name, "defined")) return v->type != JV_UNDEF;
    if (is(name, "undefined")) return v->type == JV_UNDEF;
    if (is(name, "none")) return v->type == JV_NONE;
    if (is(name, "boolean")) return v->type == JV_BOOL;
    if (is(name, "true") || is(name, "false")) return v->type == JV_BOOL && v->u.b == (name[0] == 't');
    if (is(name, "string")) return str;
    if (is(name, "number")) return jv_is_number(v);
    if (is(name, "integer")) return v->type == JV_INT;
    if (is(name, "callable")) return v->type == JV_FUNC;
    if (is(name, "iterable")) return v->type == JV_LIST || str;
    if (is(name, "mapping")) return obj;
    if (is(name, "sequence")) return v->type == JV_LIST || obj || str;
    if (is(name, "odd") || is(name, "even")) {
        if (v->type != JV_INT)
            return jj_fail(c, line, "'%s' needs an integer, not %s", name, jv_type_name(v)), -1;
        return (v->u.i % 2 != 0) == (name[0] == 'o');
    }
    if (is(name, "lower") || is(name, "upper")) {
        if (!str) return 0;
        for (size_t i = 0; i < v->u.str.n; i++) {
            char ch = v->u.str.s[i];
            if (name[0] == 'l' ? (ch >= 'A' && ch <= 'Z') : (ch >= 'a' && ch <= 'z')) return 0;
        }
        return 1;
    }
    return jj_fail(c, line, "unknown test '%s'", name), -1;
}

/* A test with a second value (selectattr's "equalto" and friends); no test name: truthiness. */
static int test2(jj_ctx *c, int line, const jv *name, const jv *v, const jv *other) {
    if (!name) return jv_truthy(v);
    if (name->type != JV_STR) return jj_fail(c, line, "a test name must be a string"), -1;
    char t[64];
    snprintf(t, sizeof t, "%.*s", (int)(name->u.str.n < 63 ? name->u.str.n : 63), name->u.str.s);
    if (is(t, "equalto") || is(t, "eq") || is(t, "==")) return eq(v, other);
    if (is(t, "ne") || is(t, "!=")) return !eq(v, other);
    return jj_test(c, line, t, v);
}

/* ---- sorting ---- */

/* The value sorted by: the item, or its attribute path ("a.b", "0"). */
static jv *sort_key(jv *item, const char *path) {
    while (path && *path) {
        const char *dot = strchr(path, '.');
        size_t n = dot ? (size_t)(dot - path) : strlen(path);
        if (item->type == JV_DICT) {
            item = jv_dict_get(item, path, n);
        } else if (item->type == JV_LIST) {
            char *end;
            long i = strtol(path, &end, 10);
            item = end == path + n && i >= 0 && (size_t)i < item->u.list.n ? item->u.list.v[i] : NULL;
        } else {
            item = NULL;
        }
        if (!item) return jv_undef();
        path = dot ? dot + 1 : NULL;
    }
    return item;
}

/* -1, 0, 1; 2 when the two cannot be compared (the reference refuses mixed types). */
static int compare(const jv *a, const jv *b, int case_sensitive) {
    if ((a->type == JV_NONE && b->type == JV_NONE) || (a->type == JV_UNDEF && b->type == JV_UNDEF)) return 0;
    if (a->type <= JV_FLOAT && b->type <= JV_FLOAT && a->type >= JV_BOOL && b->type >= JV_BOOL) {
        double x = jv_num(a), y = jv_num(b);
        return x < y ? -1 : x > y;
    }
    if (a->type != JV_STR || b->type != JV_STR) return 2;
    size_t n = a->u.str.n < b->u.str.n ? a->u.str.n : b->u.str.n;
    for (size_t i = 0; i < n; i++) {
        int x = (uint8_t)a->u.str.s[i], y = (uint8_t)b->u.str.s[i];
        if (!case_sensitive) x = x >= 'A' && x <= 'Z' ? x + 32 : x, y = y >= 'A' && y <= 'Z' ? y + 32 : y;
        if (x != y) return x < y ? -1 : 1;
    }
    return a->u.str.n < b->u.str.n ? -1 : a->u.str.n > b->u.str.n;
}

static int merge_sort(jv **v, jv **tmp, size_t n, int rev, int cs, const char *attr) {
    if (n < 2) return 0;
    size_t h = n / 2, i = 0, j = h, k = 0;
    if (merge_sort(v, tmp, h, rev, cs, attr) || merge_sort(v + h, tmp, n - h, rev, cs, attr)) return -1;
    while (i < h || j < n) {
        int take_left = j >= n;
        if (!take_left && i < h) {
            int r = compare(sort_key(v[i], attr), sort_key(v[j], attr), cs);
            if (r == 2) return -1;
            take_left = rev ? r >= 0 : r <= 0;
        }
        tmp[k++] = take_left ? v[i++] : v[j++];
    }
    memcpy(v, tmp, sizeof *v * n);
    return 0;
}

int jj_sort(jj_ctx *c, int line, jv **items, size_t n, int reverse, int case_sensitive,
            const char *attribute) {
    jv **tmp = n ? jj_alloc(c, sizeof *tmp * n) : NULL;
    if (n && !tmp) return -1;
    if (merge_sort(items, tmp, n, reverse, case_sensitive, attribute))
        return jj_fail(c, line, "sort: items of different types cannot be compared"), -1;
    return 0;
}

/* ---- list filters ---- */

static jv *copy_list(jj_ctx *c, const jv *l) {
    jv *out = jv_list(c, l->u.list.n);
    for (size_t i = 0; out && i < l->u.list.n; i++)
        if (jv_list_push(c, out, l->u.list.v[i])) return NULL;
    return out;
}

/* The text join() writes for an item: JavaScript's Array.join (none and undefined are empty). */
static int join_text(jj_ctx *c, const jv *v, jj_buf *b) {
    return v->type == JV_NONE || v->type == JV_UNDEF ? 0 : jv_concat_text(c, v, b);
}

static jv *f_join(jj_ctx *c, int line, jv *v, const jargs *a) {
    jv *sep = arg(a, 0, "separator");
    if (sep && sep->type != JV_STR) return jj_fail(c, line, "join: the separator must be a string");
    jj_buf b = {0};
    size_t n = v->type == JV_LIST ? v->u.list.n : jj_utf8_count(v->u.str.s, v->u.str.n);
    for (size_t i = 0; i < n && !c->failed; i++) {
        if (i && sep) jj_buf_add(c, &b, sep->u.str.s, sep->u.str.n);
        if (v->type == JV_LIST) {
            join_text(c, v->u.list.v[i], &b);
        } else {
            size_t p = jj_utf8_offset(v->u.str.s, v->u.str.n, i),
                   q = jj_utf8_offset(v->u.str.s, v->u.str.n, i + 1);
            jj_buf_add(c, &b, v->u.str.s + p, q - p);
        }
    }
    jv *out = c->failed ? NULL : jv_str(c, b.p ? b.p : "", b.n);
    jj_buf_free(&b);
    return out;
}

static jv *f_select_attr(jj_ctx *c, int line, jv *v, const jargs *a, int keep, int by_attr) {
    jv *attr = by_attr ? arg(a, 0, NULL) : NULL, *test = arg(a, by_attr, NULL),
       *other = arg(a, by_attr + 1, NULL);
    if (by_attr && (!attr || attr->type != JV_STR))
        return jj_fail(c, line, "selectattr/rejectattr need an attribute name");
    jv *out = jv_list(c, v->u.list.n);
    for (size_t i = 0; out && i < v->u.list.n; i++) {
        jv *item = v->u.list.v[i], *x = item;
        if (by_attr) {
            if (item->type != JV_DICT)
                return jj_fail(c, line, "selectattr/rejectattr need a list of mappings");
            x = jv_dict_get(item, attr->u.str.s, attr->u.str.n);
        }
        int r = x ? test2(c, line, test, x, other) : 0; /* a missing attribute fails the test */
        if (r < 0) return NULL;
        if (r == keep && jv_list_push(c, out, item)) return NULL;
    }
    return out;
}

static jv *f_map(jj_ctx *c, int line, jv *v, const jargs *a) {
    jv *attr = arg(a, -1, "attribute"), *def = arg(a, -1, "default");
    if (!attr || attr->type != JV_STR) return jj_fail(c, line, "map() is supported with attribute= only");
    char path[256];
    snprintf(path, sizeof path, "%.*s", (int)(attr->u.str.n < 255 ? attr->u.str.n : 255), attr->u.str.s);
    jv *out = jv_list(c, v->u.list.n);
    for (size_t i = 0; out && i < v->u.list.n; i++) {
        if (v->u.list.v[i]->type != JV_DICT)
            return jj_fail(c, line, "map(attribute=) needs a list of mappings");
        jv *x = sort_key(v->u.list.v[i], path);
        if (jv_list_push(c, out, x->type == JV_UNDEF && def ? def : x)) return NULL;
    }
    return out;
}

static jv *f_sort(jj_ctx *c, int line, jv *v, const jargs *a) {
    jv *rev = arg(a, 0, "reverse"), *cs = arg(a, 1, "case_sensitive"), *attr = arg(a, 2, "attribute");
    if ((rev && rev->type != JV_BOOL) || (cs && cs->type != JV_BOOL))
        return jj_fail(c, line, "sort: flags must be booleans");
    char path[256] = "";
    if (attr && attr->type == JV_STR)
        snprintf(path, sizeof path, "%.*s", (int)(attr->u.str.n < 255 ? attr->u.str.n : 255), attr->u.str.s);
    else if (attr && attr->type == JV_INT)
        snprintf(path, sizeof path, "%lld", (long long)attr->u.i);
    jv *out = copy_list(c, v);
    return out && !jj_sort(c, line, out->u.list.v, out->u.list.n, rev && rev->u.b, cs && cs->u.b, path)
               ? out
               : NULL;
}

static jv *list_filter(jj_ctx *c, int line, const char *name, jv *v, const jargs *a) {
    size_t n = v->u.list.n;
    jj_json_opts o = {-1, 0, 0, 0, NULL, NULL};
    if (is(name, "list")) return v;
    if (is(name, "first")) return n ? v->u.list.v[0] : jv_undef();
    if (is(name, "last")) return n ? v->u.list.v[n - 1] : jv_undef();
    if (is(name, "length") || is(name, "count")) return jv_int(c, (int64_t)n);
    if (is(name, "join")) return f_join(c, line, v, a);
    if (is(name, "sort")) return f_sort(c, line, v, a);
    if (is(name, "selectattr") || is(name, "rejectattr"))
        return f_select_attr(c, line, v, a, name[0] == 's', 1);
    if (is(name, "select") || is(name, "reject")) return f_select_attr(c, line, v, a, name[0] == 's', 0);
    if (is(name, "map")) return f_map(c, line, v, a);
    if (is(name, "reverse")) {
        jv *out = jv_list(c, n);
        for (size_t i = n; out && i > 0; i--)
            if (jv_list_push(c, out, v->u.list.v[i - 1])) return NULL;
        return out;
    }
    if (is(name, "unique")) {
        jv *out = jv_list(c, n);
        for (size_t i = 0; out && i < n; i++) {
            size_t k = 0;
            while (k < out->u.list.n && !jv_strict_eq(out->u.list.v[k], v->u.list.v[i]))
                k++;
            if (k == out->u.list.n && jv_list_push(c, out, v->u.list.v[i])) return NULL;
        }
        return out;
    }
    if (is(name, "string")) {
        jj_buf b = {0};
        jv *out = jv_to_json(c, v, &o, 0, &b) ? NULL : jv_str(c, b.p ? b.p : "", b.n);
        jj_buf_free(&b);
        return out;
    }
    return jj_fail(c, line, "filter '%s' does not apply to a list", name);
}

/* ---- string filters ---- */

static jv *f_indent(jj_ctx *c, int line, jv *v, const jargs *a) {
    jv *w = arg(a, 0, "width"), *first = arg(a, 1, "first"), *blank = arg(a, 2, "blank");
    char pad[256];
    if (w && w->type == JV_STR)
        snprintf(pad, sizeof pad, "%.*s", (int)(w->u.str.n < 255 ? w->u.str.n : 255), w->u.str.s);
    else if (!w || w->type == JV_INT) {
        int64_t k = w ? w->u.i : 4;
        k = k < 0 ? 0 : k > 255 ? 255 : k;
        memset(pad, ' ', (size_t)k);
        pad[k] = 0;
    } else
        return jj_fail(c, line, "indent: width must be an integer or a string");
    jj_buf b = {0};
    const char *s = v->u.str.s, *end = s + v->u.str.n;
    for (int i = 0; !c->failed; i++) {
        const char *nl = memchr(s, '\n', (size_t)(end - s)), *le = nl ? nl : end;
        if ((i > 0 || (first && jv_truthy(first))) && (le > s || (blank && jv_truthy(blank))))
            jj_buf_add(c, &b, pad, strlen(pad));
        jj_buf_add(c, &b, s, (size_t)(le - s) + (nl != NULL));
        if (!nl) break;
        s = nl + 1;
    }
    jv *out = c->failed ? NULL : jv_str(c, b.p ? b.p : "", b.n);
    jj_buf_free(&b);
    return out;
}

/* JavaScript's parseInt / parseFloat: leading whitespace, a number prefix; NULL when there is none. */
static jv *parse_number(jj_ctx *c, const jv *v, int as_float) {
    char buf[64];
    snprintf(buf, sizeof buf, "%.*s", (int)(v->u.str.n < 63 ? v->u.str.n : 63), v->u.str.s);
    char *p = buf, *end;
    while (*p == ' ' || (*p >= 9 && *p <= 13))
        p++;
    if (as_float) {
        double d = strtod(p, &end);
        return end == p || strchr("nNiI", *p)    ? NULL
               : d == floor(d) && fabs(d) < 9e15 ? jv_float(c, d)
                                                 : jv_float(c, d);
    }
    long long i = strtoll(p, &end, 10);
    return end == p ? NULL : jv_int(c, i);
}

static jv *string_filter(jj_ctx *c, int line, const char *name, jv *v, const jargs *a) {
    if (is(name, "length") || is(name, "upper") || is(name, "lower") || is(name, "title") ||
        is(name, "capitalize") || is(name, "replace")) {
        jv *m = jj_method(c, v, name, strlen(name));
        return m && m->type == JV_FUNC ? jj_call(c, line, m, a) : m;
    }
    if (is(name, "trim")) {
        jv *m = jj_method(c, v, "strip", 5);
        return m ? jj_call(c, line, m, a) : NULL;
    }
    if (is(name, "indent")) return f_indent(c, line, v, a);
    if (is(name, "join")) return a->n || a->kw ? f_join(c, line, v, a) : v;
    if (is(name, "string")) return v;
    if (is(name, "int") || is(name, "float")) {
        jv *x = parse_number(c, v, name[0] == 'f'), *def = arg(a, 0, "default");
        return x ? x : def ? def : name[0] == 'f' ? jv_float(c, 0) : jv_int(c, 0);
    }
    return jj_fail(c, line, "filter '%s' does not apply to a string", name);
}

/* ---- the others ---- */

static jv *scalar_filter(jj_ctx *c, int line, const char *name, jv *v, const jargs *a) {
    int boolean = v->type == JV_BOOL;
    double d = jv_num(v);
    if (is(name, "int")) return jv_int(c, (int64_t)trunc(d));
    if (is(name, "float")) return jv_float(c, d);
    if (is(name, "bool") && boolean) return v;
    if (is(name, "abs") && !boolean)
        return v->type == JV_INT ? jv_int(c, v->u.i < 0 ? -v->u.i : v->u.i) : jv_float(c, fabs(d));
    if (is(name, "string")) {
        jj_buf b = {0};
        jv *out = jv_to_text(c, v, &b) ? NULL : jv_str(c, b.p ? b.p : "", b.n);
        jj_buf_free(&b);
        return out;
    }
    return jj_fail(c, line, "filter '%s' does not apply to %s", name, jv_type_name(v));
}

static jv *f_tojson(jj_ctx *c, int line, jv *v, const jargs *a) {
    jv *indent = arg(a, -1, "indent"), *ascii = arg(a, -1, "ensure_ascii"), *sort = arg(a, -1, "sort_keys");
    jv *seps = arg(a, -1, "separators");
    jj_json_opts o = {-1, 0, 0, 1, NULL, NULL};
    if (indent && indent->type != JV_INT && indent->type != JV_NONE)
        return jj_fail(c, line, "tojson: indent must be an integer");
    if ((ascii && ascii->type != JV_BOOL) || (sort && sort->type != JV_BOOL))
        return jj_fail(c, line, "tojson: flags must be booleans");
    if (indent && indent->type == JV_INT) o.indent = indent->u.i > 64 ? 64 : (int)indent->u.i;
    o.ensure_ascii = ascii && ascii->u.b;
    o.sort_keys = sort && sort->u.b;
    if (seps && seps->type != JV_NONE) {
        if (seps->type != JV_LIST || seps->u.list.n != 2 || seps->u.list.v[0]->type != JV_STR ||
            seps->u.list.v[1]->type != JV_STR)
            return jj_fail(c, line, "tojson: separators must be two strings");
        if (!(o.item_sep = jj_strndup(c, seps->u.list.v[0]->u.str.s, seps->u.list.v[0]->u.str.n)) ||
            !(o.key_sep = jj_strndup(c, seps->u.list.v[1]->u.str.s, seps->u.list.v[1]->u.str.n)))
            return NULL;
    }
    jj_buf b = {0};
    jv *out = jv_to_json(c, v, &o, 0, &b) ? NULL : jv_str(c, b.p ? b.p : "", b.n);
    jj_buf_free(&b);
    return out;
}

jv *jj_filter(jj_ctx *c, int line, const char *name, jv *v, const jargs *a) {
    static const char *const known[] = {
        "safe",   "tojson",     "default", "d",      "list",       "first",      "last",
        "length", "count",      "join",    "sort",   "selectattr", "rejectattr", "select",
        "reject", "map",        "reverse", "unique", "string",     "upper",      "lower",
        "title",  "capitalize", "replace", "trim",   "indent",     "int",        "float",
        "bool",   "abs",        "items",   "keys",   "values",     "dictsort",   "get"};
    size_t k = 0;
    while (k < sizeof known / sizeof *known && !is(name, known[k]))
        k++;
    if (k == sizeof known / sizeof *known) return jj_fail(c, line, "unknown filter '%s'", name);
    if (is(name, "safe")) return v;
    if (is(name, "tojson")) return f_tojson(c, line, v, a);
    if (is(name, "default") || is(name, "d")) {
        jv *def = arg(a, 0, "default_value"), *boolean = arg(a, 1, "boolean");
        if (boolean && boolean->type != JV_BOOL)
            return jj_fail(c, line, "default: the flag must be a boolean");
        return v->type == JV_UNDEF || (boolean && boolean->u.b && !jv_truthy(v))
                   ? (def ? def : jv_str_ref(c, "", 0))
                   : v;
    }
    switch (v->type) {
    case JV_LIST: return list_filter(c, line, name, v, a);
    case JV_STR: return string_filter(c, line, name, v, a);
    case JV_INT:
    case JV_FLOAT:
    case JV_BOOL: return scalar_filter(c, line, name, v, a);
    case JV_DICT:
        if (v->dict_kind != JD_NAMESPACE) {
            if (is(name, "length")) return jv_int(c, (int64_t)v->u.dict.n);
            jv *m = jj_method(c, v, name, strlen(name));
            if (m->type == JV_FUNC) return jj_call(c, line, m, a);
        }
        /* fall through */
    default: return jj_fail(c, line, "filter '%s' does not apply to %s", name, jv_type_name(v));
    }
}
