/* Attention flow (Abnar & Zuidema 2020): the layers form a graph with one node per (layer, token); an edge
 * from token i after layer l+1 to token j after layer l has capacity A'_l[i][j] (the residual-mixed attention
 * of rollout). The flow from output token i to input token j is the maximum flow between those two nodes.
 * One max-flow problem per (i, j) pair makes this expensive (about n_layers * T^4 edge visits), hence the
 * size guard. Max-flow: Dinic's algorithm on doubles; output rows are split across threads. */
#include "analysis.h"
#include "core/core.h"
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define AV_FLOW_EPS 1e-12

av_flow_params av_flow_default_params(void) {
    return (av_flow_params){AV_REDUCE_MEAN, 0.5f, 1, AV_FLOW_DEFAULT_MAX_WORK, 0, NULL, NULL};
}

double av_flow_work(int n_layers, int T) {
    double t = (double)T;
    return (double)n_layers * t * t * t * t;
}

typedef struct flow_edge {
    int to;     /* node */
    int rev;    /* index of the reverse edge in to's list (absolute index into edges) */
    double cap; /* capacity of this run (reset from cap0 per problem) */
} flow_edge;

typedef struct flow_graph {
    int n_nodes;      /* (n_layers + 1) * T; node l*T + i is token i after layer l (layer 0 = inputs) */
    int *first;       /* (n_nodes + 1) CSR offsets into edges */
    flow_edge *edges; /* (n_edges) forward and reverse edges */
    double *cap0;     /* (n_edges) original capacities */
    int n_edges;
} flow_graph;

/* Per-thread scratch for Dinic. */
typedef struct flow_work {
    flow_edge *edges; /* (n_edges) this thread's copy */
    int *level;       /* (n_nodes) */
    int *iter;        /* (n_nodes) */
    int *queue;       /* (n_nodes) */
} flow_work;

static int bfs(const flow_graph *g, flow_work *w, int s, int t) {
    for (int i = 0; i < g->n_nodes; i++)
        w->level[i] = -1;
    int head = 0, tail = 0;
    w->level[s] = 0;
    w->queue[tail++] = s;
    while (head < tail) {
        int u = w->queue[head++];
        for (int e = g->first[u]; e < g->first[u + 1]; e++) {
            const flow_edge *E = &w->edges[e];
            if (E->cap > AV_FLOW_EPS && w->level[E->to] < 0) {
                w->level[E->to] = w->level[u] + 1;
                w->queue[tail++] = E->to;
            }
        }
    }
    return w->level[t] >= 0;
}

/* Blocking-flow DFS; recursion depth is bounded by the BFS level of t (< n_nodes). */
static double dfs(const flow_graph *g, flow_work *w, int u, int t, double f) {
    if (u == t) return f;
    for (int *it = &w->iter[u]; *it < g->first[u + 1]; (*it)++) {
        flow_edge *E = &w->edges[*it];
        if (E->cap <= AV_FLOW_EPS || w->level[E->to] != w->level[u] + 1) continue;
        double d = dfs(g, w, E->to, t, f < E->cap ? f : E->cap);
        if (d > AV_FLOW_EPS) {
            E->cap -= d;
            w->edges[E->rev].cap += d;
            return d;
        }
    }
    return 0;
}

static double max_flow(const flow_graph *g, flow_work *w, int s, int t) {
    for (int e = 0; e < g->n_edges; e++)
        w->edges[e].cap = g->cap0[e];
    double total = 0;
    while (bfs(g, w, s, t)) {
        memcpy(w->iter, g->first, sizeof(int) * (size_t)g->n_nodes);
        double f;
        while ((f = dfs(g, w, s, t, INFINITY)) > AV_FLOW_EPS)
            total += f;
    }
    return total;
}

