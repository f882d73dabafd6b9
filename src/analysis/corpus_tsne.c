/* t-SNE (van der Maaten and Hinton 2008) for query/key maps: exact gradients, or Barnes-Hut (van der Maaten
 * 2014: sparse affinities over the 3 * perplexity nearest neighbours, repulsion through a quadtree).
 * Optimization as in scikit-learn: PCA initialization scaled to standard deviation 1e-4, early exaggeration
 * 12 for 250 iterations with momentum 0.5, then momentum 0.8, learning rate max(n / 48, 50), per-coordinate
 * gains (+0.2 / x0.8, at least 0.01). Rows are independent and sums run in row order, so the result does not
 * depend on the number of threads. */
#include "corpus.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define EXAGGERATION 12.0
#define EXAG_ITERS 250
#define QT_MAX_DEPTH 48

av_tsne_params av_tsne_default_params(void) { return (av_tsne_params){30, 1000, 0.5, 1, 0}; }

/* ---- input affinities ---- */

/* p[0..m) = P(j|i) from squared distances d2 (m), with the Gaussian's precision chosen by bisection so that
 * the entropy is log(perplexity). */
static void calibrate_row(const double *d2, int m, double perplexity, double *p) {
    double target = log(perplexity), beta = 1, lo = 0, hi = INFINITY, dmin = INFINITY;
    for (int j = 0; j < m; j++)
        dmin = d2[j] < dmin ? d2[j] : dmin;
    for (int it = 0; it < 200; it++) {
        double sum = 0, dot = 0;
        for (int j = 0; j < m; j++) {
            p[j] = exp(-(d2[j] - dmin) * beta);
            sum += p[j];
            dot += (d2[j] - dmin) * p[j];
        }
        double H = log(sum) + beta * dot / sum;
        if (fabs(H - target) < 1e-5) break;
        if (H > target) {
            lo = beta;
            beta = isinf(hi) ? beta * 2 : (beta + hi) / 2;
        } else {
            hi = beta;
            beta = (beta + lo) / 2;
        }
    }
    double sum = 0;
    for (int j = 0; j < m; j++)
        sum += p[j];
    for (int j = 0; j < m; j++)
        p[j] /= sum;
}

static double sq_dist(const double *a, const double *b, int d) {
    double s = 0;
    for (int c = 0; c < d; c++)
        s += (a[c] - b[c]) * (a[c] - b[c]);
    return s;
}

/* Symmetric sparse affinities, rows in CSR form. */
typedef struct sparse {
    int *row; /* (n + 1) */
    int *col; /* (nnz) */
    double *val;
} sparse;

typedef struct triplet {
    int i, j;
    double v;
} triplet;

static int triplet_cmp(const void *a, const void *b) {
    const triplet *x = a, *y = b;
    if (x->i != y->i) return x->i - y->i;
    return x->j - y->j;
}

typedef struct nb {
    double d2;
    int j;
} nb;

static int nb_cmp(const void *a, const void *b) {
    const nb *x = a, *y = b;
    if (x->d2 != y->d2) return x->d2 < y->d2 ? -1 : 1;
    return x->j - y->j;
}

/* k nearest neighbours of every point (brute force), P(j|i) over them, then (P + P^T) / 2n. */
static int sparse_affinities(const double *x, int n, int d, double perplexity, sparse *P) {
    int k = (int)(3 * perplexity);
    k = k < n - 1 ? k : n - 1;
    nb *cand = malloc(sizeof *cand * (size_t)n);
    double *d2 = malloc(sizeof *d2 * (size_t)k), *p = malloc(sizeof *p * (size_t)k);
    triplet *t = malloc(sizeof *t * (size_t)n * (size_t)k * 2);
    P->row = calloc((size_t)n + 1, sizeof *P->row);
    P->col = malloc(sizeof *P->col * (size_t)n * (size_t)k * 2);
    P->val = malloc(sizeof *P->val * (size_t)n * (size_t)k * 2);
    int rc = !cand || !d2 || !p || !t || !P->row || !P->col || !P->val ? -1 : 0;
    size_t nt = 0;
    for (int i = 0; !rc && i < n; i++) {
        int m = 0;
        for (int j = 0; j < n; j++)
            if (j != i) cand[m++] = (nb){sq_dist(x + (size_t)i * d, x + (size_t)j * d, d), j};
        qsort(cand, (size_t)m, sizeof *cand, nb_cmp);
        for (int q = 0; q < k; q++)
            d2[q] = cand[q].d2;
        calibrate_row(d2, k, perplexity, p);
        for (int q = 0; q < k; q++) {
            t[nt++] = (triplet){i, cand[q].j, p[q] / (2.0 * n)};
            t[nt++] = (triplet){cand[q].j, i, p[q] / (2.0 * n)};
        }
    }
    if (!rc) qsort(t, nt, sizeof *t, triplet_cmp);
    size_t nnz = 0;
    for (size_t a = 0; !rc && a < nt; a++) {
        if (a > 0 && t[a - 1].i == t[a].i && t[a - 1].j == t[a].j) {
            P->val[nnz - 1] += t[a].v; /* both directions of a mutual pair */
            continue;
        }
        P->col[nnz] = t[a].j;
        P->val[nnz] = t[a].v;
        nnz++;
        P->row[t[a].i + 1] = (int)nnz;
    }
    for (int i = 1; !rc && i <= n; i++)
        if (P->row[i] < P->row[i - 1]) P->row[i] = P->row[i - 1];
    free(cand);
    free(d2);
    free(p);
    free(t);
    return rc;
}

