/* Traces captured straight into their output file (av_run_params.output_path, av_st_prealloc): the file must
 * hold exactly what the ordinary writer produces from the same run, tensor by tensor and byte by byte, and a
 * run that is never saved, or whose output cannot be created, leaves nothing behind. Uses the project's own
 * induction model (models/induction), so it runs everywhere. */
#define _GNU_SOURCE /* O_DIRECT */
#include "harness.h"
#include "io/io.h"
#include "synth_model.h"
#include "trace/trace.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- seams: this binary's own posix_fallocate and fsync take the place of libc's for the library linked
 * into it, so a test can make reservation fail as a full disk or an unsupporting filesystem would, and see
 * which files and directories were synced. Both do the real system call otherwise. ---- */
static int fake_fallocate_errno; /* 0: the real call */
int posix_fallocate(int fd, off_t offset, off_t len) {
    if (fake_fallocate_errno) return fake_fallocate_errno;
    return syscall(SYS_fallocate, fd, 0, offset, len) == 0 ? 0 : errno;
}

enum { MAX_SYNCED = 64 };
static struct stat synced[MAX_SYNCED]; /* what fsync was called on, in order */
static int n_synced;
int fsync(int fd) {
    if (n_synced < MAX_SYNCED && fstat(fd, &synced[n_synced]) == 0) n_synced++;
    return (int)syscall(SYS_fsync, fd);
}

/* pwrite: counts the writes through descriptors opened with O_DIRECT (the capture's direct writer) */
static int n_direct_writes;
ssize_t pwrite(int fd, const void *buf, size_t n, off_t off) {
    int fl = fcntl(fd, F_GETFL);
    if (fl != -1 && (fl & O_DIRECT)) n_direct_writes++;
    return (ssize_t)syscall(SYS_pwrite64, fd, buf, n, off);
}

static int was_synced(const char *path) {
    struct stat st;
    if (stat(path, &st) != 0) return 0;
    for (int i = 0; i < n_synced; i++)
        if (synced[i].st_ino == st.st_ino && synced[i].st_dev == st.st_dev) return 1;
    return 0;
}

#define MODEL "models/induction/induction.bin"

static av_model *load_model(void) {
    av_model_params p = av_model_default_params();
    av_model *m = NULL;
    av_err err = {{0}};
    if (av_model_load(MODEL, &p, &m, &err)) fprintf(stderr, "load failed: %s\n", err.msg);
    return m;
}

static int leftover_temps(const char *dir) {
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        n += strstr(e->d_name, ".tmp.") != NULL;
    if (d) closedir(d);
    return n;
}

/* Every tensor of a is in b with the same bytes (and as many tensors). */
static void check_same_tensors(const av_safetensors *a, const av_safetensors *b) {
    CHECKF(a->n == b->n, "tensors: %d vs %d", a->n, b->n);
    for (int i = 0; i < a->n; i++) {
        const av_tensor *x = &a->entries[i].t, *y = av_st_find(b, a->entries[i].name);
        CHECKF(y && x->nbytes == y->nbytes && memcmp(x->data, y->data, x->nbytes) == 0, "%s differs",
               a->entries[i].name);
    }
}

enum { T = 128 }; /* the model's whole context: large enough to be captured in place */

/* A run over n <= T ids. */
static int run_n(av_model *m, const char *output_path, int want_logits, int n, av_trace **t, av_err *err) {
    int32_t ids[T];
    for (int i = 0; i < n; i++)
        ids[i] = 1 + (i * 7) % 90;
    av_run_params p = av_run_default_params();
    p.output_path = output_path;
    p.want_logits = want_logits;
    return av_trace_from_ids(m, ids, (size_t)n, &p, t, err);
}

static int run(av_model *m, const char *output_path, int want_logits, av_trace **t, av_err *err) {
    return run_n(m, output_path, want_logits, T, t, err);
}

