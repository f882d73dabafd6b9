/* Methods of strings and mappings, and the global functions, as @huggingface/jinja defines them:
 *
 *   strings:  upper lower strip lstrip rstrip title capitalize startswith endswith split replace, .length
 *             (strip/lstrip/rstrip remove all whitespace and ignore an argument, title capitalizes ASCII
 *             letters that start a word and leaves the rest, capitalize only upper-cases the first
 *             character)
 *   mappings: get items keys values dictsort
 *   lists:    .length
 *   globals:  namespace() range() raise_exception() strftime_now(), true/false/none (also True/False/None)
 *
 * Case mapping is Unicode's simple one per code point (utf8proc); whitespace is JavaScript's. */
#include "jinja.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <utf8proc.h>

static jv *arg(const jargs *a, int i, const char *kw) {
    if (i >= 0 && i < a->n) return a->v[i];
    jv *v = a->kw && kw ? jv_dict_get(a->kw, kw, strlen(kw)) : NULL;
    return v;
}

static jv *make_str(jj_ctx *c, jj_buf *b) {
    jv *v = c->failed ? NULL : jv_str(c, b->p ? b->p : "", b->n);
    jj_buf_free(b);
    return v;
}

/* JavaScript whitespace at s (its byte length), 0 when none. */
static size_t js_space(const char *s, size_t n) {
    uint32_t cp;
    int k = av_utf8_decode(s, n, &cp);
    if (k == 0) return 0;
    int ws = (cp >= 9 && cp <= 13) || cp == 32 || cp == 0xA0 || cp == 0x1680 ||
             (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F ||
             cp == 0x3000 || cp == 0xFEFF;
    return ws ? (size_t)k : 0;
}

static size_t js_space_before(const char *s, size_t n) {
    for (size_t k = 1; k <= 3 && k <= n; k++)
        if (js_space(s + n - k, k) == k) return k;
    return 0;
}

static jv *trimmed(jj_ctx *c, const jv *self, int left, int right) {
    const char *s = self->u.str.s;
    size_t a = 0, b = self->u.str.n, w;
    while (left && a < b && (w = js_space(s + a, b - a)))
        a += w;
    while (right && b > a && (w = js_space_before(s + a, b - a)))
        b -= w;
    return jv_str_ref(c, s + a, b - a);
}

static jv *m_strip(jj_ctx *c, int line, jv *self, const jargs *a) { return trimmed(c, self, 1, 1); }
static jv *m_lstrip(jj_ctx *c, int line, jv *self, const jargs *a) { return trimmed(c, self, 1, 0); }
static jv *m_rstrip(jj_ctx *c, int line, jv *self, const jargs *a) { return trimmed(c, self, 0, 1); }

/* Maps every code point (first only: just the first one) through f. */
static jv *mapped(jj_ctx *c, const jv *self, utf8proc_int32_t (*f)(utf8proc_int32_t), int first_only) {
    const char *s = self->u.str.s;
    size_t n = self->u.str.n;
    jj_buf b = {0};
    for (size_t i = 0; i < n && !c->failed;) {
        uint32_t cp;
        int k = av_utf8_decode(s + i, n - i, &cp);
        if (k == 0 || (first_only && i > 0)) { /* invalid bytes and the rest pass as they are */
            size_t len = k == 0 ? 1 : n - i;
            jj_buf_add(c, &b, s + i, len);
            i += len;
            continue;
        }
        char u[4];
        int m = av_utf8_encode((uint32_t)f((utf8proc_int32_t)cp), u);
        jj_buf_add(c, &b, u, (size_t)m);
        i += (size_t)k;
    }
    return make_str(c, &b);
}

static jv *m_upper(jj_ctx *c, int line, jv *self, const jargs *a) {
    return mapped(c, self, utf8proc_toupper, 0);
}
static jv *m_lower(jj_ctx *c, int line, jv *self, const jargs *a) {
    return mapped(c, self, utf8proc_tolower, 0);
}
static jv *m_capitalize(jj_ctx *c, int line, jv *self, const jargs *a) {
    return mapped(c, self, utf8proc_toupper, 1);
}

static int ascii_word(char ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_';
}

static jv *m_title(jj_ctx *c, int line, jv *self, const jargs *a) { /* replace(/\b\w/g, upper) */
    char *p = jj_strndup(c, self->u.str.s, self->u.str.n);
    for (size_t i = 0; p && i < self->u.str.n; i++)
        if (ascii_word(p[i]) && (i == 0 || !ascii_word(p[i - 1])) && p[i] >= 'a' && p[i] <= 'z') p[i] -= 32;
    return p ? jv_str_ref(c, p, self->u.str.n) : NULL;
}

static int affix(const jv *self, const jv *x, int end) {
    size_t n = self->u.str.n, k = x->u.str.n;
    return k <= n && memcmp(self->u.str.s + (end ? n - k : 0), x->u.str.s, k) == 0;
}

static jv *starts_or_ends(jj_ctx *c, int line, jv *self, const jargs *a, int end) {
    const char *name = end ? "endswith" : "startswith";
    jv *x = arg(a, 0, NULL);
    if (!x) return jj_fail(c, line, "%s() needs an argument", name);
    if (x->type == JV_STR) return jv_bool(affix(self, x, end));
    if (x->type != JV_LIST) return jj_fail(c, line, "%s() takes a string or a tuple of strings", name);
    for (size_t i = 0; i < x->u.list.n; i++) {
        if (x->u.list.v[i]->type != JV_STR)
            return jj_fail(c, line, "%s() takes a string or a tuple of strings", name);
        if (affix(self, x->u.list.v[i], end)) return jv_bool(1);
    }
    return jv_bool(0);
}

static jv *m_startswith(jj_ctx *c, int line, jv *self, const jargs *a) {
    return starts_or_ends(c, line, self, a, 0);
}
static jv *m_endswith(jj_ctx *c, int line, jv *self, const jargs *a) {
    return starts_or_ends(c, line, self, a, 1);
}

static const char *find(const char *s, size_t n, const char *w, size_t k) {
    for (size_t i = 0; i + k <= n; i++)
        if (!memcmp(s + i, w, k)) return s + i;
    return NULL;
}

/* Python's str.split(sep=None, maxsplit=-1). */
static jv *m_split(jj_ctx *c, int line, jv *self, const jargs *a) {
    jv *sep = arg(a, 0, "sep"), *max = arg(a, 1, "maxsplit"), *out = jv_list(c, 4);
    if (sep && sep->type != JV_STR && sep->type != JV_NONE)
        return jj_fail(c, line, "split(): sep must be a string or none");
    if (max && max->type != JV_INT) return jj_fail(c, line, "split(): maxsplit must be an integer");
    int64_t limit = max ? max->u.i : -1;
    const char *s = self->u.str.s, *end = s + self->u.str.n;
    if (!sep || sep->type == JV_NONE) { /* runs of whitespace; none at the ends */
        size_t w;
        while (s < end && (w = js_space(s, (size_t)(end - s))))
            s += w;
        while (out && s < end) {
            const char *p = s;
            while (p < end && !js_space(p, (size_t)(end - p)))
                p++;
            int last = limit >= 0 && (int64_t)out->u.list.n >= limit;
            if (jv_list_push(c, out, jv_str_ref(c, s, (size_t)((last ? end : p) - s))) || last) break;
            for (s = p; s < end && (w = js_space(s, (size_t)(end - s)));)
                s += w;
        }
        return out;
    }
    if (!sep->u.str.n) return jj_fail(c, line, "split(): empty separator");
    for (int64_t k = 0; out; k++) {
        const char *hit =
            limit >= 0 && k >= limit ? NULL : find(s, (size_t)(end - s), sep->u.str.s, sep->u.str.n);
        if (jv_list_push(c, out, jv_str_ref(c, s, (size_t)((hit ? hit : end) - s))) || !hit) break;
        s = hit + sep->u.str.n;
    }
    return out;
}

/* Python's str.replace(old, new, count=-1); an empty old inserts new between every two characters. */
static jv *m_replace(jj_ctx *c, int line, jv *self, const jargs *a) {
    jv *old = arg(a, 0, NULL), *rep = arg(a, 1, NULL), *count = arg(a, 2, "count");
    if (!old || !rep || old->type != JV_STR || rep->type != JV_STR)
        return jj_fail(c, line, "replace() takes two strings");
    if (count && count->type != JV_INT && count->type != JV_NONE)
        return jj_fail(c, line, "replace(): count must be an integer");
    int64_t left = count && count->type == JV_INT && count->u.i >= 0 ? count->u.i : INT64_MAX;
    const char *s = self->u.str.s, *end = s + self->u.str.n;
    jj_buf b = {0};
    while (s <= end && !c->failed) {
        const char *hit =
            left > 0 ? (old->u.str.n ? find(s, (size_t)(end - s), old->u.str.s, old->u.str.n) : s) : NULL;
        if (!hit) {
            jj_buf_add(c, &b, s, (size_t)(end - s));
            break;
        }
        jj_buf_add(c, &b, s, (size_t)(hit - s));
        jj_buf_add(c, &b, rep->u.str.s, rep->u.str.n);
        left--;
        if (old->u.str.n) {
            s = hit + old->u.str.n;
        } else { /* keep one character and go on after it */
            if (hit == end) break;
            size_t k = 1;
            while (hit + k < end && ((uint8_t)hit[k] & 0xC0) == 0x80)
                k++;
            jj_buf_add(c, &b, hit, k);
            s = hit + k;
        }
    }
    return make_str(c, &b);
}

/* ---- mappings ---- */

static jv *pair(jj_ctx *c, const jv *d, size_t i) {
    jv *p = jv_list(c, 2);
    if (!p || jv_list_push(c, p, jv_str_ref(c, d->u.dict.keys[i], d->u.dict.key_lens[i])) ||
        jv_list_push(c, p, d->u.dict.vals[i]))
        return NULL;
    return p;
}

static jv *m_items(jj_ctx *c, int line, jv *self, const jargs *a) {
    jv *out = jv_list(c, self->u.dict.n);
    for (size_t i = 0; out && i < self->u.dict.n; i++)
        if (jv_list_push(c, out, pair(c, self, i))) return NULL;
    return out;
}

static jv *keys_or_values(jj_ctx *c, const jv *self, int values) {
    jv *out = jv_list(c, self->u.dict.n);
    for (size_t i = 0; out && i < self->u.dict.n; i++) {
        jv *x = values ? self->u.dict.vals[i] : jv_str_ref(c, self->u.dict.keys[i], self->u.dict.key_lens[i]);
        if (!x || jv_list_push(c, out, x)) return NULL;
    }
    return out;
}

static jv *m_keys(jj_ctx *c, int line, jv *self, const jargs *a) { return keys_or_values(c, self, 0); }
static jv *m_values(jj_ctx *c, int line, jv *self, const jargs *a) { return keys_or_values(c, self, 1); }

static jv *m_get(jj_ctx *c, int line, jv *self, const jargs *a) {
    jv *key = arg(a, 0, NULL), *def = arg(a, 1, NULL);
    if (!key || key->type != JV_STR) return jj_fail(c, line, "get() needs a string key");
    jv *v = jv_dict_get(self, key->u.str.s, key->u.str.n);
    return v ? v : def ? def : jv_none();
}

static jv *m_dictsort(jj_ctx *c, int line, jv *self, const jargs *a) {
    jv *cs = arg(a, 0, "case_sensitive"), *by = arg(a, 1, "by"), *rev = arg(a, 2, "reverse");
    if ((cs && cs->type != JV_BOOL) || (rev && rev->type != JV_BOOL))
        return jj_fail(c, line, "dictsort(): flags must be booleans");
    int by_value = by && by->type == JV_STR && by->u.str.n == 5 && !memcmp(by->u.str.s, "value", 5);
    if (by && !by_value && !(by->type == JV_STR && by->u.str.n == 3 && !memcmp(by->u.str.s, "key", 3)))
        return jj_fail(c, line, "dictsort(): by must be 'key' or 'value'");
    jv *items = m_items(c, line, self, a);
    if (!items || jj_sort(c, line, items->u.list.v, items->u.list.n, rev && rev->u.b, cs && cs->u.b,
                          by_value ? "1" : "0"))
        return NULL;
    return items;
}

jv *jj_method(jj_ctx *c, jv *self, const char *name, size_t n) {
    static const struct {
        const char *name;
        jj_builtin fn;
        jv_type on;
    } methods[] = {
        {"upper", m_upper, JV_STR},           {"lower", m_lower, JV_STR},
        {"strip", m_strip, JV_STR},           {"lstrip", m_lstrip, JV_STR},
        {"rstrip", m_rstrip, JV_STR},         {"title", m_title, JV_STR},
        {"capitalize", m_capitalize, JV_STR}, {"startswith", m_startswith, JV_STR},
        {"endswith", m_endswith, JV_STR},     {"split", m_split, JV_STR},
        {"replace", m_replace, JV_STR},       {"get", m_get, JV_DICT},
        {"items", m_items, JV_DICT},          {"keys", m_keys, JV_DICT},
        {"values", m_values, JV_DICT},        {"dictsort", m_dictsort, JV_DICT},
    };
    if (n == 6 && !memcmp(name, "length", 6) && self->type == JV_LIST)
        return jv_int(c, (int64_t)self->u.list.n);
    if (n == 6 && !memcmp(name, "length", 6) &&
        self->type == JV_STR) { /* UTF-16 units, as JavaScript counts */
        size_t k = jj_utf8_count(self->u.str.s, self->u.str.n);
        for (size_t i = 0; i < self->u.str.n; i++)
            k += (uint8_t)self->u.str.s[i] >= 0xF0;
        return jv_int(c, (int64_t)k);
    }
    if (self->type == JV_DICT && self->dict_kind == JD_NAMESPACE) return jv_undef();
    for (size_t i = 0; i < sizeof methods / sizeof *methods; i++)
        if (methods[i].on == self->type && strlen(methods[i].name) == n && !memcmp(methods[i].name, name, n))
            return jv_func(c, methods[i].name, methods[i].fn, self);
    return jv_undef();
}

/* ---- globals ---- */

static jv *g_raise(jj_ctx *c, int line, jv *self, const jargs *a) {
    jv *msg = arg(a, 0, NULL);
    jj_buf b = {0};
    if (msg) jv_to_text(c, msg, &b);
    jj_fail(c, line, "raise_exception: %.300s", b.p ? b.p : "");
    jj_buf_free(&b);
    return NULL;
}

static jv *g_range(jj_ctx *c, int line, jv *self, const jargs *a) {
    int64_t v[3] = {0, 0, 1};
    if (a->n < 1 || a->n > 3 || a->kw) return jj_fail(c, line, "range() takes 1 to 3 integers");
    for (int i = 0; i < a->n; i++) {
        if (a->v[i]->type != JV_INT)
            return jj_fail(c, line, "range() takes integers, not %s", jv_type_name(a->v[i]));
        v[a->n == 1 ? 1 : i] = a->v[i]->u.i;
    }
    if (v[2] == 0) return jj_fail(c, line, "range() step must not be zero");
    double len = ((double)v[1] - (double)v[0]) / (double)v[2];
    if (len > JJ_MAX_ITEMS) return jj_fail(c, line, "range() of more than %d numbers", JJ_MAX_ITEMS);
    jv *out = jv_list(c, len > 0 ? (size_t)len + 1 : 0);
    for (int64_t i = v[0]; out && (v[2] > 0 ? i < v[1] : i > v[1]); i += v[2])
        if (jv_list_push(c, out, jv_int(c, i))) return NULL;
    return out;
}

static jv *g_namespace(jj_ctx *c, int line, jv *self, const jargs *a) {
    jv *ns = jv_dict(c, JD_NAMESPACE), *src = a->n ? a->v[0] : NULL;
    if (a->n > 1) return jj_fail(c, line, "namespace() takes at most one positional argument");
    if (src && src->type == JV_DICT) {
        for (size_t i = 0; ns && i < src->u.dict.n; i++)
            if (jv_dict_set(c, ns, src->u.dict.keys[i], src->u.dict.key_lens[i], src->u.dict.vals[i]))
                return NULL;
    } else if (src && src->type == JV_LIST) {
        for (size_t i = 0; ns && i < src->u.list.n; i++) {
            jv *p = src->u.list.v[i];
            if (p->type != JV_LIST || p->u.list.n != 2 || p->u.list.v[0]->type != JV_STR)
                return jj_fail(c, line, "namespace() takes a mapping or a list of [key, value] pairs");
            if (jv_dict_set(c, ns, p->u.list.v[0]->u.str.s, p->u.list.v[0]->u.str.n, p->u.list.v[1]))
                return NULL;
        }
    } else if (src) {
        return jj_fail(c, line, "namespace() takes a mapping, not %s", jv_type_name(src));
    }
    for (size_t i = 0; ns && a->kw && i < a->kw->u.dict.n; i++)
        if (jv_dict_set(c, ns, a->kw->u.dict.keys[i], a->kw->u.dict.key_lens[i], a->kw->u.dict.vals[i]))
            return NULL;
    return ns;
}

/* %Y %m %d %b %B %H %M %% of the local time (English month names); other directives stay as they are. */
static jv *g_strftime_now(jj_ctx *c, int line, jv *self, const jargs *a) {
    static const char *const months[] = {"January",   "February", "March",    "April",
                                         "May",       "June",     "July",     "August",
                                         "September", "October",  "November", "December"};
    jv *fmt = arg(a, 0, NULL);
    if (!fmt || fmt->type != JV_STR) return jj_fail(c, line, "strftime_now() takes a format string");
    time_t now = c->now ? (time_t)c->now : time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    jj_buf b = {0};
    const char *s = fmt->u.str.s;
    for (size_t i = 0; i < fmt->u.str.n && !c->failed; i++) {
        char f = i + 1 < fmt->u.str.n && s[i] == '%' ? s[i + 1] : 0, num[16] = "";
        const char *text = NULL;
        switch (f) {
        case 'Y': snprintf(num, sizeof num, "%d", tm.tm_year + 1900); break;
        case 'm': snprintf(num, sizeof num, "%02d", tm.tm_mon + 1); break;
        case 'd': snprintf(num, sizeof num, "%02d", tm.tm_mday); break;
        case 'H': snprintf(num, sizeof num, "%02d", tm.tm_hour); break;
        case 'M': snprintf(num, sizeof num, "%02d", tm.tm_min); break;
        case 'b': snprintf(num, sizeof num, "%.3s", months[tm.tm_mon]); break;
        case 'B': text = months[tm.tm_mon]; break;
        case '%': text = "%"; break;
        default: jj_buf_add(c, &b, s + i, 1); continue;
        }
        jj_buf_add(c, &b, text ? text : num, strlen(text ? text : num));
        i++;
    }
    return make_str(c, &b);
}

int jj_globals(jj_ctx *c, jscope *s) {
    static const struct {
        const char *name;
        jj_builtin fn;
    } fns[] = {{"namespace", g_namespace},
               {"range", g_range},
               {"raise_exception", g_raise},
               {"strftime_now", g_strftime_now}};
    for (size_t i = 0; i < sizeof fns / sizeof *fns; i++)
        if (jj_scope_set(c, s, fns[i].name, jv_func(c, fns[i].name, fns[i].fn, NULL))) return -1;
    return jj_scope_set(c, s, "true", jv_bool(1)) || jj_scope_set(c, s, "false", jv_bool(0)) ||
                   jj_scope_set(c, s, "none", jv_none()) || jj_scope_set(c, s, "True", jv_bool(1)) ||
                   jj_scope_set(c, s, "False", jv_bool(0)) || jj_scope_set(c, s, "None", jv_none())
               ? -1
               : 0;
}
