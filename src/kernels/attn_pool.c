/* Pooled overviews of attention matrices, accumulated while the forward pass computes the probabilities, so
 * that a long lazy trace can show a whole head without recomputing its T^2 scores (docs/TRACE_FORMAT.md,
 * "Overviews"). The cells are those of av_trace_attn_tile for the whole matrix. */
#include "kernels.h"

/* The cell row of query q: the largest r with r * n_query / rows <= q. */
static int cell_of(int64_t q, int cells, int n) { return (int)(((q + 1) * cells - 1) / n); }

void av_attn_pool_rows(const av_attn_pool *p, int h, int q0, int nr, const float *probs, int ld, int n_keys) {
    int C = p->cols, lo[AV_ATTN_POOL_MAX_COLS + 1];
    if (C > AV_ATTN_POOL_MAX_COLS) return; /* the capture never asks for more */
    for (int c = 0; c <= C; c++)
        lo[c] = (int)((int64_t)c * p->n_key / C);
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

void av_attn_pool_add_row(const av_attn_pool *p, int h, int q, float *cmax, const float *csum, float *cref,
                          int n_cells, float m, float inv) {
    size_t cell = ((size_t)h * (size_t)p->rows + (size_t)cell_of(q, p->rows, p->n_query)) * (size_t)p->cols;
    float *mx = p->max + cell, *sm = p->sum + cell;
    av_exp_shift_sum(cmax, n_cells, m); /* largest probability: exp(max score - m) / sum */
    av_exp_shift_sum(cref, n_cells, m); /* what brings each cell's sum to the row's maximum */
    for (int c = 0; c < n_cells; c++) {
        float x = cmax[c] * inv;
        mx[c] = x > mx[c] ? x : mx[c];
        sm[c] += csum[c] * cref[c] * inv;
    }
}