static void test_in_place_file_equals_ordinary_save(void) {
    av_model *m = load_model();
    REQUIREF(m, "cannot load " MODEL);
    char ordinary[512], in_place[512];
    snprintf(ordinary, sizeof ordinary, "%s/ordinary.safetensors", h_tmpdir());
    snprintf(in_place, sizeof in_place, "%s/in_place.safetensors", h_tmpdir());
    av_err err = {{0}};
    av_trace *a = NULL, *b = NULL;
    REQUIREF(run(m, NULL, 1, &a, &err) == 0 && av_trace_save(a, ordinary, &err) == 0, "%s", err.msg);
    REQUIREF(run(m, in_place, 1, &b, &err) == 0, "%s", err.msg);
    CHECKF(b->prealloc != NULL, "the run did not capture into the output file");
    REQUIREF(av_trace_save(b, in_place, &err) == 0, "%s", err.msg);
    CHECK(leftover_temps(h_tmpdir()) == 0);
    av_safetensors sa, sb;
    REQUIREF(av_st_open(ordinary, &sa, &err) == 0, "%s", err.msg);
    REQUIREF(av_st_open(in_place, &sb, &err) == 0, "%s", err.msg);
    CHECKF(sa.n == sb.n && sa.n >= 2 * 2 + 1, "tensors: %d vs %d", sa.n, sb.n);
    for (int i = 0; i < sa.n; i++) {
        const av_tensor *x = &sa.entries[i].t, *y = av_st_find(&sb, sa.entries[i].name);
        CHECKF(y && x->dtype == y->dtype && x->nbytes == y->nbytes &&
                   memcmp(x->data, y->data, x->nbytes) == 0,
               "tensor %s differs between the two files", sa.entries[i].name);
    }
    const char *keys[] = {"tokens", "token_ids", "format", "model"};
    for (size_t k = 0; k < sizeof keys / sizeof *keys; k++) {
        const char *va = av_st_meta(&sa, keys[k]), *vb = av_st_meta(&sb, keys[k]);
        CHECKF(va && vb && strcmp(va, vb) == 0, "metadata %s differs", keys[k]);
    }
    /* the in-memory trace still reads from the (renamed) file's pages */
    av_attn_view v;
    REQUIREF(av_trace_attn(b, AV_ATTN_SELF, 1, &v, &err) == 0, "%s", err.msg);
    CHECK(memcmp(v.data, av_st_find(&sa, "attn.self.1")->data, av_st_find(&sa, "attn.self.1")->nbytes) == 0);
    /* saving the same trace elsewhere takes the ordinary path */
    char other[512];
    snprintf(other, sizeof other, "%s/other.safetensors", h_tmpdir());
    CHECK(av_trace_save(b, other, &err) == 0);
    av_st_close(&sa);
    av_st_close(&sb);
    av_trace_free(a);
    av_trace_free(b);
    av_model_free(m);
}

/* The attention of a run into its file goes out through the direct writer (where the file system takes
 * O_DIRECT) and the file is the ordinary save's, byte for byte: rows of 128 x 4 bytes (every block whole
 * 512-byte sectors) and of 120 x 4 (blocks starting and ending inside sectors), and with ATTNVIZ_DIRECT_IO=0
 * (stores into the mapping, no direct write). */
static void test_direct_capture_equals_ordinary_save(void) {
    av_model *m = load_model();
    REQUIREF(m, "cannot load " MODEL);
    const struct {
        int n;
        const char *env;
    } cases[] = {{T, NULL}, {120, NULL}, {T, "0"}};
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        char ordinary[512], direct[512];
        snprintf(ordinary, sizeof ordinary, "%s/ordinary-%zu.safetensors", h_tmpdir(), c);
        snprintf(direct, sizeof direct, "%s/direct-%zu.safetensors", h_tmpdir(), c);
        av_err err = {{0}};
        av_trace *a = NULL, *b = NULL;
        REQUIREF(run_n(m, NULL, 1, cases[c].n, &a, &err) == 0 && av_trace_save(a, ordinary, &err) == 0, "%s",
                 err.msg);
        if (cases[c].env) setenv("ATTNVIZ_DIRECT_IO", cases[c].env, 1);
        n_direct_writes = 0;
        int rc = run_n(m, direct, 1, cases[c].n, &b, &err);
        unsetenv("ATTNVIZ_DIRECT_IO");
        REQUIREF(rc == 0, "%s", err.msg);
        CHECKF(b->prealloc != NULL, "n %d: the run did not capture into the output file", cases[c].n);
        if (cases[c].env)
            CHECKF(n_direct_writes == 0, "ATTNVIZ_DIRECT_IO=0: %d direct writes", n_direct_writes);
        else if (n_direct_writes == 0)
            printf("note: %s takes no O_DIRECT writes: only the mapping was checked\n", h_tmpdir());
        REQUIREF(av_trace_save(b, direct, &err) == 0, "%s", err.msg);
        av_safetensors sa, sb;
        REQUIREF(av_st_open(ordinary, &sa, &err) == 0 && av_st_open(direct, &sb, &err) == 0, "%s", err.msg);
        check_same_tensors(&sa, &sb);
        av_attn_view v; /* the in-memory trace reads the file's pages, written past them */
        REQUIREF(av_trace_attn(b, AV_ATTN_SELF, 1, &v, &err) == 0, "%s", err.msg);
        const av_tensor *ref = av_st_find(&sa, "attn.self.1");
        CHECK(ref && memcmp(v.data, ref->data, ref->nbytes) == 0);
        av_st_close(&sa);
        av_st_close(&sb);
        av_trace_free(a);
        av_trace_free(b);
    }
    CHECK(leftover_temps(h_tmpdir()) == 0);
    av_model_free(m);
}

