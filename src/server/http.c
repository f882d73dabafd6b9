/* The HTTP side of attnviz serve: libmicrohttpd with one thread per connection (a slow tile never blocks
 * another client), a connection limit, a per-client-address limit, an idle timeout and a request deadline
 * (guard.c), request bodies bounded by max_body, the Host and cross-site checks, and one place where replies
 * are turned into responses. The listening socket is made here (clear bind errors, port 0 = any free port),
 * then handed to libmicrohttpd. */
#include "core/core.h"
#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#if MHD_VERSION < 0x00097002
typedef int MHD_Result_t;
#else
typedef enum MHD_Result MHD_Result_t;
#endif

av_server_params av_server_default_params(void) {
    return (av_server_params){
        .host = "127.0.0.1",
        .port = 8080,
        .max_body = 1u << 20,
        .max_tokens = 8192,
        .max_queue = 8,
        .max_runs = 16,
        .max_trace_bytes = (size_t)2 << 30,
        .cache_bytes = (size_t)128 << 20,
        .timeout_s = 30,
        .max_connections = 64,
        .max_per_ip = 16,
        .request_timeout_s = 10,
        .n_threads = 0,
        .lazy = 1,
        .viewer_bytes = (size_t)256 << 20,
    };
}

/* ---- replies ---- */

void srv_reply_json(srv_reply *r, int status, json_t *j) {
    char *s = j ? json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(9)) : NULL;
    json_decref(j);
    if (!s) {
        static const char oom[] = "{\"error\":\"out of memory\"}";
        r->status = 500;
        r->static_body = oom;
        r->len = sizeof oom - 1;
        r->ctype = "application/json";
        return;
    }
    free(r->body);
    r->status = status;
    r->body = s;
    r->len = strlen(s);
    r->ctype = "application/json";
}

void srv_reply_error(srv_reply *r, int status, const char *fmt, ...) {
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    json_t *s = json_string(msg);
    if (!s) s = json_string("request rejected (the message was not valid UTF-8)");
    srv_reply_json(r, status, json_pack("{s:o}", "error", s));
}

void srv_reply_bytes(srv_reply *r, int status, void *data, size_t len, const char *ctype) {
    free(r->body);
    r->status = status;
    r->body = data;
    r->len = len;
    r->ctype = ctype;
}

void srv_reply_header(srv_reply *r, const char *name, const char *value) {
    for (int i = 0; i < 2; i++) {
        if (r->hdr_name[i][0]) continue;
        snprintf(r->hdr_name[i], sizeof r->hdr_name[i], "%s", name);
        snprintf(r->hdr_value[i], sizeof r->hdr_value[i], "%s", value);
        return;
    }
}

const char *srv_arg(const srv_request *req, const char *name) {
    return MHD_lookup_connection_value((struct MHD_Connection *)req->conn, MHD_GET_ARGUMENT_KIND, name);
}

static void page_free_cb(void *cls) { srv_page_release(cls); }

