/* The interpreter: statements render into a buffer, expressions evaluate to values, with @huggingface/jinja's
 * semantics (operators as in its evaluateBinaryExpression: JavaScript's loose == and remainder, "+" joining a
 * string with anything, "~" treating undefined as ""; a for loop has its own scope, if blocks do not; macros
 * see the scope they were defined in). Every statement and expression counts one step; depth is bounded. */
#include "jinja.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { ST_OK = 0, ST_BREAK = 1, ST_CONTINUE = 2, ST_ERROR = -1 };

jscope *jj_scope_new(jj_ctx *c, jscope *parent) {
    jscope *s = jj_alloc(c, sizeof *s);
    if (s && !(s->vars = jv_dict(c, JD_OBJECT))) return NULL;
    if (s) s->parent = parent;
    return s;
}

jv *jj_lookup(const jscope *s, const char *name, size_t n) {
    for (; s; s = s->parent) {
        jv *v = jv_dict_get(s->vars, name, n);
        if (v) return v;
    }
    return jv_undef();
}

int jj_scope_set(jj_ctx *c, jscope *s, const char *name, jv *v) {
    return jv_dict_set(c, s->vars, name, strlen(name), v);
}

static int set_n(jj_ctx *c, jscope *s, const jnode *name, jv *v) {
    return jv_dict_set(c, s->vars, name->s, name->n, v);
}

static int tick(jj_ctx *c, int line) {
    if (++c->steps > JJ_MAX_STEPS) return jj_fail(c, line, "takes more than %d steps", JJ_MAX_STEPS), -1;
    return 0;
}

static jv *eval(jj_ctx *c, const jnode *x, jscope *s);

/* ---- operators ---- */

static jv *number(jj_ctx *c, double d, int is_float) {
    return is_float || !(fabs(d) < 9.2e18) ? jv_float(c, d) : jv_int(c, (int64_t)d);
}

/* + - * / // % and comparisons on two numbers. */
static jv *arithmetic(jj_ctx *c, int line, const char *op, const jv *l, const jv *r) {
    int fl = l->type == JV_FLOAT || r->type == JV_FLOAT;
    double a = jv_num(l), b = jv_num(r);
    if (!fl && (op[0] == '+' || op[0] == '-' || op[0] == '*')) {
        int64_t x = l->u.i, y = r->u.i, z;
        int over = op[0] == '+'   ? __builtin_add_overflow(x, y, &z)
                   : op[0] == '-' ? __builtin_sub_overflow(x, y, &z)
                                  : __builtin_mul_overflow(x, y, &z);
        return over ? jj_fail(c, line, "integer overflow in '%s'", op) : jv_int(c, z);
    }
    switch (op[0]) {
    case '+': return jv_float(c, a + b);
    case '-': return jv_float(c, a - b);
    case '*': return jv_float(c, a * b);
    case '%':
        if (!fl && b == 0) return jj_fail(c, line, "integer modulo by zero");
        return fl ? jv_float(c, fmod(a, b))
                  : jv_int(c, l->u.i % r->u.i); /* JavaScript: the sign of the dividend */
    case '/':
        if (op[1] == '/') {
            if (!fl && b == 0) return jj_fail(c, line, "integer division by zero");
            return number(c, floor(a / b), fl);
        }
        return jv_float(c, a / b);
    case '<': return jv_bool(op[1] == '=' ? a <= b : a < b);
    case '>': return jv_bool(op[1] == '=' ? a >= b : a > b);
    }
    return NULL;
}

static jv *power(jj_ctx *c, int line, const jv *l, const jv *r) {
    double a = jv_num(l), b = jv_num(r);
    if (a == 0 && b < 0) return jj_fail(c, line, "0 cannot be raised to a negative power");
    double z = pow(a, b);
    if (!isfinite(z)) return jj_fail(c, line, "'**' gives no finite real number");
    return number(c, z, l->type == JV_FLOAT || r->type == JV_FLOAT || b < 0);
}