/* attn.self.l of a trace file: F16 [n_heads, n, n] (NULL with a failed check otherwise). */
static const uint16_t *f16_layer(const av_safetensors *f, int l, int n_heads, int n) {
    char name[32];
    snprintf(name, sizeof name, "attn.self.%d", l);
    const av_tensor *x = av_st_find(f, name);
    CHECKF(x && x->dtype == AV_DTYPE_F16 && x->nbytes == 2 * (size_t)n_heads * n * n,
           "%s: not F16 [%d, %d, %d]", name, n_heads, n, n);
    return x && x->nbytes == 2 * (size_t)n_heads * n * n ? x->data : NULL;
}

/* An F16 trace run into its file goes out through the writer's staging, converted on the way (the capture
 * never holds it in f32): every value is the F32 run's rounded by the compiler's own conversion (_Float16,
 * not the project's), the file holds the ordinary save's tensors byte for byte, and the trace the run
 * returns reads the same values from the file. Rows of 256 x 4 bytes (whole sectors), of 300 x 4 (blocks
 * across sectors), and with ATTNVIZ_DIRECT_IO=0 (no direct writes: the writer's thread copies the rows into
 * the file's mapping, as on a file system without O_DIRECT). A synthetic model (2 layers, 4 heads), large
 * enough at these lengths to be captured into the file. */
static void test_direct_f16_capture(void) {
    enum { LAYERS = 2, HEADS = 4, CTX = 512 };
    av_model *m = h_synth_llama(64, 96, LAYERS, HEADS, 2, CTX);
    REQUIRE(m);
    const struct {
        int n;
        const char *env;
    } cases[] = {{256, NULL}, {300, NULL}, {256, "0"}};
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        int n = cases[c].n;
        int32_t ids[CTX];
        for (int i = 0; i < n; i++)
            ids[i] = 1 + (i * 37) % (H_SYNTH_VOCAB - 1);
        char ordinary[512], direct[512], again[512];
        snprintf(ordinary, sizeof ordinary, "%s/f16-ordinary-%zu.safetensors", h_tmpdir(), c);
        snprintf(direct, sizeof direct, "%s/f16-direct-%zu.safetensors", h_tmpdir(), c);
        snprintf(again, sizeof again, "%s/f16-again-%zu.safetensors", h_tmpdir(), c);
        av_err err = {{0}};
        av_trace *f32 = NULL, *a = NULL, *b = NULL;
        av_run_params p = av_run_default_params();
        REQUIREF(av_trace_from_ids(m, ids, (size_t)n, &p, &f32, &err) == 0, "%s", err.msg);
        p.dtype = AV_DTYPE_F16;
        REQUIREF(av_trace_from_ids(m, ids, (size_t)n, &p, &a, &err) == 0 &&
                     av_trace_save(a, ordinary, &err) == 0,
                 "%s", err.msg);
        if (cases[c].env) setenv("ATTNVIZ_DIRECT_IO", cases[c].env, 1);
        n_direct_writes = 0;
        p.output_path = direct;
        int rc = av_trace_from_ids(m, ids, (size_t)n, &p, &b, &err);
        unsetenv("ATTNVIZ_DIRECT_IO");
        REQUIREF(rc == 0, "%s", err.msg);
        CHECKF(b->prealloc != NULL, "n %d: the F16 run did not capture into the output file", n);
        if (cases[c].env)
            CHECKF(n_direct_writes == 0, "ATTNVIZ_DIRECT_IO=0: %d direct writes", n_direct_writes);
        else if (n_direct_writes == 0)
            printf("note: %s takes no O_DIRECT writes: the rows were copied into the mapping\n", h_tmpdir());
        REQUIREF(av_trace_save(b, direct, &err) == 0 && av_trace_save(b, again, &err) == 0, "%s", err.msg);
        av_safetensors so, sd, sa;
        REQUIREF(av_st_open(ordinary, &so, &err) == 0 && av_st_open(direct, &sd, &err) == 0 &&
                     av_st_open(again, &sa, &err) == 0,
                 "%s", err.msg);
        check_same_tensors(&so, &sd);
        check_same_tensors(&so, &sa); /* saved elsewhere from the file's F16, not through f32 */
        size_t per = (size_t)HEADS * (size_t)n * (size_t)n, wrong = 0, misread = 0;
        for (int l = 0; l < LAYERS; l++) {
            av_attn_view ref, got;
            const uint16_t *h = f16_layer(&sd, l, HEADS, n);
            REQUIREF(h && av_trace_attn(f32, AV_ATTN_SELF, l, &ref, &err) == 0 &&
                         av_trace_attn(b, AV_ATTN_SELF, l, &got, &err) == 0,
                     "%s", err.msg);
            for (size_t i = 0; i < per; i++) {
                _Float16 want = (_Float16)ref.data[i];
                uint16_t bits;
                memcpy(&bits, &want, sizeof bits);
                wrong += h[i] != bits;
                misread += got.data[i] != (float)want;
            }
        }
        CHECKF(wrong == 0 && misread == 0,
               "n %d: %zu values differ from the F32 run's rounded, %zu read wrong", n, wrong, misread);
        av_st_close(&so);
        av_st_close(&sd);
        av_st_close(&sa);
        av_trace_free(f32);
        av_trace_free(a);
        av_trace_free(b);
    }
    CHECK(leftover_temps(h_tmpdir()) == 0);
    av_model_free(m);
}

