/* The order-free arithmetic of corpus statistics: fixed-point sums, moments, quantile sketches with integer
 * counts, relative-position bins, and the table of per-head metrics. */
#include "corpus.h"

#include <math.h>
#include <string.h>

/* ---- fixed point ---- */

av_fx av_fx_from(double x) {
    if (isnan(x)) return 0;
    if (x > AV_FX_MAX_ABS) x = AV_FX_MAX_ABS;
    if (x < -AV_FX_MAX_ABS) x = -AV_FX_MAX_ABS;
    return (av_fx)ldexp(x, AV_FX_FRAC_BITS); /* exact scaling, then truncation toward zero */
}

double av_fx_to_double(av_fx s) { return ldexp((double)s, -AV_FX_FRAC_BITS); }

void av_fx_str(av_fx s, char buf[48]) {
    char tmp[48];
    int n = 0, neg = s < 0;
    unsigned __int128 u = neg ? -(unsigned __int128)s : (unsigned __int128)s;
    do {
        tmp[n++] = (char)('0' + (int)(u % 10));
        u /= 10;
    } while (u && n < 46);
    int k = 0;
    if (neg) buf[k++] = '-';
    while (n)
        buf[k++] = tmp[--n];
    buf[k] = 0;
}

void av_moments_add(av_moments *m, double x) {
    if (isnan(x)) return;
    m->sum += av_fx_from(x);
    m->sum_sq += av_fx_from(x * x);
    m->n++;
}

void av_moments_merge(av_moments *dst, const av_moments *src) {
    dst->sum += src->sum;
    dst->sum_sq += src->sum_sq;
    dst->n += src->n;
}

double av_moments_mean(const av_moments *m) { return m->n ? av_fx_to_double(m->sum) / (double)m->n : NAN; }

double av_moments_sd(const av_moments *m) {
    if (m->n < 2) return NAN;
    double n = (double)m->n, mean = av_fx_to_double(m->sum) / n;
    double var = (av_fx_to_double(m->sum_sq) - n * mean * mean) / (n - 1);
    return var > 0 ? sqrt(var) : 0;
}

/* ---- sketches ---- */

static double sketch_log_gamma(void) { return log((1 + AV_SKETCH_ALPHA) / (1 - AV_SKETCH_ALPHA)); }

int av_sketch_buckets(av_sketch_range r) { return 2 + (int)ceil(log(r.hi / r.lo) / sketch_log_gamma()); }

int av_sketch_index(av_sketch_range r, int n_buckets, double x) {
    if (!(x > r.lo)) return 0; /* also NaN-safe: callers skip NaN before */
    double i = ceil(log(x / r.lo) / sketch_log_gamma());
    if (i < 1) i = 1;
    return i > n_buckets - 1 ? n_buckets - 1 : (int)i;
}

double av_sketch_quantile(av_sketch_range r, const uint64_t *counts, int n_buckets, double q) {
    uint64_t total = 0;
    for (int i = 0; i < n_buckets; i++)
        total += counts[i];
    if (!total) return NAN;
    double rank = q * (double)(total - 1);
    uint64_t seen = 0;
    for (int i = 0; i < n_buckets; i++) {
        seen += counts[i];
        if ((double)seen > rank) {
            if (i == 0) return 0; /* at or below lo */
            double g = (1 + AV_SKETCH_ALPHA) / (1 - AV_SKETCH_ALPHA);
            return r.lo * pow(g, i) * 2 / (g + 1); /* the bucket's value with relative error <= alpha */
        }
    }
    return NAN;
}

/* ---- relative positions ---- */

static int pos_bin_abs(uint64_t a) {
    if (a < 8) return (int)a;
    int k = 63 - __builtin_clzll(a); /* a in [2^k, 2^(k+1)), k >= 3 */
    int b = 8 + 2 * (k - 3) + (int)((a >> (k - 1)) & 1);
    return b < AV_POS_SIDE - 1 ? b : AV_POS_SIDE - 1;
}

int av_pos_bin(int64_t d) {
    int b = pos_bin_abs(d < 0 ? (uint64_t)0 - (uint64_t)d : (uint64_t)d);
    return AV_POS_SIDE - 1 + (d < 0 ? -b : b);
}

void av_pos_bin_range(int b, int64_t *lo, int64_t *hi) {
    int s = b - (AV_POS_SIDE - 1), a = s < 0 ? -s : s;
    int64_t l, h;
    if (a < 8) {
        l = h = a;
    } else {
        int k = 3 + (a - 8) / 2, half = (a - 8) % 2;
        l = ((int64_t)1 << k) + half * ((int64_t)1 << (k - 1));
        h = a == AV_POS_SIDE - 1 ? INT64_MAX : l + ((int64_t)1 << (k - 1)) - 1;
    }
    if (s < 0) {
        *lo = h == INT64_MAX ? INT64_MIN : -h;
        *hi = -l;
    } else {
        *lo = l;
        *hi = h;
    }
}

/* ---- metrics ---- */

static const struct {
    const char *name;
    av_sketch_range range;
} k_metrics[AV_CM_COUNT] = {
    {"entropy", {1e-4, 32}},   {"entropy_norm", {1e-4, 1}}, {"distance", {1e-3, AV_FX_MAX_ABS}},
    {"first", {1e-4, 1}},      {"self", {1e-4, 1}},         {"prev", {1e-4, 1}},
    {"special", {1e-4, 1}},    {"punct", {1e-4, 1}},        {"uniformity", {1e-4, 1}},
    {"first_norm", {1e-4, 1}}, {"duplicate", {1e-4, 1}},    {"induction", {1e-4, 1}},
};

const char *av_cm_name(av_cm m) { return m >= 0 && m < AV_CM_COUNT ? k_metrics[m].name : "?"; }
av_sketch_range av_cm_range(av_cm m) { return k_metrics[m].range; }

av_cm av_cm_of_role(av_role r) {
    static const av_cm map[AV_ROLE_COUNT] = {AV_CM_PREV,       AV_CM_FIRST,     AV_CM_SELF,
                                             AV_CM_UNIFORMITY, AV_CM_DUPLICATE, AV_CM_INDUCTION};
    return map[r];
}
