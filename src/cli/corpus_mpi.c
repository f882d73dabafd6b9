/* MPI for `attnviz corpus` (built with mpicc's flags and -DAV_HAVE_MPI when the Makefile finds MPI; without
 * it every call is the single-process case). Rank 0 receives every other rank's bytes point to point, in rank
 * order, in pieces of at most 1 GiB (MPI counts are ints). */
#include "corpus_comm.h"

#include "core/core.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef AV_HAVE_MPI
#include <mpi.h>
#endif

#define PIECE ((size_t)1 << 30)

/* The launcher's world size and rank from the environment of the common launchers; 1 / 0 when none. */
static void launcher_env(int *size, int *rank) {
    static const char *const sizes[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "SLURM_NTASKS"};
    static const char *const ranks[] = {"OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK", "SLURM_PROCID"};
    *size = 1;
    *rank = 0;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        const char *s = getenv(sizes[i]), *r = getenv(ranks[i]);
        if (s && atoi(s) > *size) *size = atoi(s);
        if (r && atoi(r) > *rank) *rank = atoi(r);
    }
    if (getenv("PMIX_RANK") && *size == 1) *size = 2; /* PMIx publishes no size variable: assume a job */
}

int cli_comm_init(cli_comm *c, int *argc, char ***argv, int *idle, av_err *err) {
    c->rank = 0;
    c->size = 1;
    c->mpi = 0;
    *idle = 0;
    int env_size, env_rank;
    launcher_env(&env_size, &env_rank);
#ifdef AV_HAVE_MPI
    if (env_size > 1 || getenv("OMPI_COMM_WORLD_SIZE")) {
        int provided;
        if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
            return av_errf(err, "MPI_Init_thread failed");
        MPI_Comm_rank(MPI_COMM_WORLD, &c->rank);
        MPI_Comm_size(MPI_COMM_WORLD, &c->size);
        c->mpi = 1;
        return 0;
    }
#else
    (void)argc;
    (void)argv;
    (void)err;
    if (env_size > 1) {
        fprintf(stderr,
                "attnviz corpus: this attnviz was built without MPI (install libopenmpi-dev and rebuild): "
                "running "
                "single-process%s\n",
                env_rank > 0 ? "; this copy (launcher rank > 0) exits and leaves the whole input to rank 0"
                             : "");
        *idle = env_rank > 0;
    }
#endif
    return 0;
}

int cli_comm_gather(const cli_comm *c, const void *data, size_t n, char ***parts, size_t **lens,
                    av_err *err) {
    *parts = NULL;
    *lens = NULL;
    if (c->rank == 0) {
        *parts = calloc((size_t)c->size, sizeof **parts);
        *lens = calloc((size_t)c->size, sizeof **lens);
        if (!*parts || !*lens || !((*parts)[0] = malloc(n ? n : 1))) return av_errf(err, "out of memory");
        memcpy((*parts)[0], data, n);
        (*lens)[0] = n;
    }
#ifdef AV_HAVE_MPI
    if (!c->mpi) return 0;
    if (c->rank != 0) {
        unsigned long long len = n;
        MPI_Send(&len, 1, MPI_UNSIGNED_LONG_LONG, 0, 1, MPI_COMM_WORLD);
        for (size_t off = 0; off < n; off += PIECE)
            MPI_Send((const char *)data + off, (int)(n - off < PIECE ? n - off : PIECE), MPI_BYTE, 0, 2,
                     MPI_COMM_WORLD);
        return 0;
    }
    for (int r = 1; r < c->size; r++) {
        unsigned long long len;
        MPI_Recv(&len, 1, MPI_UNSIGNED_LONG_LONG, r, 1, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        if (!((*parts)[r] = malloc(len ? len : 1))) return av_errf(err, "out of memory receiving rank %d", r);
        (*lens)[r] = len;
        for (size_t off = 0; off < len; off += PIECE)
            MPI_Recv((*parts)[r] + off, (int)(len - off < PIECE ? len - off : PIECE), MPI_BYTE, r, 2,
                     MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    }
#endif
    return 0;
}

void cli_comm_bcast_int(const cli_comm *c, int *v) {
#ifdef AV_HAVE_MPI
    if (c->mpi) MPI_Bcast(v, 1, MPI_INT, 0, MPI_COMM_WORLD);
#else
    (void)c;
    (void)v;
#endif
}

void cli_comm_finalize(cli_comm *c) {
#ifdef AV_HAVE_MPI
    if (c->mpi) MPI_Finalize();
#endif
    c->mpi = 0;
}