static jv *concat(jj_ctx *c, const jv *l, const jv *r) {
    jj_buf b = {0};
    jv *out = NULL;
    if ((l->type == JV_UNDEF || !jv_concat_text(c, l, &b)) &&
        (r->type == JV_UNDEF || !jv_concat_text(c, r, &b)))
        out = jv_str(c, b.p ? b.p : "", b.n);
    jj_buf_free(&b);
    return out;
}

static jv *membership(jj_ctx *c, int line, const jv *l, const jv *r) {
    if (r->type == JV_LIST) {
        for (size_t i = 0; i < r->u.list.n; i++)
            if (jv_strict_eq(r->u.list.v[i], l)) return jv_bool(1);
        return jv_bool(0);
    }
    if (l->type == JV_STR && r->type == JV_STR) {
        for (size_t i = 0; i + l->u.str.n <= r->u.str.n; i++)
            if (!memcmp(r->u.str.s + i, l->u.str.s, l->u.str.n)) return jv_bool(1);
        return jv_bool(0);
    }
    if (l->type == JV_STR && r->type == JV_DICT && r->dict_kind != JD_NAMESPACE)
        return jv_bool(jv_dict_get(r, l->u.str.s, l->u.str.n) != NULL);
    return jj_fail(c, line, "'in' is not defined between %s and %s", jv_type_name(l), jv_type_name(r));
}

static jv *binary_values(jj_ctx *c, int line, const char *op, jv *l, jv *r) {
    int in = !strcmp(op, "in"), not_in = !strcmp(op, "not in");
    if (!strcmp(op, "==") || !strcmp(op, "!=")) return jv_bool(jv_loose_eq(l, r) == (op[0] == '='));
    if (jv_is_number(l) && jv_is_number(r) && strcmp(op, "~") && strcmp(op, "**") && !in && !not_in)
        return arithmetic(c, line, op, l, r);
    if (l->type == JV_UNDEF || r->type == JV_UNDEF) {
        if (r->type == JV_UNDEF && (in || not_in)) return jv_bool(not_in);
        if (!strcmp(op, "~") && l->type != JV_NONE && r->type != JV_NONE) return concat(c, l, r);
        return jj_fail(c, line, "'%s' on an undefined value", op);
    }
    if (l->type == JV_NONE || r->type == JV_NONE) return jj_fail(c, line, "'%s' on none", op);
    if (!strcmp(op, "~")) return concat(c, l, r);
    if (!strcmp(op, "**") && l->type <= JV_FLOAT && r->type <= JV_FLOAT) return power(c, line, l, r);
    if (l->type == JV_LIST && r->type == JV_LIST && op[0] == '+' && !op[1]) {
        jv *out = jv_list(c, l->u.list.n + r->u.list.n);
        for (size_t i = 0; out && i < l->u.list.n + r->u.list.n; i++)
            if (jv_list_push(c, out, i < l->u.list.n ? l->u.list.v[i] : r->u.list.v[i - l->u.list.n]))
                return NULL;
        return out;
    }
    if (in || not_in) {
        jv *m = membership(c, line, l, r);
        return m ? jv_bool(m->u.b != not_in) : NULL;
    }
    if ((l->type == JV_STR || r->type == JV_STR) && op[0] == '+' && !op[1]) return concat(c, l, r);
    return jj_fail(c, line, "'%s' is not defined between %s and %s", op, jv_type_name(l), jv_type_name(r));
}

static jv *eval_binary(jj_ctx *c, const jnode *x, jscope *s) {
    jv *l = eval(c, x->kids[0], s);
    if (!l) return NULL;
    if (!strcmp(x->s, "and")) return jv_truthy(l) ? eval(c, x->kids[1], s) : l;
    if (!strcmp(x->s, "or")) return jv_truthy(l) ? l : eval(c, x->kids[1], s);
    jv *r = eval(c, x->kids[1], s);
    return r ? binary_values(c, x->line, x->s, l, r) : NULL;
}

