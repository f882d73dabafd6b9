/* Pooled overviews of attention matrices, accumulated while the forward pass computes the probabilities, so
 * that a long lazy trace can show a whole head without recomputing its T^2 scores (docs/TRACE_FORMAT.md,
 * "Overviews"). The cells are those of av_trace_attn_tile for the whole matrix. */
#include "kernels.h"

#include <math.h>
#include <stdint.h>

#if defined(__F16C__) && defined(__AVX__)
#include <immintrin.h>
#define AV_HAVE_F16C 1
#endif

/* The cell row of query q: the largest r with r * n_query / rows <= q. */
static int cell_of(int64_t q, int cells, int n) { return (int)(((q + 1) * cells - 1) / n); }

void av_attn_pool_rows(const av_attn_pool *p, int h, int q0, int nr, const float *probs, int ld, int n_keys) {
    int C = p->cols, lo[AV_ATTN_POOL_MAX_COLS + 1];
    if (C > AV_ATTN_POOL_MAX_COLS) return; /* the capture never asks for more */
    av_attn_pool_bounds(p, lo);
    size_t plane = (size_t)p->rows * (size_t)C;
    for (int i = 0; i < nr; i++) {
        const float *row = probs + (size_t)i * (size_t)ld;
        size_t cell = (size_t)h * plane + (size_t)cell_of(q0 + i, p->rows, p->n_query) * (size_t)C;
        float *mx = p->max + cell, *sm = p->sum + cell;
        for (int c = 0; c < C && lo[c] < n_keys; c++) {
            int end = lo[c + 1] < n_keys ? lo[c + 1] : n_keys;
            float m = mx[c], s = 0;
            for (int k = lo[c]; k < end; k++) {
                m = row[k] > m ? row[k] : m;
                s += row[k];
            }
            mx[c] = m;
            sm[c] += s;
        }
    }
}

int av_attn_pool_cells(const av_attn_pool *p, int n_keys) {
    return cell_of(n_keys - 1, p->cols, p->n_key) + 1;
}

void av_attn_pool_bounds(const av_attn_pool *p, int *lo) {
    for (int c = 0; c <= p->cols; c++)
        lo[c] = (int)((int64_t)c * p->n_key / p->cols);
}

/* The largest of x[0..n) and *mx into *mx; their sum into *sum in av_attn_pool_add_tile's order. NaN is
 * passed over by the largest (as av_max_value) and kept by the sum. */
static void add_max_sum(const float *x, int n, float *mx, float *sum) {
    int i = 0;
    float m = *mx, s = 0;
#ifdef AV_HAVE_F16C
    if (n >= 8) {
        __m256 vm = _mm256_set1_ps(m), vs = _mm256_setzero_ps();
        for (; i + 8 <= n; i += 8) {
            __m256 v = _mm256_loadu_ps(x + i);
            vm = _mm256_max_ps(v, vm); /* this operand order passes NaN over */
            vs = _mm256_add_ps(vs, v);
        }
        __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(vm), _mm256_extractf128_ps(vm, 1));
        __m128 m2 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        m = _mm_cvtss_f32(_mm_max_ss(m2, _mm_movehdup_ps(m2)));
        __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(vs), _mm256_extractf128_ps(vs, 1)); /* lanes k, k + 4 */
        __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));                                /* k, k + 2 */
        s = _mm_cvtss_f32(_mm_add_ss(s2, _mm_movehdup_ps(s2)));                           /* 0, 1 */
    }
#else
    if (n >= 8) {
        float lane[8] = {0};
        for (; i + 8 <= n; i += 8)
            for (int k = 0; k < 8; k++) {
                m = x[i + k] > m ? x[i + k] : m;
                lane[k] += x[i + k];
            }
        s = ((lane[0] + lane[4]) + (lane[2] + lane[6])) + ((lane[1] + lane[5]) + (lane[3] + lane[7]));
    }
#endif
    for (; i < n; i++) {
        m = x[i] > m ? x[i] : m;
        s += x[i];
    }
    *mx = m;
    *sum += s;
}

void av_attn_pool_add_tile(const av_attn_pool *p, const int *lo, const av_attn_pool_row *row, const float *x,
                           int k0, int n, float m) {
    for (int c = cell_of(k0, p->cols, p->n_key); c < p->cols && lo[c] < k0 + n; c++) {
        if (row->ref[c] != m) { /* the cell's earlier keys were taken against a smaller maximum */
            if (row->sum[c] != 0.0f) {
                float f = expf(row->ref[c] - m);
                row->sum[c] *= f;
                row->max[c] *= f;
            }
            row->ref[c] = m;
        }
        int a0 = lo[c] > k0 ? lo[c] : k0, a1 = lo[c + 1] < k0 + n ? lo[c + 1] : k0 + n;
        add_max_sum(x + (a0 - k0), a1 - a0, &row->max[c], &row->sum[c]);
    }
}

void av_attn_pool_add_row(const av_attn_pool *p, int h, int q, const av_attn_pool_row *row, int n_cells,
                          float m, float inv) {
    size_t cell = ((size_t)h * (size_t)p->rows + (size_t)cell_of(q, p->rows, p->n_query)) * (size_t)p->cols;
    float *mx = p->max + cell, *sm = p->sum + cell;
    av_exp_shift_sum(row->ref, n_cells, m); /* what brings each cell to the row's maximum */
    for (int c = 0; c < n_cells; c++) {
        float f = row->ref[c] * inv, x = row->max[c] * f;
        mx[c] = x > mx[c] ? x : mx[c];
        sm[c] += row->sum[c] * f;
    }
}