/* Builds the layered graph from the residual-mixed layers a[l] (T, T). */
static int build_graph(float *const *a, int n_layers, int T, flow_graph *g, av_err *err) {
    memset(g, 0, sizeof *g);
    g->n_nodes = (n_layers + 1) * T;
    int *deg = calloc((size_t)g->n_nodes + 1, sizeof *deg); /* (n_nodes + 1) */
    if (!deg) return av_errf(err, "out of memory");
    size_t n_edges = 0;
    for (int l = 0; l < n_layers; l++)
        for (int i = 0; i < T; i++)
            for (int j = 0; j < T; j++)
                if (a[l][(size_t)i * (size_t)T + (size_t)j] > 0) {
                    deg[(l + 1) * T + i]++; /* forward edge (l+1, i) -> (l, j) */
                    deg[l * T + j]++;       /* its reverse */
                    n_edges += 2;
                }
    if (n_edges > (size_t)INT32_MAX / 2) {
        free(deg);
        return av_errf(err, "attention flow graph is too large (%zu edges)", n_edges);
    }
    g->n_edges = (int)n_edges;
    g->first = malloc(sizeof(int) * ((size_t)g->n_nodes + 1));
    g->edges = malloc(sizeof(flow_edge) * (n_edges ? n_edges : 1));
    g->cap0 = malloc(sizeof(double) * (n_edges ? n_edges : 1));
    int *fill = malloc(sizeof(int) * (size_t)g->n_nodes); /* (n_nodes) next free slot */
    if (!g->first || !g->edges || !g->cap0 || !fill) {
        free(deg);
        free(fill);
        return av_errf(err, "out of memory for the attention flow graph");
    }
    g->first[0] = 0;
    for (int u = 0; u < g->n_nodes; u++)
        g->first[u + 1] = g->first[u] + deg[u];
    memcpy(fill, g->first, sizeof(int) * (size_t)g->n_nodes);
    for (int l = 0; l < n_layers; l++)
        for (int i = 0; i < T; i++)
            for (int j = 0; j < T; j++) {
                float c = a[l][(size_t)i * (size_t)T + (size_t)j];
                if (!(c > 0)) continue;
                int u = (l + 1) * T + i, v = l * T + j, eu = fill[u]++, ev = fill[v]++;
                g->edges[eu] = (flow_edge){v, ev, c};
                g->edges[ev] = (flow_edge){u, eu, 0};
                g->cap0[eu] = c;
                g->cap0[ev] = 0;
            }
    free(deg);
    free(fill);
    return 0;
}

static void free_graph(flow_graph *g) {
    free(g->first);
    free(g->edges);
    free(g->cap0);
}

typedef struct flow_job {
    const flow_graph *g;
    flow_work *work; /* (n_threads) */
    int n_layers, T;
    float *out;              /* (T, T) */
    const av_flow_params *p; /* progress, or NULL */
} flow_job;

static void flow_rows(void *ctx, int tid, int64_t i0, int64_t i1) {
    const flow_job *j = ctx;
    flow_work *w = &j->work[tid];
    for (int i = (int)i0; i < (int)i1; i++) {
        for (int k = 0; k < j->T; k++)
            j->out[(size_t)i * (size_t)j->T + (size_t)k] =
                (float)max_flow(j->g, w, j->n_layers * j->T + i, k);
        if (tid == 0 && j->p && j->p->progress) /* the first thread's share stands for all */
            j->p->progress(j->p->progress_ctx, (int)(i + 1 - i0), (int)(i1 - i0));
    }
}