static jv *eval_unary(jj_ctx *c, const jnode *x, jscope *s) {
    jv *v = eval(c, x->kids[0], s);
    if (!v) return NULL;
    if (x->s[0] == 'n') return jv_bool(!jv_truthy(v));
    if (v->type != JV_INT && v->type != JV_FLOAT && v->type != JV_BOOL)
        return jj_fail(c, x->line, "unary '%s' on %s", x->s, jv_type_name(v));
    double d = (x->s[0] == '-' ? -1 : 1) * jv_num(v);
    return number(c, d, v->type == JV_FLOAT);
}

/* ---- member access, subscripts, slices ---- */

static jv *get_item(jj_ctx *c, int line, jv *obj, jv *key) {
    if (obj->type == JV_DICT) {
        if (key->type != JV_STR)
            return jj_fail(c, line, "a mapping key must be a string, not %s", jv_type_name(key));
        jv *v = jv_dict_get(obj, key->u.str.s, key->u.str.n);
        return v ? v : jj_method(c, obj, key->u.str.s, key->u.str.n);
    }
    if ((obj->type == JV_LIST || obj->type == JV_STR) && key->type == JV_INT) {
        size_t n = obj->type == JV_LIST ? obj->u.list.n : jj_utf8_count(obj->u.str.s, obj->u.str.n);
        int64_t i = key->u.i < 0 ? key->u.i + (int64_t)n : key->u.i;
        if (i < 0 || i >= (int64_t)n) return jv_undef();
        if (obj->type == JV_LIST) return obj->u.list.v[i];
        size_t a = jj_utf8_offset(obj->u.str.s, obj->u.str.n, (size_t)i),
               b = jj_utf8_offset(obj->u.str.s, obj->u.str.n, (size_t)i + 1);
        return jv_str_ref(c, obj->u.str.s + a, b - a);
    }
    if (key->type != JV_STR)
        return jj_fail(c, line, "%s cannot be indexed by %s", jv_type_name(obj), jv_type_name(key));
    return jj_method(c, obj, key->u.str.s, key->u.str.n);
}

/* Python's slice over n items: the indices it takes, in order. */
static size_t slice_indices(int64_t n, const jv *a, const jv *b, const jv *st, int64_t *out, jj_ctx *c,
                            int line) {
    int64_t step = st->type == JV_INT ? st->u.i : 1, start, stop;
    if (step == 0) return jj_fail(c, line, "slice step cannot be zero"), (size_t)-1;
    if (step > 0) {
        start = a->type == JV_INT ? a->u.i : 0;
        stop = b->type == JV_INT ? b->u.i : n;
        start = start < 0 ? (start + n < 0 ? 0 : start + n) : (start > n ? n : start);
        stop = stop < 0 ? (stop + n < 0 ? 0 : stop + n) : (stop > n ? n : stop);
    } else {
        start = a->type == JV_INT ? a->u.i : n - 1;
        stop = b->type == JV_INT ? b->u.i : -1;
        start = start < 0 ? (start + n < -1 ? -1 : start + n) : (start > n - 1 ? n - 1 : start);
        stop = stop < -1 ? (stop + n < -1 ? -1 : stop + n) : (stop > n - 1 ? n - 1 : stop);
    }
    size_t k = 0;
    for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step)
        out[k++] = i;
    return k;
}

static jv *eval_slice(jj_ctx *c, const jnode *x, jscope *s) {
    jv *obj = eval(c, x->kids[0], s), *p[3];
    if (!obj) return NULL;
    for (int i = 0; i < 3; i++) {
        p[i] = x->kids[1 + i] ? eval(c, x->kids[1 + i], s) : jv_undef();
        if (!p[i]) return NULL;
        if (p[i]->type != JV_INT && p[i]->type != JV_UNDEF)
            return jj_fail(c, x->line, "slice bounds must be integers");
    }
    if (obj->type != JV_LIST && obj->type != JV_STR)
        return jj_fail(c, x->line, "cannot slice %s", jv_type_name(obj));
    int list = obj->type == JV_LIST;
    size_t n = list ? obj->u.list.n : jj_utf8_count(obj->u.str.s, obj->u.str.n);
    int64_t *idx = jj_alloc(c, sizeof *idx * (n + 1));
    size_t k = idx ? slice_indices((int64_t)n, p[0], p[1], p[2], idx, c, x->line) : (size_t)-1;
    if (k == (size_t)-1) return NULL;
    jv *out = list ? jv_list(c, k) : NULL;
    jj_buf b = {0};
    for (size_t i = 0; i < k; i++) {
        if (list) {
            if (jv_list_push(c, out, obj->u.list.v[idx[i]])) return NULL;
            continue;
        }
        size_t a0 = jj_utf8_offset(obj->u.str.s, obj->u.str.n, (size_t)idx[i]);
        size_t a1 = jj_utf8_offset(obj->u.str.s, obj->u.str.n, (size_t)idx[i] + 1);
        if (jj_buf_add(c, &b, obj->u.str.s + a0, a1 - a0)) {
            jj_buf_free(&b);
            return NULL;
        }
    }
    if (!list) {
        out = jv_str(c, b.p ? b.p : "", b.n);
        jj_buf_free(&b);
    }
    return out;
}