static MHD_Result_t send_reply(struct MHD_Connection *conn, srv_reply *r) {
    struct MHD_Response *resp;
    if (r->page) { /* the response holds the reference until it is destroyed */
        resp = MHD_create_response_from_buffer_with_free_callback_cls(r->page->len, r->page->data,
                                                                      page_free_cb, r->page);
        if (!resp) srv_page_release(r->page);
        r->page = NULL;
    } else if (r->fd >= 0) {
        struct stat sb;
        if (fstat(r->fd, &sb) != 0) {
            close(r->fd);
            r->fd = -1;
            srv_reply_error(r, 500, "cannot read the trace file");
            return send_reply(conn, r);
        }
        resp = MHD_create_response_from_fd((uint64_t)sb.st_size, r->fd); /* closes fd when done */
        if (!resp) close(r->fd);
        r->fd = -1;
    } else if (r->body) {
        resp = MHD_create_response_from_buffer(r->len, r->body, MHD_RESPMEM_MUST_FREE);
        if (resp) r->body = NULL;
    } else {
        resp = MHD_create_response_from_buffer(r->len, (void *)(uintptr_t)r->static_body,
                                               MHD_RESPMEM_PERSISTENT);
    }
    if (!resp) return MHD_NO;
    if (r->ctype) MHD_add_response_header(resp, "Content-Type", r->ctype);
    MHD_add_response_header(resp, "Cache-Control", r->cacheable ? "no-cache" : "no-store");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
    /* no other site may read (no-cors) or frame (clickjacking) anything of this server */
    MHD_add_response_header(resp, "Cross-Origin-Resource-Policy", "same-origin");
    MHD_add_response_header(resp, "X-Frame-Options", "SAMEORIGIN");
    if (r->allow) MHD_add_response_header(resp, "Allow", r->allow);
    for (int i = 0; i < 2; i++)
        if (r->hdr_name[i][0]) MHD_add_response_header(resp, r->hdr_name[i], r->hdr_value[i]);
    MHD_Result_t ret = MHD_queue_response(conn, (unsigned)r->status, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* ---- requests ---- */

typedef struct conn_state {
    char *body; /* (cap) */
    size_t len, cap;
    int too_large;
} conn_state;

static void request_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                              enum MHD_RequestTerminationCode toe) {
    (void)toe;
    av_server *s = cls;
    srv_guard_completed(&s->guard, conn);
    conn_state *cs = *con_cls;
    if (cs) {
        free(cs->body);
        free(cs);
    }
    *con_cls = NULL;
}

/* Host header check against DNS rebinding: a server bound to loopback answers only loopback names. */
static int host_allowed(const av_server *s, const char *host) {
    if (!s->loopback || !host) return 1;
    char name[256];
    size_t n = 0;
    if (host[0] == '[') {
        const char *e = strchr(host, ']');
        if (!e) return 0;
        n = (size_t)(e - host - 1);
        if (n >= sizeof name) return 0;
        memcpy(name, host + 1, n);
    } else {
        while (host[n] && host[n] != ':' && n + 1 < sizeof name)
            n++;
        memcpy(name, host, n);
    }
    name[n] = 0;
    return av_server_host_is_loopback(name) || strcmp(name, s->host) == 0;
}

static const char *header(struct MHD_Connection *conn, const char *name) {
    return MHD_lookup_connection_value(conn, MHD_HEADER_KIND, name);
}

/* First call of a request, with its headers: refuses an announced body above max_body at once. */
static MHD_Result_t request_headers(av_server *s, struct MHD_Connection *conn, void **con_cls) {
    conn_state *cs = calloc(1, sizeof *cs);
    if (!cs) return MHD_NO;
    *con_cls = cs;
    const char *cl = header(conn, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl) {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(cl, &end, 10);
        if (errno || end == cl || v > s->params.max_body) {
            srv_reply r = {.status = 500, .fd = -1};
            srv_reply_error(&r, 413, "request body too large: the limit is %zu bytes (--max-body)",
                            s->params.max_body);
            srv_guard_received(&s->guard, conn);
            return send_reply(conn, &r);
        }
    }
    return MHD_YES;
}

/* A piece of the body: kept while the whole stays within max_body, then only counted. */
static void request_body(av_server *s, conn_state *cs, const char *data, size_t n) {
    if (cs->too_large || cs->len + n > s->params.max_body) {
        cs->too_large = 1; /* keep reading, keep nothing */
        return;
    }
    if (cs->len + n + 1 > cs->cap) {
        size_t cap = cs->cap ? cs->cap : 4096;
        while (cap < cs->len + n + 1)
            cap *= 2;
        char *p = realloc(cs->body, cap);
        if (!p) {
            cs->too_large = 1;
            return;
        }
        cs->body = p;
        cs->cap = cap;
    }
    memcpy(cs->body + cs->len, data, n);
    cs->len += n;
    cs->body[cs->len] = 0;
}

/* The whole request is here: the checks every request passes, then the routes. */
static void request_dispatch(av_server *s, struct MHD_Connection *conn, const char *url, const char *method,
                             conn_state *cs, srv_reply *r) {
    const char *host = header(conn, MHD_HTTP_HEADER_HOST);
    int api = strncmp(url, "/api/", 5) == 0 || strcmp(url, "/api") == 0;
    const char *cross =
        api ? srv_cross_site_reason(host, header(conn, "Origin"), header(conn, "Sec-Fetch-Site")) : NULL;
    if (cs->too_large) {
        srv_reply_error(r, 413, "request body too large: the limit is %zu bytes (--max-body)",
                        s->params.max_body);
    } else if (!host_allowed(s, host)) {
        srv_reply_error(r, 403,
                        "this server answers only requests addressed to a loopback name "
                        "(localhost, 127.0.0.1, [::1])");
    } else if (cross) {
        srv_reply_error(r, 403, "cross-site request refused: %s (open the page of this server instead)",
                        cross);
    } else {
        srv_request req = {
            .method = method,
            .path = url,
            .body = cs->body ? cs->body : "",
            .body_len = cs->len,
            .content_type = header(conn, MHD_HTTP_HEADER_CONTENT_TYPE),
            .conn = conn,
        };
        if (api)
            srv_api_handle(s, &req, r);
        else
            srv_static_handle(s, &req, r);
    }
}

static MHD_Result_t handle(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                           const char *version, const char *upload_data, size_t *upload_data_size,
                           void **con_cls) {
    (void)version;
    av_server *s = cls;
    conn_state *cs = *con_cls;
    if (!cs) return request_headers(s, conn, con_cls);
    if (*upload_data_size) {
        request_body(s, cs, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return MHD_YES;
    }
    srv_guard_received(&s->guard, conn);
    srv_reply r = {.status = 500, .fd = -1};
    request_dispatch(s, conn, url, method, cs, &r);
    MHD_Result_t ret = send_reply(conn, &r);
    free(r.body);
    if (r.fd >= 0) close(r.fd);
    if (r.page) srv_page_release(r.page);
    return ret;
}

static void notify_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                              enum MHD_ConnectionNotificationCode code) {
    srv_guard_notify(cls, conn, socket_context, (int)code);
}

static void quiet_logger(void *cls, const char *fmt, va_list ap) {
    (void)cls;
    (void)fmt;
    (void)ap;
}

/* ---- listening socket ---- */

int av_server_host_is_loopback(const char *host) {
    if (!host) return 0;
    if (strcmp(host, "localhost") == 0) return 1;
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, host, &a4) == 1) return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, host, &a6) == 1) {
        if (IN6_IS_ADDR_LOOPBACK(&a6)) return 1;
        if (IN6_IS_ADDR_V4MAPPED(&a6)) return a6.s6_addr[12] == 127;
    }
    return 0;
}