/* Dense symmetric affinities (n, n) for exact t-SNE. */
static int dense_affinities(const double *x, int n, int d, double perplexity, double *P) {
    double *d2 = malloc(sizeof *d2 * (size_t)n), *p = malloc(sizeof *p * (size_t)n);
    if (!d2 || !p) {
        free(d2);
        free(p);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        int m = 0;
        for (int j = 0; j < n; j++)
            if (j != i) d2[m++] = sq_dist(x + (size_t)i * d, x + (size_t)j * d, d);
        calibrate_row(d2, m, perplexity, p);
        m = 0;
        for (int j = 0; j < n; j++)
            P[(size_t)i * n + j] = j == i ? 0 : p[m++];
    }
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++) {
            double v = (P[(size_t)i * n + j] + P[(size_t)j * n + i]) / (2.0 * n);
            P[(size_t)i * n + j] = P[(size_t)j * n + i] = v > 1e-12 ? v : 1e-12;
        }
    free(d2);
    free(p);
    return 0;
}

/* ---- the quadtree of the embedding ---- */

typedef struct qnode {
    double cx, cy, hw; /* the square's center and half width */
    double mx, my;     /* center of mass (sum while building) */
    int count, point;  /* points below; the first point stored here (leaves), -1 */
    int child;         /* index of the first of 4 children, -1 for a leaf */
} qnode;

typedef struct qtree {
    qnode *nodes;
    int n, cap;
} qtree;

static int qt_new(qtree *t, double cx, double cy, double hw) {
    if (t->n == t->cap) {
        int cap = t->cap ? 2 * t->cap : 1024;
        qnode *g = realloc(t->nodes, sizeof *g * (size_t)cap);
        if (!g) return -1;
        t->nodes = g;
        t->cap = cap;
    }
    t->nodes[t->n] = (qnode){cx, cy, hw, 0, 0, 0, -1, -1};
    return t->n++;
}

static int qt_split(qtree *t, int node) {
    qnode c = t->nodes[node];
    double h = c.hw / 2;
    int first = -1;
    for (int q = 0; q < 4; q++) {
        int id = qt_new(t, c.cx + (q & 1 ? h : -h), c.cy + (q & 2 ? h : -h), h);
        if (id < 0) return -1;
        if (q == 0) first = id;
    }
    t->nodes[node].child = first;
    return 0;
}

static int qt_quadrant(const qnode *nd, double x, double y) { return (x >= nd->cx) | ((y >= nd->cy) << 1); }

static int qt_insert(qtree *t, int node, const double *y, int i, int depth) {
    for (;;) {
        qnode *nd = &t->nodes[node];
        nd->mx += y[2 * i];
        nd->my += y[2 * i + 1];
        if (nd->count++ == 0) {
            nd->point = i;
            return 0;
        }
        if (nd->child < 0) {
            if (depth >= QT_MAX_DEPTH) return 0; /* (near-)duplicates share the leaf */
            if (qt_split(t, node)) return -1;
            nd = &t->nodes[node];
            int old = nd->point, q = qt_quadrant(nd, y[2 * old], y[2 * old + 1]);
            qnode *cn = &t->nodes[nd->child + q];
            cn->mx = y[2 * old];
            cn->my = y[2 * old + 1];
            cn->count = 1;
            cn->point = old;
        }
        nd = &t->nodes[node];
        node = nd->child + qt_quadrant(nd, y[2 * i], y[2 * i + 1]);
        depth++;
    }
}

