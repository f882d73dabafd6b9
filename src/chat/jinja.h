/* A Jinja interpreter for chat templates (the subset the chat templates of Llama 3.x, Qwen 2.5/3, Gemma 2/3,
 * Mistral, Phi-3 and SmolLM use), rendering what @huggingface/jinja renders (the reference of the tests):
 *
 *   jinja_lex.c     template text -> tokens (trim_blocks and lstrip_blocks on, "-" whitespace control)
 *   jinja_parse.c   tokens -> syntax tree (statements if/elif/else, for/else, set, macro, break, continue;
 *                   expressions with filters, tests, calls, slices, ternaries)
 *   jinja_value.c   values (none, bool, int, float, string, list, dict, namespace, function), JSON in and out
 *   jinja_eval.c    the interpreter: scopes, statements, operators, calls, macros
 *   jinja_builtins.c  filters, tests, string/dict methods and global functions
 *
 * Everything one rendering allocates lives in one arena, freed at once. Hostile templates cannot hang or
 * crash the process: parsing and evaluation depth, evaluation steps, loop lengths, memory and output size are
 * bounded, and going past a bound is an error naming it. */
#ifndef AV_JINJA_H
#define AV_JINJA_H

#include "core/core.h"

#include <jansson.h>

enum {
    JJ_MAX_DEPTH = 192,             /* nesting of the syntax tree and of evaluation */
    JJ_MAX_CALL_DEPTH = 48,         /* macro calls inside macro calls */
    JJ_MAX_STEPS = 5 * 1000 * 1000, /* expressions and statements evaluated */
    JJ_MAX_ITEMS = 4 * 1000 * 1000, /* length of a list a template builds (range(), concatenation) */
};
#define JJ_MAX_OUTPUT ((size_t)64 << 20)  /* bytes of text built: rendered, joined, in macros and blocks */
#define JJ_MAX_MEMORY ((size_t)512 << 20) /* bytes the arena may hold */

/* Renders a template with the keys of the JSON object vars as variables (chat.c): *out malloc'd,
 * NUL-terminated. Errors name the template line and the construct ("chat template line 3: unknown filter
 * 'wordcount'"). */
int jinja_render(const char *tmpl, size_t len, const json_t *vars, int64_t now, char **out, size_t *out_len,
                 av_err *err);

/* ---- rendering context: arena, limits, error ---- */
typedef struct jj_chunk jj_chunk;

typedef struct jj_ctx {
    jj_chunk *chunks;
    size_t used;      /* bytes taken from the arena */
    size_t steps;     /* evaluation steps so far */
    size_t output;    /* bytes rendered so far (all buffers) */
    int depth, calls; /* current evaluation depth, macro call depth */
    int failed;       /* an error is recorded in err */
    av_err *err;
    const char *src;     /* the preprocessed template, for line numbers */
    const int *src_line; /* (len + 1) line of each byte of src in the original template */
    int64_t now;         /* strftime_now's time: seconds since the epoch, local time */
} jj_ctx;

void *jj_alloc(jj_ctx *c, size_t n);                  /* zeroed; NULL (error set) past the limit */
char *jj_strndup(jj_ctx *c, const char *s, size_t n); /* NUL-terminated copy */
void jj_ctx_free(jj_ctx *c);
/* Records "chat template line N: message" (line 0: no line) unless an error is already recorded; returns
 * NULL. */
void *jj_fail(jj_ctx *c, int line, const char *fmt, ...) AV_PRINTF(3, 4);

/* A growable byte buffer counted against JJ_MAX_OUTPUT. */
typedef struct jj_buf {
    char *p;
    size_t n, cap;
} jj_buf;
int jj_buf_add(jj_ctx *c, jj_buf *b, const char *s, size_t n);
void jj_buf_free(jj_buf *b);

/* ---- tokens (jinja_lex.c) ---- */
typedef enum jt_kind {
    JT_TEXT,
    JT_COMMENT,
    JT_OPEN_STMT,  /* {% */
    JT_CLOSE_STMT, /* %} */
    JT_OPEN_EXPR,  /* {{ */
    JT_CLOSE_EXPR, /* }} */
    JT_NAME,
    JT_INT,
    JT_FLOAT,
    JT_STRING, /* s: the unescaped contents */
    JT_OP,     /* s: one of ( ) { } [ ] , . : | < > <= >= == != + - ~ * ** / // % = */
    JT_UNARY,  /* s: "-" or "+" where an operand is expected */
    JT_EOF
} jt_kind;