static void test_unsaved_or_unwritable_leaves_nothing(void) {
    av_model *m = load_model();
    REQUIREF(m, "cannot load " MODEL);
    char path[512];
    snprintf(path, sizeof path, "%s/never_saved.safetensors", h_tmpdir());
    av_err err = {{0}};
    av_trace *t = NULL;
    REQUIREF(run(m, path, 0, &t, &err) == 0, "%s", err.msg);
    CHECK(leftover_temps(h_tmpdir()) == 1); /* the run's file exists while the trace lives */
    av_trace_free(t);
    CHECK(leftover_temps(h_tmpdir()) == 0 && access(path, F_OK) != 0);
    snprintf(path, sizeof path, "%s/fifo", h_tmpdir()); /* "-o /dev/null" as root would have replaced it */
    REQUIRE(mkfifo(path, 0644) == 0);
    t = NULL;
    CHECK(run(m, path, 0, &t, &err) == -1 && t == NULL && strstr(err.msg, "not a regular file"));
    struct stat st;
    CHECK(stat(path, &st) == 0 && S_ISFIFO(st.st_mode));
    unlink(path);
    snprintf(path, sizeof path, "%s/no/such/dir/x.safetensors", h_tmpdir());
    t = NULL;
    CHECK(run(m, path, 0, &t, &err) == -1 && t == NULL);
    CHECKF(strstr(err.msg, "no/such/dir") != NULL, "error does not name the path: %s", err.msg);
    av_model_free(m);
}

/* A process killed while its output is still a temp file (a long run interrupted with Ctrl-C) removes it. */
static void test_signal_removes_temp_files(void) {
    char dir[512], path[600];
    snprintf(dir, sizeof dir, "%s/signal", h_tmpdir());
    REQUIRE(mkdir(dir, 0755) == 0 || access(dir, F_OK) == 0);
    snprintf(path, sizeof path, "%s/out.safetensors", dir);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        av_atomic_remove_on_signals();
        av_err err = {{0}};
        av_st_prealloc p; /* a mapped, full-size temp as a run's capture makes */
        av_atomic_file f; /* and an ordinary one */
        char other[640];
        snprintf(other, sizeof other, "%s.2", path);
        if (av_st_prealloc_open(&p, path, 4096, 1 << 20, &err) != 0 || av_atomic_open(&f, other, &err) != 0)
            _exit(3);
        memset(p.map + p.room, 1, 1 << 20);
        if (leftover_temps(dir) != 2) _exit(4);
        raise(SIGTERM);
        _exit(5); /* not reached */
    }
    int status = 0;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    CHECKF(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM, "child status %d", status);
    CHECKF(leftover_temps(dir) == 0, "%d temp files left after SIGTERM", leftover_temps(dir));
}