static int qt_build(qtree *t, const double *y, int n) {
    double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
    for (int i = 0; i < n; i++) {
        x0 = fmin(x0, y[2 * i]), x1 = fmax(x1, y[2 * i]);
        y0 = fmin(y0, y[2 * i + 1]), y1 = fmax(y1, y[2 * i + 1]);
    }
    double hw = fmax(x1 - x0, y1 - y0) / 2 * 1.0001 + 1e-12;
    t->n = 0;
    if (qt_new(t, (x0 + x1) / 2, (y0 + y1) / 2, hw) < 0) return -1;
    for (int i = 0; i < n; i++)
        if (qt_insert(t, 0, y, i, 0)) return -1;
    for (int k = 0; k < t->n; k++)
        if (t->nodes[k].count) {
            t->nodes[k].mx /= t->nodes[k].count;
            t->nodes[k].my /= t->nodes[k].count;
        }
    return 0;
}

/* Repulsion on point i: rep += sum_j w_ij^2 (y_i - y_j), *z += sum_j w_ij, w = 1 / (1 + |y_i - y_j|^2). */
static void qt_repulse(const qtree *t, int node, const double *y, int i, double theta, double rep[2],
                       double *z) {
    const qnode *nd = &t->nodes[node];
    if (nd->count == 0 || (nd->child < 0 && nd->count == 1 && nd->point == i)) return;
    double dx = y[2 * i] - nd->mx, dy = y[2 * i + 1] - nd->my, d2 = dx * dx + dy * dy;
    if (nd->child < 0 || 4 * nd->hw * nd->hw < theta * theta * d2) {
        double w = 1 / (1 + d2), cnt = nd->count;
        if (nd->child < 0 && d2 == 0) cnt -= 1; /* a duplicate leaf holding i itself */
        *z += cnt * w;
        rep[0] += cnt * w * w * dx;
        rep[1] += cnt * w * w * dy;
        return;
    }
    for (int q = 0; q < 4; q++)
        qt_repulse(t, nd->child + q, y, i, theta, rep, z);
}

/* ---- gradients ---- */

typedef struct grad_job {
    int n;
    const double *y;
    double exag, theta;
    const double *Pd; /* (n, n) exact */
    const sparse *Ps; /* Barnes-Hut */
    const qtree *tree;
    double *attr, *rep, *z; /* (n, 2), (n, 2), (n) */
} grad_job;

static void grad_rows(void *ctx, int tid, int64_t start, int64_t end) {
    (void)tid;
    grad_job *j = ctx;
    const double *y = j->y;
    for (int64_t i = start; i < end; i++) {
        double a[2] = {0, 0}, r[2] = {0, 0}, z = 0;
        if (j->Pd) {
            for (int k = 0; k < j->n; k++) {
                if (k == i) continue;
                double dx = y[2 * i] - y[2 * k], dy = y[2 * i + 1] - y[2 * k + 1],
                       w = 1 / (1 + dx * dx + dy * dy);
                double p = j->Pd[(size_t)i * j->n + k];
                a[0] += p * w * dx, a[1] += p * w * dy;
                r[0] += w * w * dx, r[1] += w * w * dy;
                z += w;
            }
        } else {
            for (int e = j->Ps->row[i]; e < j->Ps->row[i + 1]; e++) {
                int k = j->Ps->col[e];
                double dx = y[2 * i] - y[2 * k], dy = y[2 * i + 1] - y[2 * k + 1],
                       w = 1 / (1 + dx * dx + dy * dy);
                a[0] += j->Ps->val[e] * w * dx, a[1] += j->Ps->val[e] * w * dy;
            }
            qt_repulse(j->tree, 0, y, (int)i, j->theta, r, &z);
        }
        j->attr[2 * i] = a[0], j->attr[2 * i + 1] = a[1];
        j->rep[2 * i] = r[0], j->rep[2 * i + 1] = r[1];
        j->z[i] = z;
    }
}

/* g (n, 2) = dKL/dy with the exaggeration applied to P. */
static int gradient(grad_job *j, qtree *tree, int n_threads, double *g) {
    if (!j->Pd && qt_build(tree, j->y, j->n)) return -1;
    j->tree = tree;
    av_parallel_for(n_threads, j->n, grad_rows, j);
    double Z = 0;
    for (int i = 0; i < j->n; i++)
        Z += j->z[i];
    for (int i = 0; i < 2 * j->n; i++)
        g[i] = 4 * (j->exag * j->attr[i] - j->rep[i] / Z);
    return 0;
}

/* ---- optimization ---- */