typedef struct jtoken {
    jt_kind kind;
    const char *s;
    size_t n;
    int line;
} jtoken;

/* Preprocesses and tokenizes a template; *toks ends with JT_EOF. */
int jj_lex(jj_ctx *c, const char *tmpl, size_t len, jtoken **toks, size_t *n);

/* ---- syntax tree (jinja_parse.c) ---- */
typedef enum jn_kind {
    /* statements */
    JN_TEXT, /* s */
    JN_OUT,  /* {{ kids[0] }} */
    JN_IF,   /* kids[0] test; body; alt (an elif is an IF alone in alt) */
    JN_FOR,  /* kids[0] target (NAME or TUPLE), kids[1] iterable (SELECT for "for x in xs if c"); body; alt */
    JN_SET,  /* kids[0] target (NAME, TUPLE or MEMBER), kids[1] value or NULL with body (block set) */
    JN_MACRO, /* s name, kids parameters (NAME or KWARG with a default); body */
    JN_BREAK,
    JN_CONTINUE,
    /* expressions */
    JN_STR,     /* s */
    JN_INT,     /* i */
    JN_FLOAT,   /* f */
    JN_NAME,    /* s */
    JN_LIST,    /* kids */
    JN_TUPLE,   /* kids */
    JN_DICT,    /* kids: key, value, key, value... */
    JN_MEMBER,  /* kids[0] . s */
    JN_INDEX,   /* kids[0] [ kids[1] ] */
    JN_SLICE,   /* kids[0] [ kids[1] : kids[2] : kids[3] ] (each may be NULL) */
    JN_CALL,    /* kids[0] ( kids[1..] ), keyword arguments as KWARG */
    JN_FILTER,  /* kids[0] | s ( kids[1..] ) */
    JN_TEST,    /* kids[0] is [not] s ; i: negated */
    JN_UNARY,   /* s kids[0] ("not", "-", "+") */
    JN_BINARY,  /* kids[0] s kids[1] */
    JN_TERNARY, /* kids[1] if kids[0] else kids[2] */
    JN_SELECT,  /* kids[0] if kids[1] (no else: undefined when false) */
    JN_KWARG    /* s = kids[0] */
} jn_kind;

typedef struct jnode {
    jn_kind kind;
    int line;
    const char *s;
    size_t n;
    int64_t i;
    double f;
    struct jnode **kids;
    int n_kids;
    struct jnode **body, **alt;
    int n_body, n_alt;
} jnode;

/* Parses a token list into the statements of the template. */
int jj_parse(jj_ctx *c, const jtoken *toks, size_t n, jnode ***body, int *n_body);

/* ---- values (jinja_value.c) ---- */
typedef enum jv_type {
    JV_UNDEF,
    JV_NONE,
    JV_BOOL,
    JV_INT,
    JV_FLOAT,
    JV_STR,
    JV_LIST,
    JV_DICT,
    JV_FUNC
} jv_type;
/* what a JV_DICT is: a mapping (from JSON or a literal), a namespace(), keyword arguments, a loop variable */
typedef enum jv_dict_kind { JD_OBJECT, JD_NAMESPACE, JD_KWARGS } jv_dict_kind;

typedef struct jv jv;
typedef struct jscope jscope;

/* A built-in function: self is the value a method was read from (NULL for globals); args the positional
 * arguments, kw the keyword ones (NULL when none). */
typedef struct jargs {
    jv **v;
    int n;
    jv *kw;
} jargs;
typedef jv *(*jj_builtin)(jj_ctx *c, int line, jv *self, const jargs *a);

struct jv {
    jv_type type;
    uint8_t tuple;     /* JV_LIST */
    uint8_t dict_kind; /* JV_DICT: jv_dict_kind */
    union {
        int b;
        int64_t i;
        double f;
        struct {
            const char *s;
            size_t n;
        } str;
        struct {
            jv **v;
            size_t n, cap;
        } list;
        struct {
            const char **keys;
            size_t *key_lens;
            jv **vals;
            size_t n, cap;
        } dict;
        struct {
            jj_builtin fn; /* a built-in, or NULL for a macro */
            jv *self;
            const jnode *macro; /* JN_MACRO */
            jscope *closure;    /* the scope the macro was defined in */
            const char *name;
        } fn;
    } u;
};