static int flow_run(float *const *a, int n_layers, int T, int n_threads, const av_flow_params *p, float *out,
                    av_err *err) {
    flow_graph g;
    if (build_graph(a, n_layers, T, &g, err)) {
        free_graph(&g);
        return -1;
    }
    if (n_threads <= 0) n_threads = av_default_threads();
    if (n_threads > T) n_threads = T;
    flow_work *work = calloc((size_t)n_threads, sizeof *work);
    int rc = work ? 0 : av_errf(err, "out of memory");
    for (int k = 0; !rc && k < n_threads; k++) {
        work[k].edges = malloc(sizeof(flow_edge) * (size_t)(g.n_edges ? g.n_edges : 1));
        work[k].level = malloc(sizeof(int) * (size_t)g.n_nodes);
        work[k].iter = malloc(sizeof(int) * (size_t)g.n_nodes);
        work[k].queue = malloc(sizeof(int) * (size_t)g.n_nodes);
        if (!work[k].edges || !work[k].level || !work[k].iter || !work[k].queue)
            rc = av_errf(err, "out of memory");
        else
            memcpy(work[k].edges, g.edges, sizeof(flow_edge) * (size_t)g.n_edges);
    }
    if (!rc) {
        flow_job job = {&g, work, n_layers, T, out, p};
        av_parallel_for(n_threads, T, flow_rows, &job);
    }
    for (int k = 0; work && k < n_threads; k++) {
        free(work[k].edges);
        free(work[k].level);
        free(work[k].iter);
        free(work[k].queue);
    }
    free(work);
    free_graph(&g);
    return rc;
}

static int guard(int n_layers, int T, double max_work, av_err *err) {
    double work = av_flow_work(n_layers, T);
    if (max_work > 0 && work > max_work) {
        int fit = (int)floor(pow(max_work / (double)n_layers, 0.25));
        return av_errf(
            err,
            "attention flow on %d tokens x %d layers is too expensive (~%.1e edge visits, limit %.1e): "
            "use an input of at most %d tokens, use rollout instead, or raise the limit "
            "(--flow-limit)",
            T, n_layers, work, max_work, fit);
    }
    return 0;
}

int av_flow_mats(const float *const *layers, int n_layers, int T, float residual, double max_work, float *out,
                 av_err *err) {
    if (n_layers <= 0 || T <= 0) return av_errf(err, "attention flow needs at least one layer and one token");
    if (!(residual >= 0 && residual <= 1)) return av_errf(err, "flow residual weight must be in [0, 1]");
    if (guard(n_layers, T, max_work, err)) return -1;
    float **a = calloc((size_t)n_layers, sizeof *a); /* (n_layers) pointers to (T, T) A'_l */
    int rc = a ? 0 : av_errf(err, "out of memory");
    for (int l = 0; !rc && l < n_layers; l++) {
        if (!(a[l] = av_an_alloc((size_t)T, (size_t)T, err)))
            rc = -1;
        else
            av_an_residual(layers[l], T, residual, a[l]);
    }
    if (!rc) rc = flow_run(a, n_layers, T, 0, NULL, out, err);
    av_an_free_layers(a, n_layers);
    return rc;
}

int av_flow_trace(const av_trace *t, av_attn_kind kind, const av_flow_params *p, float *out, av_err *err) {
    av_flow_params defaults = av_flow_default_params();
    if (!p) p = &defaults;
    if (kind == AV_ATTN_CROSS) return av_errf(err, "attention flow is defined for self-attention kinds only");
    int L = av_trace_n_layers(t, kind);
    av_attn_view v;
    if (L == 0 || av_trace_attn(t, kind, 0, &v, err))
        return L ? -1 : av_errf(err, "the trace has no '%s' attention", av_attn_kind_name(kind));
    if (v.n_query != v.n_key) return av_errf(err, "attention flow needs square attention");
    if (guard(L, v.n_query, p->max_work, err)) return -1; /* before fusing anything */
    float **mats;
    int nq, nk;
    if (av_an_fused_layers(t, kind, p->fusion, &mats, &L, &nq, &nk, err)) return -1;
    for (int l = 0; l < L; l++)
        av_an_residual(mats[l], nq, p->residual, mats[l]);
    int rc = flow_run(mats, L, nq, p->n_threads, p, out, err);
    av_an_free_layers(mats, L);
    if (!rc && p->normalize) av_an_rownorm(out, nq, nq);
    return rc;
}