/* ---- calls ---- */

static int eval_args(jj_ctx *c, jnode *const *kids, int n, jscope *s, jargs *a) {
    a->n = 0;
    a->kw = NULL;
    a->v = n ? jj_alloc(c, sizeof *a->v * (size_t)n) : NULL;
    if (n && !a->v) return -1;
    for (int i = 0; i < n; i++) {
        jv *v = eval(c, kids[i]->kind == JN_KWARG ? kids[i]->kids[0] : kids[i], s);
        if (!v) return -1;
        if (kids[i]->kind != JN_KWARG) {
            a->v[a->n++] = v;
            continue;
        }
        if (!a->kw && !(a->kw = jv_dict(c, JD_KWARGS))) return -1;
        if (jv_dict_get(a->kw, kids[i]->s, kids[i]->n))
            return jj_fail(c, kids[i]->line, "keyword argument '%.*s' given twice", (int)kids[i]->n,
                           kids[i]->s),
                   -1;
        if (jv_dict_set(c, a->kw, kids[i]->s, kids[i]->n, v)) return -1;
    }
    return 0;
}

static jv *call_macro(jj_ctx *c, int line, jv *fn, const jargs *a) {
    const jnode *m = fn->u.fn.macro;
    if (a->n > m->n_kids)
        return jj_fail(c, line, "macro '%s' takes at most %d arguments", fn->u.fn.name, m->n_kids);
    if (++c->calls > JJ_MAX_CALL_DEPTH)
        return jj_fail(c, line, "macros call each other more than %d deep", JJ_MAX_CALL_DEPTH);
    jscope *s = jj_scope_new(c, fn->u.fn.closure);
    size_t used_kw = 0;
    for (int i = 0; s && i < m->n_kids; i++) { /* every parameter is bound before any default is evaluated */
        const jnode *p = m->kids[i];
        jv *v = i < a->n ? a->v[i] : a->kw ? jv_dict_get(a->kw, p->s, p->n) : NULL;
        used_kw += i >= a->n && v;
        if (set_n(c, s, p, v ? v : jv_undef())) s = NULL;
    }
    if (s && a->kw && used_kw < a->kw->u.dict.n)
        return jj_fail(c, line, "macro '%s' got a keyword argument it does not take", fn->u.fn.name);
    for (int i = a->n; s && i < m->n_kids; i++) {
        const jnode *p = m->kids[i];
        if (p->kind != JN_KWARG || (a->kw && jv_dict_get(a->kw, p->s, p->n))) continue;
        jv *d = eval(c, p->kids[0], s);
        if (!d || set_n(c, s, p, d)) s = NULL;
    }
    jj_buf b = {0};
    jv *out = s && jj_render(c, m->body, m->n_body, s, &b) >= 0 ? jv_str(c, b.p ? b.p : "", b.n) : NULL;
    jj_buf_free(&b);
    c->calls--;
    return out;
}

jv *jj_call(jj_ctx *c, int line, jv *fn, const jargs *a) {
    if (fn->type != JV_FUNC) return jj_fail(c, line, "%s is not callable", jv_type_name(fn));
    return fn->u.fn.fn ? fn->u.fn.fn(c, line, fn->u.fn.self, a) : call_macro(c, line, fn, a);
}

