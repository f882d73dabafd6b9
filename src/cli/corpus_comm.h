/* Processes of `attnviz corpus`: one, or the ranks of an MPI job (corpus_mpi.c; MPI only when the build found
 * it and the process was started by an MPI launcher). Only the main thread calls these. */
#ifndef AV_CORPUS_COMM_H
#define AV_CORPUS_COMM_H

#include "attnviz.h"

#include <stddef.h>

typedef struct cli_comm {
    int rank, size;
    int mpi; /* 1 when MPI is running */
} cli_comm;

/* Starts MPI when possible. Without MPI support but under a launcher (OMPI_COMM_WORLD_SIZE, PMI_SIZE,
 * PMIX_RANK, SLURM_NTASKS > 1), says so on stderr; a process whose launcher rank is not 0 then sets *idle: it
 * must exit 0 and leave the whole input to rank 0. */
int cli_comm_init(cli_comm *c, int *argc, char ***argv, int *idle, av_err *err);
/* Collects every rank's bytes at rank 0, in rank order: (*parts)[r] (malloc'd) of (*lens)[r] bytes. Other
 * ranks send theirs and get nothing. */
int cli_comm_gather(const cli_comm *c, const void *data, size_t n, char ***parts, size_t **lens, av_err *err);
/* Rank 0's value of *v to every rank. */
void cli_comm_bcast_int(const cli_comm *c, int *v);
void cli_comm_finalize(cli_comm *c);

#endif
