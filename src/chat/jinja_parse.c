/* Tokens -> syntax tree, with the grammar and operator precedence of @huggingface/jinja (lowest first):
 *
 *   a if c else b  |  or  |  and  |  not  |  comparisons, in, not in  |  + - ~  |  * / // %  |  **  |
 *   is [not] test  |  | filter(args)  |  unary - +  |  calls, .member, [index], [a:b:c]  |  literals, names,
 * ( )
 *
 * Statements: set (one name, a tuple of names, ns.attr, or a block), if/elif/else, for/else (with "if" filter
 * and tuple targets), macro, break, continue. call and filter blocks, include, import, extends and raw are
 * not supported and fail naming the statement. */
#include "jinja.h"

#include <stdlib.h>
#include <string.h>

typedef struct parser {
    jj_ctx *c;
    const jtoken *t;
    size_t pos, n;
    int depth;
} parser;

/* A growable node list in the arena. */
typedef struct nlist {
    jnode **v;
    int n, cap;
} nlist;

static int nlist_push(jj_ctx *c, nlist *l, jnode *x) {
    if (l->n == l->cap) {
        int cap = l->cap ? l->cap * 2 : 4;
        jnode **v = jj_alloc(c, sizeof *v * (size_t)cap);
        if (!v) return -1;
        if (l->n) memcpy(v, l->v, sizeof *v * (size_t)l->n);
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = x;
    return 0;
}

static const jtoken *tok(const parser *P) { return &P->t[P->pos < P->n ? P->pos : P->n - 1]; }
static const jtoken *peek(const parser *P, size_t k) {
    return &P->t[P->pos + k < P->n ? P->pos + k : P->n - 1];
}

static int is_op(const jtoken *t, const char *op) {
    return t->kind == JT_OP && t->n == strlen(op) && !memcmp(t->s, op, t->n);
}
static int is_name(const jtoken *t, const char *name) {
    return t->kind == JT_NAME && t->n == strlen(name) && !memcmp(t->s, name, t->n);
}

static const char *describe(const jtoken *t) {
    static const char *const names[] = {"text",
                                        "comment",
                                        "'{%'",
                                        "'%}'",
                                        "'{{'",
                                        "'}}'",
                                        "a name",
                                        "a number",
                                        "a number",
                                        "a string",
                                        "an operator",
                                        "a sign",
                                        "the end of the template"};
    return names[t->kind];
}

static void *fail_at(parser *P, const char *what) {
    const jtoken *t = tok(P);
    if (t->kind == JT_NAME || t->kind == JT_OP)
        return jj_fail(P->c, t->line, "expected %s, found '%.*s'", what, (int)(t->n > 40 ? 40 : t->n), t->s);
    return jj_fail(P->c, t->line, "expected %s, found %s", what, describe(t));
}

static int expect_op(parser *P, const char *op) {
    if (!is_op(tok(P), op)) {
        char what[16];
        snprintf(what, sizeof what, "'%s'", op);
        return fail_at(P, what), -1;
    }
    P->pos++;
    return 0;
}

static int expect(parser *P, jt_kind kind, const char *what) {
    if (tok(P)->kind != kind) return fail_at(P, what), -1;
    P->pos++;
    return 0;
}

static jnode *node(parser *P, jn_kind kind, const jtoken *at) {
    jnode *x = jj_alloc(P->c, sizeof *x);
    if (x) {
        x->kind = kind;
        x->line = at->line;
    }
    return x;
}

static jnode *node_n(parser *P, jn_kind kind, const jtoken *at, int n_kids) {
    jnode *x = node(P, kind, at);
    if (x && n_kids && !(x->kids = jj_alloc(P->c, sizeof *x->kids * (size_t)n_kids))) return NULL;
    if (x) x->n_kids = n_kids;
    return x;
}

static jnode *binary(parser *P, const jtoken *op, const char *s, jnode *l, jnode *r) {
    jnode *x = l && r ? node_n(P, JN_BINARY, op, 2) : NULL;
    if (!x) return NULL;
    x->s = s;
    x->n = strlen(s);
    x->kids[0] = l;
    x->kids[1] = r;
    return x;
}

static jnode *parse_expression(parser *P);
static jnode *parse_primary(parser *P);
static jnode *parse_unary(parser *P);

static int enter(parser *P) {
    if (++P->depth > JJ_MAX_DEPTH)
        return jj_fail(P->c, tok(P)->line, "nested too deeply (over %d levels)", JJ_MAX_DEPTH), -1;
    return 0;
}

/* ---- expressions ---- */

/* a, b, c (a tuple when there is a comma); primary: only primary expressions (for-loop targets). */
static jnode *parse_sequence(parser *P, int primary) {
    const jtoken *at = tok(P);
    nlist items = {0};
    do {
        jnode *x = primary ? parse_primary(P) : parse_expression(P);
        if (!x || nlist_push(P->c, &items, x)) return NULL;
        if (!is_op(tok(P), ",")) break;
        P->pos++;
    } while (1);
    if (items.n == 1 && !is_op(&P->t[P->pos - 1], ",")) return items.v[0];
    jnode *x = node(P, JN_TUPLE, at);
    if (x) x->kids = items.v, x->n_kids = items.n;
    return x;
}

/* ( args ): positional, then name=value; params: names with optional defaults. kids from index first. */
static int parse_args(parser *P, int params, nlist *out) {
    if (expect_op(P, "(")) return -1;
    int keywords = 0;
    while (!is_op(tok(P), ")")) {
        if (is_op(tok(P), "*") || is_op(tok(P), "**"))
            return jj_fail(P->c, tok(P)->line, "argument unpacking (* and **) is not supported"), -1;
        const jtoken *at = tok(P);
        jnode *x = parse_expression(P);
        if (!x) return -1;
        if (is_op(tok(P), "=")) {
            if (x->kind != JN_NAME) return jj_fail(P->c, at->line, "expected a name before '='"), -1;
            P->pos++;
            jnode *kw = node_n(P, JN_KWARG, at, 1);
            if (!kw || !(kw->kids[0] = parse_expression(P))) return -1;
            kw->s = x->s, kw->n = x->n;
            x = kw;
            keywords = 1;
        } else if (keywords) {
            return jj_fail(P->c, at->line,
                           params ? "a parameter without a default after one with a default"
                                  : "a positional argument after a keyword argument"),
                   -1;
        }
        if (params && x->kind != JN_NAME && x->kind != JN_KWARG)
            return jj_fail(P->c, at->line, "macro parameters must be names"), -1;
        if (nlist_push(P->c, out, x)) return -1;
        if (is_op(tok(P), ","))
            P->pos++;
        else if (!is_op(tok(P), ")"))
            return fail_at(P, "',' or ')'"), -1;
    }
    P->pos++;
    return 0;
}

static jnode *parse_call(parser *P, jnode *callee);

/* [index] or [a:b:c] */
static jnode *parse_subscript(parser *P, jnode *obj, const jtoken *at) {
    jnode *part[3] = {NULL, NULL, NULL};
    int k = 0, slice = 0;
    if (is_op(tok(P), "]")) return jj_fail(P->c, at->line, "empty subscript []");
    while (!is_op(tok(P), "]")) {
        if (k == 3) return jj_fail(P->c, at->line, "a slice has at most 3 parts");
        if (is_op(tok(P), ":")) {
            P->pos++, k++, slice = 1;
            continue;
        }
        if (!(part[k] = parse_expression(P))) return NULL;
        k++;
        if (is_op(tok(P), ":"))
            P->pos++, slice = 1;
        else if (!is_op(tok(P), "]"))
            return fail_at(P, "':' or ']'");
    }
    P->pos++;
    jnode *x = node_n(P, slice ? JN_SLICE : JN_INDEX, at, slice ? 4 : 2);
    if (!x) return NULL;
    x->kids[0] = obj;
    for (int i = 0; i < (slice ? 3 : 1); i++)
        x->kids[1 + i] = part[i];
    return x;
}

static jnode *parse_member(parser *P, jnode *obj) {
    while (obj && (is_op(tok(P), ".") || is_op(tok(P), "["))) {
        const jtoken *at = tok(P);
        P->pos++;
        if (at->s[0] == '[') {
            obj = parse_subscript(P, obj, at);
            continue;
        }
        const jtoken *name = tok(P);
        if (name->kind != JT_NAME && name->kind != JT_INT)
            return fail_at(P, "a name or an integer after '.'");
        P->pos++;
        jnode *x = node_n(P, name->kind == JT_NAME ? JN_MEMBER : JN_INDEX, at, name->kind == JT_NAME ? 1 : 2);
        if (!x) return NULL;
        x->kids[0] = obj;
        if (name->kind == JT_NAME)
            x->s = name->s, x->n = name->n;
        else if (!(x->kids[1] = node(P, JN_INT, name)))
            return NULL;
        else
            x->kids[1]->i = strtoll(name->s, NULL, 10);
        obj = x;
    }
    return obj;
}

static jnode *parse_call(parser *P, jnode *callee) {
    const jtoken *at = tok(P);
    nlist args = {0};
    if (nlist_push(P->c, &args, callee) || parse_args(P, 0, &args)) return NULL;
    jnode *x = node(P, JN_CALL, at);
    if (!x) return NULL;
    x->kids = args.v, x->n_kids = args.n;
    x = parse_member(P, x);
    return x && is_op(tok(P), "(") ? parse_call(P, x) : x;
}

static jnode *parse_list_or_dict(parser *P, const jtoken *at, int dict) {
    nlist items = {0};
    const char *close = dict ? "}" : "]";
    while (!is_op(tok(P), close)) {
        if (tok(P)->kind == JT_EOF) return fail_at(P, close);
        jnode *x = parse_expression(P);
        if (!x || nlist_push(P->c, &items, x)) return NULL;
        if (dict && (expect_op(P, ":") || !(x = parse_expression(P)) || nlist_push(P->c, &items, x)))
            return NULL;
        if (is_op(tok(P), ",")) P->pos++;
    }
    P->pos++;
    jnode *x = node(P, dict ? JN_DICT : JN_LIST, at);
    if (x) x->kids = items.v, x->n_kids = items.n;
    return x;
}

static jnode *parse_primary(parser *P) {
    const jtoken *t = tok(P);
    if (enter(P)) return NULL;
    P->pos++;
    jnode *x = NULL;
    switch (t->kind) {
    case JT_INT:
    case JT_FLOAT:
        if ((x = node(P, t->kind == JT_INT ? JN_INT : JN_FLOAT, t))) {
            x->i = strtoll(t->s, NULL, 10);
            x->f = strtod(t->s, NULL);
        }
        break;
    case JT_STRING: { /* adjacent strings are one */
        jj_buf b = {0};
        int rc = jj_buf_add(P->c, &b, t->s, t->n);
        for (; rc == 0 && tok(P)->kind == JT_STRING; P->pos++)
            rc = jj_buf_add(P->c, &b, tok(P)->s, tok(P)->n);
        if (rc == 0 && (x = node(P, JN_STR, t)) && !(x->s = jj_strndup(P->c, b.p ? b.p : "", b.n))) x = NULL;
        if (x) x->n = b.n;
        jj_buf_free(&b);
        break;
    }
    case JT_NAME:
        if ((x = node(P, JN_NAME, t))) x->s = t->s, x->n = t->n;
        break;
    case JT_OP:
        if (is_op(t, "(")) {
            if ((x = parse_sequence(P, 0)) && expect_op(P, ")")) x = NULL;
        } else if (is_op(t, "[") || is_op(t, "{")) {
            x = parse_list_or_dict(P, t, t->s[0] == '{');
        } else {
            P->pos--;
            x = fail_at(P, "an expression");
        }
        break;
    default: P->pos--; x = fail_at(P, "an expression");
    }
    P->depth--;
    return x;
}

static jnode *parse_filter(parser *P) {
    jnode *x = parse_unary(P);
    while (x && is_op(tok(P), "|")) {
        const jtoken *at = tok(P);
        P->pos++;
        const jtoken *name = tok(P);
        if (name->kind != JT_NAME) return fail_at(P, "a filter name after '|'");
        P->pos++;
        nlist args = {0};
        if (nlist_push(P->c, &args, x) || (is_op(tok(P), "(") && parse_args(P, 0, &args))) return NULL;
        if (!(x = node(P, JN_FILTER, at))) return NULL;
        x->kids = args.v, x->n_kids = args.n, x->s = name->s, x->n = name->n;
    }
    return x;
}

static jnode *parse_test(parser *P) {
    jnode *x = parse_filter(P);
    while (x && is_name(tok(P), "is")) {
        const jtoken *at = tok(P);
        P->pos++;
        int negate = is_name(tok(P), "not");
        P->pos += (size_t)negate;
        const jtoken *name = tok(P);
        if (name->kind != JT_NAME) return fail_at(P, "a test name after 'is'");
        P->pos++;
        if (is_op(tok(P), "("))
            return jj_fail(P->c, at->line, "tests with arguments ('is %.*s(...)') are not supported",
                           (int)name->n, name->s);
        jnode *t = node_n(P, JN_TEST, at, 1);
        if (!t) return NULL;
        t->kids[0] = x, t->s = name->s, t->n = name->n, t->i = negate;
        x = t;
    }
    return x;
}

/* Left-associative binary levels. */
static jnode *parse_power(parser *P) {
    jnode *x = parse_test(P);
    while (x && is_op(tok(P), "**")) {
        const jtoken *op = &P->t[P->pos++];
        x = binary(P, op, "**", x, parse_test(P));
    }
    return x;
}

static jnode *parse_mul(parser *P) {
    jnode *x = parse_power(P);
    while (x && (is_op(tok(P), "*") || is_op(tok(P), "/") || is_op(tok(P), "//") || is_op(tok(P), "%"))) {
        const jtoken *op = &P->t[P->pos++];
        x = binary(P, op,
                   is_op(op, "*")    ? "*"
                   : is_op(op, "/")  ? "/"
                   : is_op(op, "//") ? "//"
                                     : "%",
                   x, parse_power(P));
    }
    return x;
}

static jnode *parse_add(parser *P) {
    jnode *x = parse_mul(P);
    while (x && (is_op(tok(P), "+") || is_op(tok(P), "-") || is_op(tok(P), "~"))) {
        const jtoken *op = &P->t[P->pos++];
        x = binary(P, op, op->s[0] == '+' ? "+" : op->s[0] == '-' ? "-" : "~", x, parse_mul(P));
    }
    return x;
}

static jnode *parse_compare(parser *P) {
    static const char *const cmp[] = {"==", "!=", "<", ">", "<=", ">="};
    jnode *x = parse_add(P);
    while (x) {
        const jtoken *at = tok(P);
        const char *op = NULL;
        if (is_name(at, "not") && is_name(peek(P, 1), "in"))
            op = "not in", P->pos += 2;
        else if (is_name(at, "in"))
            op = "in", P->pos++;
        for (size_t i = 0; !op && i < sizeof cmp / sizeof *cmp; i++)
            if (is_op(at, cmp[i])) op = cmp[i], P->pos++;
        if (!op) break;
        x = binary(P, at, op, x, parse_add(P));
    }
    return x;
}

static jnode *parse_not(parser *P) {
    if (!is_name(tok(P), "not")) return parse_compare(P);
    const jtoken *at = tok(P);
    P->pos++;
    if (enter(P)) return NULL;
    jnode *arg = parse_not(P), *x = arg ? node_n(P, JN_UNARY, at, 1) : NULL;
    P->depth--;
    if (x) x->s = "not", x->n = 3, x->kids[0] = arg;
    return x;
}

static jnode *parse_and(parser *P) {
    jnode *x = parse_not(P);
    while (x && is_name(tok(P), "and")) {
        const jtoken *op = &P->t[P->pos++];
        x = binary(P, op, "and", x, parse_not(P));
    }
    return x;
}

static jnode *parse_or(parser *P) {
    jnode *x = parse_and(P);
    while (x && is_name(tok(P), "or")) {
        const jtoken *op = &P->t[P->pos++];
        x = binary(P, op, "or", x, parse_and(P));
    }
    return x;
}

static jnode *parse_unary(parser *P) {
    const jtoken *t = tok(P);
    if ((t->kind == JT_UNARY || t->kind == JT_OP) && t->n == 1 && (t->s[0] == '-' || t->s[0] == '+')) {
        P->pos++;
        if (enter(P)) return NULL;
        jnode *arg = parse_unary(P), *x = arg ? node_n(P, JN_UNARY, t, 1) : NULL;
        P->depth--;
        if (x) x->s = t->s[0] == '-' ? "-" : "+", x->n = 1, x->kids[0] = arg;
        return x;
    }
    jnode *x = parse_member(P, parse_primary(P));
    return x && is_op(tok(P), "(") ? parse_call(P, x) : x;
}

static jnode *parse_expression(parser *P) {
    if (enter(P)) return NULL;
    jnode *x = parse_or(P);
    if (x && is_name(tok(P), "if")) {
        const jtoken *at = tok(P);
        P->pos++;
        jnode *test = parse_or(P), *other = NULL;
        int has_else = test && is_name(tok(P), "else");
        if (has_else) P->pos++, other = parse_expression(P);
        jnode *t = test && (!has_else || other)
                       ? node_n(P, has_else ? JN_TERNARY : JN_SELECT, at, has_else ? 3 : 2)
                       : NULL;
        if (t && has_else)
            t->kids[0] = test, t->kids[1] = x, t->kids[2] = other;
        else if (t)
            t->kids[0] = x, t->kids[1] = test;
        x = t;
    }
    P->depth--;
    return x;
}

/* ---- statements ---- */

static int is_stmt(const parser *P, const char *name) {
    return tok(P)->kind == JT_OPEN_STMT && is_name(peek(P, 1), name);
}

static int parse_block_until(parser *P, const char *const *stops, nlist *body);

/* {% end<name> %} */
static int expect_end(parser *P, const char *name) {
    if (!is_stmt(P, name)) {
        char what[32];
        snprintf(what, sizeof what, "{%% %s %%}", name);
        return fail_at(P, what), -1;
    }
    P->pos += 2;
    return expect(P, JT_CLOSE_STMT, "'%}'");
}

static jnode *parse_if(parser *P, const jtoken *at) {
    static const char *const stops[] = {"elif", "else", "endif", NULL};
    jnode *x = node_n(P, JN_IF, at, 1);
    nlist body = {0}, alt = {0};
    if (!x || !(x->kids[0] = parse_expression(P)) || expect(P, JT_CLOSE_STMT, "'%}'") ||
        parse_block_until(P, stops, &body))
        return NULL;
    if (is_stmt(P, "elif")) {
        const jtoken *e = peek(P, 1);
        P->pos += 2;
        jnode *inner = parse_if(P, e);
        if (!inner || nlist_push(P->c, &alt, inner)) return NULL;
    } else if (is_stmt(P, "else")) {
        static const char *const end[] = {"endif", NULL};
        P->pos += 2;
        if (expect(P, JT_CLOSE_STMT, "'%}'") || parse_block_until(P, end, &alt)) return NULL;
    }
    x->body = body.v, x->n_body = body.n, x->alt = alt.v, x->n_alt = alt.n;
    return x;
}

static jnode *parse_for(parser *P, const jtoken *at) {
    static const char *const stops[] = {"endfor", "else", NULL}, *const end[] = {"endfor", NULL};
    jnode *x = node_n(P, JN_FOR, at, 2);
    nlist body = {0}, alt = {0};
    if (!x || !(x->kids[0] = parse_sequence(P, 1))) return NULL;
    if (x->kids[0]->kind != JN_NAME && x->kids[0]->kind != JN_TUPLE)
        return jj_fail(P->c, at->line, "a for loop needs a name or names to assign");
    if (!is_name(tok(P), "in")) return fail_at(P, "'in'");
    P->pos++;
    if (!(x->kids[1] = parse_expression(P)) || expect(P, JT_CLOSE_STMT, "'%}'") ||
        parse_block_until(P, stops, &body))
        return NULL;
    if (is_stmt(P, "else")) {
        P->pos += 2;
        if (expect(P, JT_CLOSE_STMT, "'%}'") || parse_block_until(P, end, &alt)) return NULL;
    }
    x->body = body.v, x->n_body = body.n, x->alt = alt.v, x->n_alt = alt.n;
    return x;
}

static jnode *parse_set(parser *P, const jtoken *at) {
    static const char *const end[] = {"endset", NULL};
    jnode *x = node_n(P, JN_SET, at, 2);
    if (!x || !(x->kids[0] = parse_sequence(P, 0))) return NULL;
    if (is_op(tok(P), "=")) {
        P->pos++;
        if (!(x->kids[1] = parse_sequence(P, 0))) return NULL;
    } else {
        nlist body = {0};
        if (expect(P, JT_CLOSE_STMT, "'=' or '%}'") || parse_block_until(P, end, &body) ||
            !is_stmt(P, "endset"))
            return NULL;
        P->pos += 2;
        x->body = body.v, x->n_body = body.n;
    }
    return expect(P, JT_CLOSE_STMT, "'%}'") ? NULL : x;
}

static jnode *parse_macro(parser *P, const jtoken *at) {
    static const char *const end[] = {"endmacro", NULL};
    const jtoken *name = tok(P);
    if (name->kind != JT_NAME) return fail_at(P, "a macro name");
    P->pos++;
    nlist params = {0}, body = {0};
    jnode *x = node(P, JN_MACRO, at);
    if (!x || parse_args(P, 1, &params) || expect(P, JT_CLOSE_STMT, "'%}'") ||
        parse_block_until(P, end, &body))
        return NULL;
    x->s = name->s, x->n = name->n, x->kids = params.v, x->n_kids = params.n, x->body = body.v,
    x->n_body = body.n;
    return x;
}

static jnode *parse_statement(parser *P) {
    P->pos++; /* {% */
    const jtoken *t = tok(P);
    if (t->kind != JT_NAME) return fail_at(P, "a statement name");
    P->pos++;
    jnode *x;
    if (is_name(t, "set")) return parse_set(P, t);
    if (is_name(t, "if"))
        x = parse_if(P, t);
    else if (is_name(t, "for"))
        x = parse_for(P, t);
    else if (is_name(t, "macro"))
        x = parse_macro(P, t);
    else if (is_name(t, "break") || is_name(t, "continue"))
        return expect(P, JT_CLOSE_STMT, "'%}'") ? NULL : node(P, t->s[0] == 'b' ? JN_BREAK : JN_CONTINUE, t);
    else
        return jj_fail(P->c, t->line,
                       "unsupported statement '%.*s' (supported: set, if, for, macro, break, continue)",
                       (int)(t->n > 40 ? 40 : t->n), t->s);
    if (!x) return NULL;
    return expect_end(P, x->kind == JN_IF ? "endif" : x->kind == JN_FOR ? "endfor" : "endmacro") ? NULL : x;
}

static jnode *parse_any(parser *P) {
    const jtoken *t = tok(P);
    jnode *x = NULL;
    if (enter(P)) return NULL;
    if (t->kind == JT_TEXT) {
        if ((x = node(P, JN_TEXT, t))) x->s = t->s, x->n = t->n;
        P->pos++;
    } else if (t->kind == JT_OPEN_STMT) {
        x = parse_statement(P);
    } else if (t->kind == JT_OPEN_EXPR) {
        P->pos++;
        if ((x = node_n(P, JN_OUT, t, 1)) &&
            (!(x->kids[0] = parse_expression(P)) || expect(P, JT_CLOSE_EXPR, "'}}'")))
            x = NULL;
    } else {
        x = fail_at(P, "text, '{%' or '{{'");
    }
    P->depth--;
    return x;
}

/* Statements until {% stop %} for one of stops (not consumed), or the end of the template when stops is
 * NULL. */
static int parse_block_until(parser *P, const char *const *stops, nlist *body) {
    while (1) {
        if (tok(P)->kind == JT_EOF) {
            if (!stops) return 0;
            int last = 0;
            while (stops[last + 1])
                last++;
            return jj_fail(P->c, tok(P)->line, "the template ends inside a block: expected {%% %s %%}",
                           stops[last]),
                   -1;
        }
        for (int i = 0; stops && stops[i]; i++)
            if (is_stmt(P, stops[i])) return 0;
        if (tok(P)->kind == JT_COMMENT) {
            P->pos++;
            continue;
        }
        jnode *x = parse_any(P);
        if (!x || nlist_push(P->c, body, x)) return -1;
    }
}

int jj_parse(jj_ctx *c, const jtoken *toks, size_t n, jnode ***body, int *n_body) {
    parser P = {c, toks, 0, n, 0};
    nlist out = {0};
    if (parse_block_until(&P, NULL, &out)) return -1;
    *body = out.v;
    *n_body = out.n;
    return 0;
}