static void init_from_pca(const double *x, int n, int d, double *y) {
    double var[2];
    if (av_pca2(x, n, d, y, var, NULL)) {
        memset(y, 0, sizeof *y * 2 * (size_t)n);
        return;
    }
    double m = 0, s = 0;
    for (int i = 0; i < n; i++)
        m += y[2 * i] / n;
    for (int i = 0; i < n; i++)
        s += (y[2 * i] - m) * (y[2 * i] - m) / n;
    double scale = s > 0 ? 1e-4 / sqrt(s) : 1;
    for (int i = 0; i < 2 * n; i++)
        y[i] *= scale;
}

/* Breaks exact ties of the start (duplicate vectors) with a tiny seeded jitter. */
static void jitter(double *y, int n, uint64_t seed) {
    uint64_t s = seed;
    for (int i = 0; i < 2 * n; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        y[i] += ((double)(s >> 11) / 9007199254740992.0 - 0.5) * 1e-8;
    }
}

static int descend(grad_job *j, int n_iter, int n_threads, double *y) {
    int n = j->n, rc = -1;
    double lr = fmax(n / EXAGGERATION / 4, 50);
    double *g = malloc(sizeof *g * 2 * (size_t)n), *upd = calloc(2 * (size_t)n, sizeof *upd);
    double *gains = malloc(sizeof *gains * 2 * (size_t)n);
    qtree tree = {0};
    if (!g || !upd || !gains) goto done;
    for (int i = 0; i < 2 * n; i++)
        gains[i] = 1;
    for (int it = 0; it < n_iter; it++) {
        j->exag = it < EXAG_ITERS ? EXAGGERATION : 1;
        double mom = it < EXAG_ITERS ? 0.5 : 0.8;
        if (gradient(j, &tree, n_threads, g)) goto done;
        for (int i = 0; i < 2 * n; i++) {
            gains[i] = (g[i] > 0) != (upd[i] > 0) ? gains[i] + 0.2 : gains[i] * 0.8;
            if (gains[i] < 0.01) gains[i] = 0.01;
            upd[i] = mom * upd[i] - lr * gains[i] * g[i];
            y[i] += upd[i];
        }
    }
    double mx = 0, my = 0;
    for (int i = 0; i < n; i++)
        mx += y[2 * i] / n, my += y[2 * i + 1] / n;
    for (int i = 0; i < n; i++)
        y[2 * i] -= mx, y[2 * i + 1] -= my;
    rc = 0;
done:
    free(g);
    free(upd);
    free(gains);
    free(tree.nodes);
    return rc;
}

int av_tsne2(const double *x, int n, int d, const av_tsne_params *p, double *out, av_err *err) {
    av_tsne_params defaults = av_tsne_default_params();
    if (!p) p = &defaults;
    if (n < 4) return av_errf(err, "t-SNE needs at least 4 points (got %d)", n);
    if (!(p->perplexity >= 1) || p->perplexity * 3 > n - 1)
        return av_errf(err, "t-SNE perplexity %g needs more than 3 x %g points (got %d): lower --perplexity",
                       p->perplexity, p->perplexity, n);
    int exact = !(p->theta > 0);
    double *Pd = NULL, *attr = malloc(sizeof *attr * 2 * (size_t)n),
           *rep = malloc(sizeof *rep * 2 * (size_t)n);
    double *z = malloc(sizeof *z * (size_t)n);
    sparse Ps = {0};
    int rc = -1;
    if (!attr || !rep || !z || (exact && !(Pd = malloc(sizeof *Pd * (size_t)n * (size_t)n)))) {
        av_errf(err, "out of memory for t-SNE of %d points%s", n,
                exact ? " (exact: try --tsne-theta 0.5)" : "");
        goto done;
    }
    if (exact ? dense_affinities(x, n, d, p->perplexity, Pd)
              : sparse_affinities(x, n, d, p->perplexity, &Ps)) {
        av_errf(err, "out of memory for t-SNE affinities of %d points", n);
        goto done;
    }
    init_from_pca(x, n, d, out);
    jitter(out, n, p->seed);
    grad_job j = {n, out, 1, p->theta, Pd, exact ? NULL : &Ps, NULL, attr, rep, z};
    if (descend(&j, p->n_iter, p->n_threads, out)) {
        av_errf(err, "out of memory during t-SNE");
        goto done;
    }
    rc = 0;
done:
    free(Pd);
    free(attr);
    free(rep);
    free(z);
    free(Ps.row);
    free(Ps.col);
    free(Ps.val);
    return rc;
}
