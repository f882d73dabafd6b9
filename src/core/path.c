/* Path helpers on '/'-separated strings: directory, last component, extension, joining; "is a directory".
 * Nothing here touches the file system except av_path_is_dir. */
#include "core.h"

#include <string.h>
#include <sys/stat.h>

const char *av_path_basename(const char *path) {
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

const char *av_path_extension(const char *path) {
    const char *base = av_path_basename(path), *dot = strrchr(base, '.');
    return dot ? dot : base + strlen(base);
}

int av_path_dirname(const char *path, char *out, size_t cap) {
    const char *slash = strrchr(path, '/');
    size_t len = slash ? (size_t)(slash - path) : 0;
    while (len > 0 && path[len - 1] == '/')
        len--; /* "a//b" -> "a" */
    const char *dir = slash ? path : ".";
    if (!slash)
        len = 1;
    else if (len == 0)
        len = 1; /* "/b" -> "/" */
    if (len >= cap) {
        if (cap) out[0] = 0;
        return -1;
    }
    memcpy(out, dir, len);
    out[len] = 0;
    return 0;
}

int av_path_join(char *out, size_t cap, const char *dir, const char *name) {
    size_t len = strlen(dir);
    while (len > 1 && dir[len - 1] == '/')
        len--;
    const char *sep = len == 0 || dir[len - 1] == '/' ? "" : "/"; /* "" + "a" -> "a", "/" + "a" -> "/a" */
    int k = snprintf(out, cap, "%.*s%s%s", (int)len, dir, sep, name);
    return k < 0 || (size_t)k >= cap ? -1 : 0;
}

bool av_path_is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}
