/* Arrays saved by other tools (.npy, .npz, safetensors; chosen by magic like the file name would), read as
 * arrays and imported as a trace (rows checked, or not and stored F16, or with a tokens file: picked by a
 * byte of the input), which is then saved, loaded back and read. npz inputs are mutated zip-aware
 * (zip_mutator.h): member contents change behind valid zip headers. Seeds: fuzz/make_seeds.py (numpy's
 * np.save / np.savez / np.savez_compressed). */
#include "fuzz_model.h"
#include "io/npy.h"
#include "trace/import.h"
#include "zip_mutator.h"

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned seed);
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned seed) {
    return fuzz_zip_mutate(data, size, max_size, seed);
}

static void import(const char *path, const char *tokens, int check, av_dtype dtype) {
    av_import_params p = av_import_default_params();
    const char *in[1] = {path};
    p.inputs = in;
    p.n_inputs = 1;
    p.tokens_path = tokens;
    p.check_rows = check;
    p.dtype = dtype;
    av_trace *t = NULL;
    av_err err;
    char out[1024];
    if (fuzz_note(av_trace_import(&p, &t, &err), "import", &err) == 0 &&
        av_trace_save(t, fuzz_path(out, sizeof out, "t.safetensors"), &err) == 0) {
        av_trace *u = NULL;
        if (av_trace_load(out, &u, &err) == 0) {
            for (av_attn_kind k = 0; k < AV_ATTN_KIND_COUNT; k++)
                fuzz_read_trace(u, k);
        }
        av_trace_free(u);
    }
    av_trace_free(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *name = size >= 6 && memcmp(data, "\x93NUMPY", 6) == 0 ? "a.npy"
                       : size >= 2 && memcmp(data, "PK", 2) == 0      ? "a.npz"
                                                                      : "a.safetensors";
    char path[1024], tok[1024];
    fuzz_clear();
    fuzz_write(path, sizeof path, name, data, size);
    av_arrays arrays;
    memset(&arrays, 0, sizeof arrays);
    av_err err;
    float sum = 0;
    if (av_arrays_add_file(&arrays, path, &err) == 0)
        for (int i = 0; i < arrays.n; i++)
            for (size_t k = 0; k < arrays.items[i].numel && k < (1u << 16); k++)
                sum += av_array_get(&arrays.items[i], k);
    av_arrays_free(&arrays);
    (void)sum;
    static const char tokens[] =
        "{\"tokens\": [\"a\", \"b\", \"c\"], \"source_tokens\": [\"x\", \"y\", \"z\"],"
        " \"target_tokens\": [\"p\", \"q\"], \"patch_grid\": \"1x2\", \"prefix_tokens\": 1}";
    unsigned pick = size ? data[size / 2] % 3 : 0; /* one import per input, its options from a middle byte */
    if (pick == 2) fuzz_write(tok, sizeof tok, "tokens.json", tokens, sizeof tokens - 1);
    import(path, pick == 2 ? tok : NULL, pick == 0, pick == 1 ? AV_DTYPE_F16 : AV_DTYPE_F32);
    return 0;
}
