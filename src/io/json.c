/* JSON helpers on top of jansson. */
#include "io.h"

#include <math.h>

#define AV_JSON_MAX_FILE (64u << 20)

int av_json_load_file(const char *path, json_t **out, av_err *err) {
    char *text;
    size_t n;
    if (av_file_read_all(path, AV_JSON_MAX_FILE, &text, &n, err)) return -1;
    json_error_t je;
    json_t *j = json_loadb(text, n, JSON_REJECT_DUPLICATES, &je);
    free(text);
    if (!j)
        return av_errf(err, "%s: invalid JSON at line %d column %d: %s", path, je.line, je.column, je.text);
    *out = j;
    return 0;
}

int av_json_int(const json_t *obj, const char *key, int64_t def, int64_t *out, av_err *err) {
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) {
        *out = def;
        return 0;
    }
    if (json_is_integer(v)) {
        *out = (int64_t)json_integer_value(v);
        return 0;
    }
    double d = json_is_real(v) ? json_real_value(v) : 0.5;
    if (d >= -0x1p63 && d < 0x1p63 && d == floor(d)) { /* 1e216 or 2.5: not an int64 (never cast those) */
        *out = (int64_t)d;
        return 0;
    }
    return av_errf(err, "\"%s\" must be an integer", key);
}

int av_json_num(const json_t *obj, const char *key, double def, double *out, av_err *err) {
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) {
        *out = def;
        return 0;
    }
    if (!json_is_number(v)) return av_errf(err, "\"%s\" must be a number", key);
    *out = json_number_value(v);
    return 0;
}

const char *av_json_str(const json_t *obj, const char *key) {
    json_t *v = json_object_get(obj, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}
