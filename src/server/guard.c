/* Guards of attnviz serve against clients that hold the server without using it, and against web pages
 * that use it behind the user's back.
 *
 * Request deadline (slowloris). libmicrohttpd's connection timeout is an *idle* timeout: a client that sends
 * one header byte a second never times out, and 64 such clients fill every slot. Here each connection is
 * tracked from libmicrohttpd's connection notifications: a connection is "receiving" from its accept (or from
 * the end of its previous request) until the whole request, headers and body, has arrived; a reaper thread
 * shuts down (shutdown(2)) every connection still receiving after `request_timeout_s`, however many bytes it
 * trickled. Handling and replying are not limited (the idle timeout covers a client that stops reading).
 * libmicrohttpd's own per-IP limit keeps one address from taking every slot meanwhile.
 *
 * Cross-site requests. A web page the user visits can send requests to 127.0.0.1 (forms, fetch in no-cors
 * mode, images). The /api/ routes answer only requests whose Origin header, when present, is the server's own
 * origin (http://<Host>), and whose Sec-Fetch-Site, when present, is same-origin or none (typed URL). */
#include "core/core.h"
#include "server.h"

#include <errno.h>
#include <microhttpd.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

/* One connection as the guard sees it. */
struct srv_conn {
    int fd;
    int receiving;  /* 1 from the accept or the end of the previous request until a request is complete */
    double t_start; /* when the current request began to be awaited */
    int cut;        /* shut down by the reaper */
    srv_conn *prev, *next;
};

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void *reaper_main(void *arg) {
    srv_guard *g = arg;
    pthread_mutex_lock(&g->mu);
    while (!g->stop) {
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_nsec += 250 * 1000 * 1000; /* a deadline is kept to within a quarter second */
        if (until.tv_nsec >= 1000000000) until.tv_sec++, until.tv_nsec -= 1000000000;
        pthread_cond_timedwait(&g->cv, &g->mu, &until);
        double t = now_s();
        for (srv_conn *c = g->head; c; c = c->next) {
            if (!c->receiving || c->cut || t - c->t_start <= g->deadline_s) continue;
            /* the fd is still this connection's: libmicrohttpd closes it only after the CLOSED
             * notification, which takes this lock to unlink the connection first */
            shutdown(c->fd, SHUT_RDWR);
            c->cut = 1;
            g->n_cut++;
        }
    }
    pthread_mutex_unlock(&g->mu);
    return NULL;
}

int srv_guard_init(srv_guard *g, double deadline_s, av_err *err) {
    memset(g, 0, sizeof *g);
    g->deadline_s = deadline_s;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&g->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&g->mu, NULL);
    if (pthread_create(&g->reaper, NULL, reaper_main, g) != 0) {
        pthread_cond_destroy(&g->cv);
        pthread_mutex_destroy(&g->mu);
        return av_errf(err, "cannot start the connection deadline thread");
    }
    return 0;
}

/* After the daemon has stopped: every connection has been notified closed. */
void srv_guard_free(srv_guard *g) {
    pthread_mutex_lock(&g->mu);
    g->stop = 1;
    pthread_cond_signal(&g->cv);
    pthread_mutex_unlock(&g->mu);
    pthread_join(g->reaper, NULL);
    for (srv_conn *c = g->head, *n; c; c = n) {
        n = c->next;
        free(c);
    }
    pthread_cond_destroy(&g->cv);
    pthread_mutex_destroy(&g->mu);
    memset(g, 0, sizeof *g);
}

void srv_guard_notify(void *cls, struct MHD_Connection *conn, void **socket_context, int code) {
    srv_guard *g = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        srv_conn *c = ci ? calloc(1, sizeof *c) : NULL;
        *socket_context = c;
        if (!c) return; /* untracked: only the idle timeout applies */
        c->fd = ci->connect_fd;
        c->receiving = 1;
        c->t_start = now_s();
        pthread_mutex_lock(&g->mu);
        c->next = g->head;
        if (g->head) g->head->prev = c;
        g->head = c;
        pthread_mutex_unlock(&g->mu);
    } else if (code == MHD_CONNECTION_NOTIFY_CLOSED && *socket_context) {
        srv_conn *c = *socket_context;
        pthread_mutex_lock(&g->mu);
        if (c->prev)
            c->prev->next = c->next;
        else
            g->head = c->next;
        if (c->next) c->next->prev = c->prev;
        pthread_mutex_unlock(&g->mu);
        free(c);
        *socket_context = NULL;
    }
}

static srv_conn *conn_of(struct MHD_Connection *conn) {
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

void srv_guard_received(srv_guard *g, struct MHD_Connection *conn) {
    srv_conn *c = conn_of(conn);
    if (!c) return;
    pthread_mutex_lock(&g->mu);
    c->receiving = 0;
    pthread_mutex_unlock(&g->mu);
}

void srv_guard_completed(srv_guard *g, struct MHD_Connection *conn) {
    srv_conn *c = conn_of(conn);
    if (!c) return;
    pthread_mutex_lock(&g->mu);
    c->receiving = 1; /* a kept-alive connection has a new deadline for its next request */
    c->t_start = now_s();
    pthread_mutex_unlock(&g->mu);
}

unsigned long srv_guard_cut_count(srv_guard *g) {
    pthread_mutex_lock(&g->mu);
    unsigned long n = g->n_cut;
    pthread_mutex_unlock(&g->mu);
    return n;
}

/* ---- cross-site requests ---- */

const char *srv_cross_site_reason(const char *host, const char *origin, const char *fetch_site) {
    if (fetch_site && strcasecmp(fetch_site, "same-origin") != 0 && strcasecmp(fetch_site, "none") != 0)
        return "Sec-Fetch-Site says the request comes from another site";
    if (!origin) return NULL;
    if (!host || strncasecmp(origin, "http://", 7) != 0 || strcasecmp(origin + 7, host) != 0)
        return "its Origin is not this server's";
    return NULL;
}
