/* The DAAM options render and show share: --word, --step-range, --layer-range, --head-range (see cli.h). */
#include "cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* "A:B" (half-open) into *lo, *hi; absent: 0, 0 (everything). */
static int get_range(const cli_args *a, const char *name, int *lo, int *hi, const char *cmd) {
    const char *v = cli_get(a, name);
    *lo = *hi = 0;
    if (!v) return 0;
    char *end, *end2;
    errno = 0;
    long x = strtol(v, &end, 10), y = *end == ':' ? strtol(end + 1, &end2, 10) : -1;
    if (errno || end == v || *end != ':' || end2 == end + 1 || *end2 || x < 0 || y <= x || y > 1000000)
        return cli_failf(cmd, "--%s must be A:B with 0 <= A < B (a half-open range), got '%s'", name, v) ? -1
                                                                                                         : -1;
    *lo = (int)x;
    *hi = (int)y;
    return 0;
}

int cli_daam_wanted(const cli_args *a, const av_trace *t) {
    av_tensor raw;
    static const char *const daam_only[] = {"word", "step-range", "layer-range", "head-range"};
    for (size_t i = 0; i < sizeof daam_only / sizeof daam_only[0]; i++)
        if (cli_has(a, daam_only[i])) return 1;
    return av_trace_tensor(t, "daam.raw", &raw) == 0 && !cli_has(a, "kind") && !cli_has(a, "layer") &&
           !cli_has(a, "head") && !cli_has(a, "grid") && !cli_has(a, "steps");
}

int cli_daam_params(const cli_args *a, const char *cmd, av_daam_plot_params *p) {
    av_err err = {{0}};
    memset(p, 0, sizeof *p);
    p->word = cli_get(a, "word");
    p->dpi = 150;
    p->cmap = AV_CMAP_VIRIDIS;
    if (cli_get(a, "cmap") && av_cmap_parse(cli_get(a, "cmap"), &p->cmap, &err))
        return cli_fail(cmd, &err) ? -1 : -1;
    return get_range(a, "step-range", &p->range.step0, &p->range.step1, cmd) ||
                   get_range(a, "layer-range", &p->range.layer0, &p->range.layer1, cmd) ||
                   get_range(a, "head-range", &p->range.head0, &p->range.head1, cmd)
               ? -1
               : 0;
}