static jv *eval_call(jj_ctx *c, const jnode *x, jscope *s) {
    jargs a;
    if (eval_args(c, x->kids + 1, x->n_kids - 1, s, &a)) return NULL;
    jv *fn = eval(c, x->kids[0], s);
    return fn ? jj_call(c, x->line, fn, &a) : NULL;
}

static jv *eval_filter(jj_ctx *c, const jnode *x, jscope *s) {
    jv *operand = eval(c, x->kids[0], s);
    jargs a;
    if (!operand || eval_args(c, x->kids + 1, x->n_kids - 1, s, &a)) return NULL;
    char name[64];
    snprintf(name, sizeof name, "%.*s", (int)(x->n < 63 ? x->n : 63), x->s);
    return jj_filter(c, x->line, name, operand, &a);
}

static jv *eval_test(jj_ctx *c, const jnode *x, jscope *s) {
    jv *operand = eval(c, x->kids[0], s);
    char name[64];
    snprintf(name, sizeof name, "%.*s", (int)(x->n < 63 ? x->n : 63), x->s);
    int r = operand ? jj_test(c, x->line, name, operand) : -1;
    return r < 0 ? NULL : jv_bool(r != (int)x->i);
}

static jv *eval_collection(jj_ctx *c, const jnode *x, jscope *s) {
    if (x->kind == JN_DICT) {
        jv *d = jv_dict(c, JD_OBJECT);
        for (int i = 0; d && i + 1 < x->n_kids; i += 2) {
            jv *k = eval(c, x->kids[i], s), *v = k ? eval(c, x->kids[i + 1], s) : NULL;
            if (!v) return NULL;
            if (k->type != JV_STR)
                return jj_fail(c, x->line, "mapping keys must be strings, not %s", jv_type_name(k));
            if (jv_dict_set(c, d, k->u.str.s, k->u.str.n, v)) return NULL;
        }
        return d;
    }
    jv *l = jv_list(c, (size_t)x->n_kids);
    if (l) l->tuple = x->kind == JN_TUPLE;
    for (int i = 0; l && i < x->n_kids; i++) {
        jv *v = eval(c, x->kids[i], s);
        if (!v || jv_list_push(c, l, v)) return NULL;
    }
    return l;
}

static jv *eval_inner(jj_ctx *c, const jnode *x, jscope *s) {
    jv *v, *k;
    switch (x->kind) {
    case JN_STR: return jv_str_ref(c, x->s, x->n);
    case JN_INT: return jv_int(c, x->i);
    case JN_FLOAT: return jv_float(c, x->f);
    case JN_NAME: return jj_lookup(s, x->s, x->n);
    case JN_LIST:
    case JN_TUPLE:
    case JN_DICT: return eval_collection(c, x, s);
    case JN_MEMBER:
        if (!(v = eval(c, x->kids[0], s)) || !(k = jv_str_ref(c, x->s, x->n))) return NULL;
        return get_item(c, x->line, v, k);
    case JN_INDEX:
        if (!(v = eval(c, x->kids[0], s)) || !(k = eval(c, x->kids[1], s))) return NULL;
        return get_item(c, x->line, v, k);
    case JN_SLICE: return eval_slice(c, x, s);
    case JN_CALL: return eval_call(c, x, s);
    case JN_FILTER: return eval_filter(c, x, s);
    case JN_TEST: return eval_test(c, x, s);
    case JN_UNARY: return eval_unary(c, x, s);
    case JN_BINARY: return eval_binary(c, x, s);
    case JN_TERNARY:
        if (!(v = eval(c, x->kids[0], s))) return NULL;
        return eval(c, x->kids[jv_truthy(v) ? 1 : 2], s);
    case JN_SELECT:
        if (!(v = eval(c, x->kids[1], s))) return NULL;
        return jv_truthy(v) ? eval(c, x->kids[0], s) : jv_undef();
    default: return jj_fail(c, x->line, "a statement where an expression belongs");
    }
}

