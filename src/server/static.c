/* The web page: files of web/ embedded into the binary at build time (tools/embed.c -> av_web_assets, looked
 * up by core's av_asset_find). Nothing is read from disk, so no request can reach a file outside the table: a
 * path is either "/" or
 * "/<name of an embedded file>", anything else (subdirectories, "..", encoded dots) is 404. */
#include "server.h"

#include "core/core.h"

#include <string.h>

static const char *content_type(const char *name) {
    const char *dot = strrchr(name, '.');
    if (!dot) return "application/octet-stream";
    if (strcmp(dot, ".html") == 0) return "text/html; charset=utf-8";
    if (strcmp(dot, ".js") == 0) return "text/javascript; charset=utf-8";
    if (strcmp(dot, ".css") == 0) return "text/css; charset=utf-8";
    if (strcmp(dot, ".json") == 0) return "application/json";
    if (strcmp(dot, ".svg") == 0) return "image/svg+xml";
    if (strcmp(dot, ".png") == 0) return "image/png";
    return "application/octet-stream";
}

void srv_static_handle(av_server *s, const srv_request *req, srv_reply *r) {
    (void)s;
    const char *path = req->path;
    const char *name = strcmp(path, "/") == 0 ? "serve.html" : path + 1;
    const av_asset *a = NULL;
    if (path[0] == '/' && !strchr(name, '/') && !strstr(name, "..") && name[0] && name[0] != '.')
        a = av_asset_find(name);
    if (!a) {
        srv_reply_error(r, 404, "not found: %.200s", path);
        return;
    }
    if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
        r->allow = "GET, HEAD";
        srv_reply_error(r, 405, "%s is not allowed on %.200s (use GET)", req->method, path);
        return;
    }
    r->status = 200;
    r->static_body = a->data;
    r->len = a->len;
    r->ctype = content_type(a->name);
    r->cacheable = 1;
}