/* A header that outgrows the reserved room (metadata added after the run) takes the ordinary writer, reading
 * the attention from the still-open capture file: same content, and the capture's temp file goes away. */
static void test_header_overflow_falls_back(void) {
    av_model *m = load_model();
    REQUIREF(m, "cannot load " MODEL);
    char ordinary[512], in_place[512];
    snprintf(ordinary, sizeof ordinary, "%s/ordinary2.safetensors", h_tmpdir());
    snprintf(in_place, sizeof in_place, "%s/overflow.safetensors", h_tmpdir());
    av_err err = {{0}};
    av_trace *a = NULL, *b = NULL;
    REQUIREF(run(m, NULL, 0, &a, &err) == 0, "%s", err.msg);
    REQUIREF(run(m, in_place, 0, &b, &err) == 0 && b->prealloc, "%s", err.msg);
    size_t big = b->prealloc->room + 1000;
    char *note = malloc(big + 1);
    memset(note, 'x', big);
    note[big] = 0;
    REQUIRE(av_trace_set_meta(a, "note", note, &err) == 0 && av_trace_set_meta(b, "note", note, &err) == 0);
    free(note);
    REQUIREF(av_trace_save(a, ordinary, &err) == 0 && av_trace_save(b, in_place, &err) == 0, "%s", err.msg);
    av_trace_free(b);
    CHECK(leftover_temps(h_tmpdir()) == 0);
    av_safetensors sa, sb;
    REQUIREF(av_st_open(ordinary, &sa, &err) == 0 && av_st_open(in_place, &sb, &err) == 0, "%s", err.msg);
    check_same_tensors(&sa, &sb);
    av_st_close(&sa);
    av_st_close(&sb);
    av_trace_free(a);
    av_model_free(m);
}

/* A writer killed with SIGKILL (no handler runs) leaves its temp file; the next write to the same path
 * removes it, but never the temp of a process that is still alive. */
static void test_stale_temp_of_killed_writer_removed(void) {
    char dir[512], path[600], live[700];
    snprintf(dir, sizeof dir, "%s/stale", h_tmpdir());
    REQUIRE(mkdir(dir, 0755) == 0 || access(dir, F_OK) == 0);
    snprintf(path, sizeof path, "%s/out.safetensors", dir);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        av_err err = {{0}};
        av_st_prealloc p;
        if (av_st_prealloc_open(&p, path, 4096, 1 << 20, &err) != 0) _exit(3);
        raise(SIGKILL);
        _exit(5);
    }
    int status = 0;
    REQUIRE(waitpid(pid, &status, 0) == pid && WIFSIGNALED(status));
    snprintf(live, sizeof live, "%s.tmp.%ld.7", path, (long)getppid()); /* a live writer's temp */
    FILE *fp = fopen(live, "wb");
    REQUIRE(fp != NULL);
    fclose(fp);
    CHECKF(leftover_temps(dir) == 2, "%d temp files before the next write", leftover_temps(dir));
    av_err err = {{0}};
    av_atomic_file f;
    REQUIREF(av_atomic_open(&f, path, &err) == 0, "%s", err.msg);
    REQUIREF(av_atomic_write(&f, "x", 1, &err) == 0 && av_atomic_commit(&f, &err) == 0, "%s", err.msg);
    CHECKF(leftover_temps(dir) == 1, "%d temp files after the next write (the dead writer's should be gone)",
           leftover_temps(dir));
    CHECKF(access(live, F_OK) == 0, "the temp file of a live process was removed");
    unlink(live);
}