static jv *eval(jj_ctx *c, const jnode *x, jscope *s) {
    if (c->failed || tick(c, x->line)) return NULL;
    if (++c->depth > JJ_MAX_DEPTH) {
        c->depth--;
        return jj_fail(c, x->line, "evaluation nested more than %d levels", JJ_MAX_DEPTH);
    }
    jv *v = eval_inner(c, x, s);
    c->depth--;
    return v;
}

/* ---- statements ---- */

static int assign(jj_ctx *c, const jnode *target, jv *v, jscope *s) {
    if (target->kind == JN_NAME) return set_n(c, s, target, v);
    if (target->kind == JN_TUPLE) {
        if (v->type != JV_LIST) return jj_fail(c, target->line, "cannot unpack %s", jv_type_name(v)), -1;
        if (v->u.list.n != (size_t)target->n_kids)
            return jj_fail(c, target->line, "expected %d values to unpack, got %zu", target->n_kids,
                           v->u.list.n),
                   -1;
        for (int i = 0; i < target->n_kids; i++) {
            if (target->kids[i]->kind != JN_NAME)
                return jj_fail(c, target->line, "can only unpack into names"), -1;
            if (set_n(c, s, target->kids[i], v->u.list.v[i])) return -1;
        }
        return 0;
    }
    if (target->kind == JN_MEMBER) {
        jv *obj = eval(c, target->kids[0], s);
        if (!obj) return -1;
        if (obj->type != JV_DICT || obj->dict_kind != JD_NAMESPACE)
            return jj_fail(c, target->line, "cannot set an attribute of %s (only of a namespace)",
                           jv_type_name(obj)),
                   -1;
        return jv_dict_set(c, obj, target->s, target->n, v);
    }
    return jj_fail(c, target->line, "cannot assign to this expression"), -1;
}

static int exec_set(jj_ctx *c, const jnode *x, jscope *s) {
    jv *v;
    if (x->kids[1]) {
        v = eval(c, x->kids[1], s);
    } else {
        jj_buf b = {0};
        v = jj_render(c, x->body, x->n_body, s, &b) >= 0 ? jv_str(c, b.p ? b.p : "", b.n) : NULL;
        jj_buf_free(&b);
    }
    return v ? assign(c, x->kids[0], v, s) : -1;
}

static jv *loop_info(jj_ctx *c, size_t i, size_t n, jv **items) {
    jv *d = jv_dict_sized(c, JD_OBJECT, 9);
    struct {
        const char *name;
        jv *v;
    } f[] = {
        {"index", jv_int(c, (int64_t)i + 1)},
        {"index0", jv_int(c, (int64_t)i)},
        {"revindex", jv_int(c, (int64_t)(n - i))},
        {"revindex0", jv_int(c, (int64_t)(n - i - 1))},
        {"first", jv_bool(i == 0)},
        {"last", jv_bool(i + 1 == n)},
        {"length", jv_int(c, (int64_t)n)},
        {"previtem", i > 0 ? items[i - 1] : jv_undef()},
        {"nextitem", i + 1 < n ? items[i + 1] : jv_undef()},
    };
    for (size_t k = 0; d && k < sizeof f / sizeof *f; k++)
        if (!f[k].v || jv_dict_set_static(c, d, f[k].name, f[k].v)) return NULL;
    return d;
}

