/* TEMPORARY: replaced by the GGUF and Hugging Face loaders (gguf_llama.c, hf_llama.c). */
#include "model.h"

int av_load_gguf(const char *path, av_model *m, av_err *err) {
    (void)m;
    return av_errf(err, "%s: GGUF loading is not built yet", path);
}

int av_load_hf_dir(const char *dir, av_model *m, av_err *err) {
    (void)m;
    return av_errf(err, "%s: Hugging Face directories are not supported yet", dir);
}