static int open_listener(const char *host, int port, int *fd_out, int *family, int *port_out, av_err *err) {
    char ps[16];
    snprintf(ps, sizeof ps, "%d", port);
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    int g = getaddrinfo(host, ps, &hints, &res);
    if (g != 0) return av_errf(err, "cannot resolve host '%s': %s", host, gai_strerror(g));
    int fd = -1, saved = 0;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            saved = errno;
            continue;
        }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 128) == 0) {
            *family = ai->ai_family;
            break;
        }
        saved = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) return av_errf(err, "cannot listen on %s port %d: %s", host, port, strerror(saved));
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0) {
        close(fd);
        return av_errf(err, "getsockname: %s", strerror(errno));
    }
    *port_out = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                         : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    *fd_out = fd;
    return 0;
}

int av_server_start(av_model *model, av_trace *trace, const av_server_params *params, av_server **out,
                    av_err *err) {
    *out = NULL;
    av_server_params p = params ? *params : av_server_default_params();
    if (!p.host || !*p.host) p.host = "127.0.0.1";
    if (p.port < 0 || p.port > 65535 || p.max_tokens < 1 || p.max_queue < 1 || p.max_runs < 1 ||
        p.timeout_s < 1 || p.max_connections < 1 || p.max_body < 64 || p.max_per_ip < 1 ||
        p.request_timeout_s < 1) {
        av_trace_free(trace);
        return av_errf(err, "server parameters out of range");
    }
    if (!model && !trace) return av_errf(err, "nothing to serve: give a model or a trace");
    if (model) {
        av_model_info mi = av_model_get_info(model);
        if (mi.max_seq_len > 0 && p.max_tokens > mi.max_seq_len) p.max_tokens = mi.max_seq_len;
    }
    av_server *s = calloc(1, sizeof *s);
    if (!s) {
        av_trace_free(trace);
        return av_errf(err, "out of memory");
    }
    s->params = p;
    snprintf(s->host, sizeof s->host, "%s", p.host);
    s->params.host = s->host;
    s->loopback = av_server_host_is_loopback(s->host);
    srv_viewer_init(s);
    if (srv_guard_init(&s->guard, p.request_timeout_s, err)) goto fail;
    s->guard_ok = 1;
    if (srv_cache_init(&s->cache, p.cache_bytes, err)) goto fail;
    s->cache_ok = 1;
    if (srv_store_init(&s->store, model, &s->cache, &s->params, err)) goto fail;
    s->store_ok = 1;
    if (trace) {
        av_trace *t = trace;
        trace = NULL;
        if (srv_store_add_trace(&s->store, t, err)) goto fail;
    }
    int fd = -1, family = AF_INET;
    if (open_listener(s->host, p.port, &fd, &family, &s->port, err)) goto fail;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ERROR_LOG;
    if (family == AF_INET6) flags |= MHD_USE_IPv6;
    s->daemon = MHD_start_daemon(flags, 0, NULL, NULL, handle, s,                                    //
                                 MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd,                           //
                                 MHD_OPTION_CONNECTION_LIMIT, (unsigned)p.max_connections,           //
                                 MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)p.max_per_ip,         //
                                 MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)p.timeout_s,               //
                                 MHD_OPTION_NOTIFY_COMPLETED, request_completed, (void *)s,          //
                                 MHD_OPTION_NOTIFY_CONNECTION, notify_connection, (void *)&s->guard, //
                                 MHD_OPTION_EXTERNAL_LOGGER, quiet_logger, (void *)s,                //
                                 MHD_OPTION_END);
    if (!s->daemon) {
        close(fd);
        av_errf(err, "libmicrohttpd could not start on %s port %d", s->host, s->port);
        goto fail;
    }
    *out = s;
    return 0;
fail:
    av_trace_free(trace);
    av_server_stop(s);
    return -1;
}

int av_server_port(const av_server *s) { return s->port; }

int av_server_lazy(const av_server *s) { return s->params.lazy; }

void av_server_stop(av_server *s) {
    if (!s) return;
    if (s->daemon) MHD_stop_daemon(s->daemon); /* joins every connection thread */
    if (s->guard_ok) srv_guard_free(&s->guard);
    if (s->store_ok) srv_store_free(&s->store);
    if (s->cache_ok) srv_cache_free(&s->cache);
    srv_viewer_free(s);
    free(s);
}