jv *jv_new(jj_ctx *c, jv_type t);
jv *jv_undef(void); /* shared constants: never modified */
jv *jv_none(void);
jv *jv_bool(int b);
jv *jv_int(jj_ctx *c, int64_t i);
jv *jv_float(jj_ctx *c, double f);
jv *jv_str(jj_ctx *c, const char *s, size_t n);     /* copies */
jv *jv_str_ref(jj_ctx *c, const char *s, size_t n); /* does not copy: s must live as long as the arena */
jv *jv_list(jj_ctx *c, size_t cap);
int jv_list_push(jj_ctx *c, jv *list, jv *item);
jv *jv_dict(jj_ctx *c, jv_dict_kind kind);
int jv_dict_set(jj_ctx *c, jv *d, const char *key, size_t n, jv *val);
jv *jv_dict_sized(jj_ctx *c, jv_dict_kind kind, size_t cap); /* room for cap keys */
/* A key that lives as long as the arena (a string constant): not copied. */
int jv_dict_set_static(jj_ctx *c, jv *d, const char *key, jv *val);
jv *jv_dict_get(const jv *d, const char *key, size_t n); /* NULL when absent */
jv *jv_func(jj_ctx *c, const char *name, jj_builtin fn, jv *self);

int jv_truthy(const jv *v);
int jv_is_number(const jv *v); /* int or float */
double jv_num(const jv *v);    /* int, float or bool as a number */
/* == as the reference compares (JavaScript's loose equality of the underlying values: lists and mappings by
 * identity, numbers and booleans by value, strings by content). */
int jv_loose_eq(const jv *a, const jv *b);
/* The element test of "x in list" (strict equality: same type family and value, or the same list/mapping). */
int jv_strict_eq(const jv *a, const jv *b);
/* Text of a value as {{ }} prints it ("" for none and undefined, true/false, 2.0, JSON for lists and
 * mappings). */
int jv_to_text(jj_ctx *c, const jv *v, jj_buf *out);
/* The text "~" and "+" concatenate (JavaScript's toString of the value). */
int jv_concat_text(jj_ctx *c, const jv *v, jj_buf *out);
/* JSON (tojson): indent < 0: none; item/key separators NULL for the defaults; undefined_null: undefined as
 * null (else "undefined"). */
typedef struct jj_json_opts {
    int indent, ensure_ascii, sort_keys, undefined_null;
    const char *item_sep, *key_sep;
} jj_json_opts;
int jv_to_json(jj_ctx *c, const jv *v, const jj_json_opts *o, int depth, jj_buf *out);
/* A JSON document (jansson) as a value: integral numbers become integers, as the reference's JSON.parse. */
jv *jv_from_json(jj_ctx *c, const json_t *j, int depth);
const char *jv_type_name(const jv *v);
/* Code points of a UTF-8 string (invalid bytes count as one each). */
size_t jj_utf8_count(const char *s, size_t n);
/* Byte offset of code point k of s (n when k is past the end). */
size_t jj_utf8_offset(const char *s, size_t n, size_t k);

/* ---- interpreter (jinja_eval.c) ---- */
struct jscope {
    jscope *parent;
    jv *vars; /* JD_OBJECT dict */
};
jscope *jj_scope_new(jj_ctx *c, jscope *parent);
jv *jj_lookup(const jscope *s, const char *name, size_t n); /* undefined when absent */
int jj_scope_set(jj_ctx *c, jscope *s, const char *name, jv *v);
/* Renders statements into out. */
int jj_render(jj_ctx *c, jnode **body, int n, jscope *scope, jj_buf *out);
/* Calls a function value (built-in or macro) with evaluated arguments. */
jv *jj_call(jj_ctx *c, int line, jv *fn, const jargs *a);

/* ---- built-ins (jinja_builtins.c) ---- */
/* Applies filter name to operand with the arguments a (a->n == 0 and no kw for a bare "| name"). */
jv *jj_filter(jj_ctx *c, int line, const char *name, jv *operand, const jargs *a);
/* The test "operand is name"; -1 with the error set for an unknown test. */
int jj_test(jj_ctx *c, int line, const char *name, const jv *operand);
/* The method or property name of a string, list or mapping (a bound function, or a value such as length);
 * undefined when there is none. */
jv *jj_method(jj_ctx *c, jv *self, const char *name, size_t n);
/* Declares the globals (namespace, range, raise_exception, strftime_now, true/false/none in both cases). */
int jj_globals(jj_ctx *c, jscope *s);
/* Sorts items (stable) as the sort filter does; -1 with the error set when two items cannot be compared. */
int jj_sort(jj_ctx *c, int line, jv **items, size_t n, int reverse, int case_sensitive,
            const char *attribute);

#endif
