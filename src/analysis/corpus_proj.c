/* Two-dimensional maps of query/key vectors: AttentionViz's normalization and principal components (the
 * covariance matrix's eigenvectors by cyclic Jacobi rotations, in double precision). */
#include "corpus.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void av_qk_normalize(double *x, const int *is_key, int n, int d) {
    double *mq = calloc((size_t)d, sizeof *mq), *mk = calloc((size_t)d, sizeof *mk); /* (d) side means */
    if (!mq || !mk) goto done;
    int nq = 0, nk = 0;
    for (int i = 0; i < n; i++) {
        double *m = is_key[i] ? mk : mq;
        for (int c = 0; c < d; c++)
            m[c] += x[(size_t)i * d + c];
        if (is_key[i])
            nk++;
        else
            nq++;
    }
    if (!nq || !nk) goto done; /* one side only: nothing to align */
    for (int c = 0; c < d; c++) {
        mq[c] /= nq;
        mk[c] /= nk;
    }
    double norm[2] = {0, 0};
    for (int i = 0; i < n; i++) { /* translate the keys onto the queries' mean */
        double *v = x + (size_t)i * d, s = 0;
        for (int c = 0; c < d; c++) {
            if (is_key[i]) v[c] += mq[c] - mk[c];
            s += v[c] * v[c];
        }
        norm[is_key[i]] += sqrt(s);
    }
    double cq = norm[0] / nq, ck = norm[1] / nk;
    if (!(cq > 0) || !(ck > 0)) goto done;
    double c2 = sqrt(ck / cq); /* q * c2, k / c2: equal mean norms, q.k unchanged */
    for (int i = 0; i < n; i++)
        for (int c = 0; c < d; c++)
            x[(size_t)i * d + c] *= is_key[i] ? 1 / c2 : c2;
done:
    free(mq);
    free(mk);
}

/* One Jacobi rotation zeroing a[p][q] of the symmetric (d, d) matrix a; v accumulates the eigenvectors. */
static void jacobi_rotate(double *a, double *v, int d, int p, int q) {
    double apq = a[p * d + q];
    if (apq == 0) return;
    double theta = (a[q * d + q] - a[p * d + p]) / (2 * apq);
    double t = (theta >= 0 ? 1 : -1) / (fabs(theta) + sqrt(theta * theta + 1));
    double c = 1 / sqrt(t * t + 1), s = t * c;
    for (int k = 0; k < d; k++) { /* columns p and q */
        double akp = a[k * d + p], akq = a[k * d + q];
        a[k * d + p] = c * akp - s * akq;
        a[k * d + q] = s * akp + c * akq;
    }
    for (int k = 0; k < d; k++) { /* rows p and q */
        double apk = a[p * d + k], aqk = a[q * d + k];
        a[p * d + k] = c * apk - s * aqk;
        a[q * d + k] = s * apk + c * aqk;
    }
    for (int k = 0; k < d; k++) {
        double vkp = v[k * d + p], vkq = v[k * d + q];
        v[k * d + p] = c * vkp - s * vkq;
        v[k * d + q] = s * vkp + c * vkq;
    }
}

/* Eigen-decomposition of the symmetric a (d, d), destroyed: eigenvalues on its diagonal, vectors in v's
 * columns. Sweeps until the off-diagonal mass is negligible. */
static void jacobi_eigen(double *a, double *v, int d) {
    for (int i = 0; i < d * d; i++)
        v[i] = i / d == i % d;
    for (int sweep = 0; sweep < 100; sweep++) {
        double off = 0, diag = 0;
        for (int p = 0; p < d; p++)
            for (int q = 0; q < d; q++) {
                double x2 = a[p * d + q] * a[p * d + q];
                if (p == q)
                    diag += x2;
                else
                    off += x2;
            }
        if (off <= 1e-30 * diag || off == 0) return;
        for (int p = 0; p < d - 1; p++)
            for (int q = p + 1; q < d; q++)
                jacobi_rotate(a, v, d, p, q);
    }
}

int av_pca2(const double *x, int n, int d, double *out, double var[2], av_err *err) {
    if (n < 2 || d < 1) return av_errf(err, "PCA needs at least 2 points (got %d) of dimension >= 1", n);
    double *mean = calloc((size_t)d, sizeof *mean),
           *cov = calloc((size_t)d * d, sizeof *cov); /* (d), (d, d) */
    double *vec = malloc(sizeof *vec * (size_t)d * d);
    if (!mean || !cov || !vec) {
        free(mean), free(cov), free(vec);
        return av_errf(err, "out of memory for PCA of dimension %d", d);
    }
    for (int i = 0; i < n; i++)
        for (int c = 0; c < d; c++)
            mean[c] += x[(size_t)i * d + c] / n;
    for (int i = 0; i < n; i++) {
        const double *r = x + (size_t)i * d;
        for (int p = 0; p < d; p++)
            for (int q = p; q < d; q++)
                cov[p * d + q] += (r[p] - mean[p]) * (r[q] - mean[q]) / (n - 1);
    }
    for (int p = 0; p < d; p++)
        for (int q = 0; q < p; q++)
            cov[p * d + q] = cov[q * d + p];
    jacobi_eigen(cov, vec, d);
    int best[2] = {-1, -1};
    double total = 0;
    for (int c = 0; c < d; c++) {
        double ev = cov[c * d + c];
        total += ev > 0 ? ev : 0;
        if (best[0] < 0 || ev > cov[best[0] * d + best[0]]) {
            best[1] = best[0];
            best[0] = c;
        } else if (best[1] < 0 || ev > cov[best[1] * d + best[1]]) {
            best[1] = c;
        }
    }
    for (int k = 0; k < 2; k++) {
        int c = best[k] >= 0 ? best[k] : best[0];
        double big = 0, sign = 1;
        for (int p = 0; p < d; p++) /* sign: the largest-magnitude entry positive */
            if (fabs(vec[p * d + c]) > big) {
                big = fabs(vec[p * d + c]);
                sign = vec[p * d + c] < 0 ? -1 : 1;
            }
        double ev = best[k] >= 0 ? cov[c * d + c] : 0;
        var[k] = total > 0 && ev > 0 ? ev / total : 0;
        for (int i = 0; i < n; i++) {
            double s = 0;
            for (int p = 0; p < d; p++)
                s += (x[(size_t)i * d + p] - mean[p]) * vec[p * d + c];
            out[(size_t)i * 2 + k] = best[k] >= 0 ? sign * s : 0;
        }
    }
    free(mean);
    free(cov);
    free(vec);
    return 0;
}