/* Success is reported only after the file's data and the directory entry of the rename are on disk. */
static void test_commit_syncs_file_and_directory(void) {
    av_model *m = load_model();
    REQUIREF(m, "cannot load " MODEL);
    char dir[512], a[600], b[600];
    snprintf(dir, sizeof dir, "%s/sync", h_tmpdir());
    REQUIRE(mkdir(dir, 0755) == 0 || access(dir, F_OK) == 0);
    snprintf(a, sizeof a, "%s/ordinary.safetensors", dir);
    snprintf(b, sizeof b, "%s/in_place.safetensors", dir);
    av_err err = {{0}};
    av_trace *t = NULL, *u = NULL;
    REQUIREF(run(m, NULL, 0, &t, &err) == 0 && run(m, b, 0, &u, &err) == 0 && u->prealloc, "%s", err.msg);
    n_synced = 0;
    REQUIREF(av_trace_save(t, a, &err) == 0, "%s", err.msg);
    CHECK(was_synced(a));
    CHECK(was_synced(dir));
    n_synced = 0;
    REQUIREF(av_trace_save(u, b, &err) == 0, "%s", err.msg); /* the mapped, captured-in-place file */
    CHECK(was_synced(b));
    CHECK(was_synced(dir));
    av_trace_free(t);
    av_trace_free(u);
    av_model_free(m);
}

/* No room on disk fails the run before it starts, with a clear error and nothing left behind; a filesystem
 * that cannot reserve space (EOPNOTSUPP) falls back to the ordinary writer, which gives the same file. */
static void test_reservation_failure_is_up_front(void) {
    av_model *m = load_model();
    REQUIREF(m, "cannot load " MODEL);
    char path[512], ref[512];
    snprintf(path, sizeof path, "%s/full_disk.safetensors", h_tmpdir());
    snprintf(ref, sizeof ref, "%s/reference.safetensors", h_tmpdir());
    av_err err = {{0}};
    av_trace *t = NULL;
    fake_fallocate_errno = ENOSPC;
    int rc = run(m, path, 0, &t, &err);
    fake_fallocate_errno = 0;
    CHECKF(rc == -1 && t == NULL, "the run went on without its disk space (rc %d)", rc);
    CHECKF(strstr(err.msg, "cannot reserve") && strstr(err.msg, "full_disk.safetensors") &&
               strstr(err.msg, strerror(ENOSPC)),
           "unclear error: %s", err.msg);
    CHECK(leftover_temps(h_tmpdir()) == 0 && access(path, F_OK) != 0);
    av_trace_free(t);

    /* the same with a real file size limit (the kernel refuses the reservation with EFBIG) */
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit rl = {64 << 10, 64 << 10};
        av_trace *c = NULL;
        av_err e2 = {{0}};
        if (setrlimit(RLIMIT_FSIZE, &rl) != 0) _exit(3);
        _exit(run(m, path, 0, &c, &e2) == -1 && strstr(e2.msg, "cannot reserve") ? 0 : 4);
    }
    int status = 0;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    CHECKF(WIFEXITED(status) && WEXITSTATUS(status) == 0, "under a 64 KiB file size limit: status %d",
           status);
    CHECK(leftover_temps(h_tmpdir()) == 0);

    fake_fallocate_errno = EOPNOTSUPP;
    t = NULL;
    rc = run(m, path, 0, &t, &err);
    fake_fallocate_errno = 0;
    REQUIREF(rc == 0 && t, "%s", err.msg);
    CHECK(t->prealloc == NULL); /* kept in memory */
    av_trace *r = NULL;
    REQUIREF(av_trace_save(t, path, &err) == 0 && run(m, NULL, 0, &r, &err) == 0 &&
                 av_trace_save(r, ref, &err) == 0,
             "%s", err.msg);
    av_safetensors sa, sb;
    REQUIREF(av_st_open(path, &sa, &err) == 0 && av_st_open(ref, &sb, &err) == 0, "%s", err.msg);
    check_same_tensors(&sa, &sb);
    av_st_close(&sa);
    av_st_close(&sb);
    av_trace_free(t);
    av_trace_free(r);
    av_model_free(m);
}

int main(void) {
    RUN(test_in_place_file_equals_ordinary_save);
    RUN(test_direct_capture_equals_ordinary_save);
    RUN(test_direct_f16_capture);
    RUN(test_stale_temp_of_killed_writer_removed);
    RUN(test_commit_syncs_file_and_directory);
    RUN(test_reservation_failure_is_up_front);
    RUN(test_unsaved_or_unwritable_leaves_nothing);
    RUN(test_header_overflow_falls_back);
    RUN(test_signal_removes_temp_files);
    return h_exit_code();
}
