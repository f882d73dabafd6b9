/* Traces captured straight into their output file (av_run_params.output_path, av_st_prealloc): the file must
 * hold exactly what the ordinary writer produces from the same run, tensor by tensor and byte by byte, and a
 * run that is never saved, or whose output cannot be created, leaves nothing behind. Uses the project's own
 * induction model (models/induction), so it runs everywhere. */
#include "harness.h"
#include "io/io.h"
#include "trace/trace.h"

#include <dirent.h>
#include <sys/stat.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

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
    for (struct dirent *e; d && (e = readdir(d));) n += strstr(e->d_name, ".tmp.") != NULL;
    if (d) closedir(d);
    return n;
}

enum { T = 128 }; /* the model's whole context: large enough to be captured in place */

static int run(av_model *m, const char *output_path, int want_logits, av_trace **t, av_err *err) {
    int32_t ids[T];
    for (int i = 0; i < T; i++) ids[i] = 1 + (i * 7) % 90;
    av_run_params p = av_run_default_params();
    p.output_path = output_path;
    p.want_logits = want_logits;
    return av_trace_from_ids(m, ids, T, &p, t, err);
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
        CHECKF(y && x->dtype == y->dtype && x->nbytes == y->nbytes && memcmp(x->data, y->data, x->nbytes) == 0,
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
        if (av_st_prealloc_open(&p, path, 4096, 1 << 20, &err) != 0 || av_atomic_open(&f, other, &err) != 0) _exit(3);
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
    CHECK(sa.n == sb.n);
    for (int i = 0; i < sa.n; i++) {
        const av_tensor *x = &sa.entries[i].t, *y = av_st_find(&sb, sa.entries[i].name);
        CHECKF(y && x->nbytes == y->nbytes && memcmp(x->data, y->data, x->nbytes) == 0, "%s differs",
               sa.entries[i].name);
    }
    av_st_close(&sa);
    av_st_close(&sb);
    av_trace_free(a);
    av_model_free(m);
}

int main(void) {
    RUN(test_in_place_file_equals_ordinary_save);
    RUN(test_unsaved_or_unwritable_leaves_nothing);
    RUN(test_header_overflow_falls_back);
    RUN(test_signal_removes_temp_files);
    return h_exit_code();
}