/* The items a for loop runs over: a list, or the keys of a mapping; those passing the loop's "if" filter. */
static jv *loop_items(jj_ctx *c, const jnode *x, jscope *s) {
    const jnode *it = x->kids[1], *target = x->kids[0];
    const jnode *test = it->kind == JN_SELECT ? it->kids[1] : NULL;
    jv *src = eval(c, test ? it->kids[0] : it, s);
    if (!src) return NULL;
    if (src->type == JV_DICT && src->dict_kind != JD_NAMESPACE) {
        jv *keys = jv_list(c, src->u.dict.n);
        for (size_t i = 0; keys && i < src->u.dict.n; i++)
            if (jv_list_push(c, keys, jv_str_ref(c, src->u.dict.keys[i], src->u.dict.key_lens[i])))
                return NULL;
        src = keys;
    }
    if (!src || src->type != JV_LIST)
        return src ? jj_fail(c, x->line, "cannot loop over %s", jv_type_name(src)) : NULL;
    if (!test && target->kind == JN_NAME) return src;
    jv *out = jv_list(c, src->u.list.n);
    for (size_t i = 0; out && i < src->u.list.n; i++) {
        jv *item = src->u.list.v[i];
        if (target->kind == JN_TUPLE && (item->type != JV_LIST || item->u.list.n != (size_t)target->n_kids))
            return jj_fail(c, x->line, "cannot unpack %s into %d names", jv_type_name(item), target->n_kids);
        jscope *ls = test ? jj_scope_new(c, s) : NULL;
        jv *keep = !test ? jv_bool(1) : ls && !assign(c, target, item, ls) ? eval(c, test, ls) : NULL;
        if (!keep) return NULL;
        if (jv_truthy(keep) && jv_list_push(c, out, item)) return NULL;
    }
    return out;
}

static int exec_for(jj_ctx *c, const jnode *x, jscope *parent, jj_buf *out) {
    jscope *s = jj_scope_new(c, parent);
    jv *items = s ? loop_items(c, x, s) : NULL;
    if (!items) return ST_ERROR;
    size_t n = items->u.list.n;
    int completed = 0;
    for (size_t i = 0; i < n; i++) {
        jv *info = loop_info(c, i, n, items->u.list.v);
        if (!info || jj_scope_set(c, s, "loop", info) || assign(c, x->kids[0], items->u.list.v[i], s))
            return ST_ERROR;
        int st = jj_render(c, x->body, x->n_body, s, out);
        if (st == ST_ERROR) return ST_ERROR;
        if (st == ST_BREAK) break;
        if (st == ST_OK) completed = 1; /* as the reference: an iteration ended by continue does not count */
    }
    return completed ? ST_OK : jj_render(c, x->alt, x->n_alt, s, out) == ST_ERROR ? ST_ERROR : ST_OK;
}

static int exec(jj_ctx *c, const jnode *x, jscope *s, jj_buf *out) {
    jv *v;
    if (tick(c, x->line)) return ST_ERROR;
    switch (x->kind) {
    case JN_TEXT: return jj_buf_add(c, out, x->s, x->n) ? ST_ERROR : ST_OK;
    case JN_OUT: return (v = eval(c, x->kids[0], s)) && !jv_to_text(c, v, out) ? ST_OK : ST_ERROR;
    case JN_IF:
        if (!(v = eval(c, x->kids[0], s))) return ST_ERROR;
        return jv_truthy(v) ? jj_render(c, x->body, x->n_body, s, out)
                            : jj_render(c, x->alt, x->n_alt, s, out);
    case JN_FOR: return exec_for(c, x, s, out);
    case JN_SET: return exec_set(c, x, s) ? ST_ERROR : ST_OK;
    case JN_MACRO: {
        char *name = jj_strndup(c, x->s, x->n);
        jv *fn = name ? jv_func(c, name, NULL, NULL) : NULL;
        if (!fn) return ST_ERROR;
        fn->u.fn.macro = x, fn->u.fn.closure = s;
        return jj_scope_set(c, s, name, fn) ? ST_ERROR : ST_OK;
    }
    case JN_BREAK: return ST_BREAK;
    case JN_CONTINUE: return ST_CONTINUE;
    default: /* an expression statement */
        return (v = eval(c, x, s)) && !jv_to_text(c, v, out) ? ST_OK : ST_ERROR;
    }
}

int jj_render(jj_ctx *c, jnode **body, int n, jscope *s, jj_buf *out) {
    if (++c->depth > JJ_MAX_DEPTH) {
        c->depth--;
        return jj_fail(c, n ? body[0]->line : 0, "blocks nested more than %d levels", JJ_MAX_DEPTH), ST_ERROR;
    }
    int st = ST_OK;
    for (int i = 0; i < n && st == ST_OK; i++)
        st = exec(c, body[i], s, out);
    c->depth--;
    return c->failed ? ST_ERROR : st;
}
