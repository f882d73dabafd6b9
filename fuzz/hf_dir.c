/* Hugging Face model directories: the input holds the files of one directory, split at FUZZ_SEP in this
 * order: 0 config.json   1 model.safetensors   2 model.safetensors.index.json   3, 4 the first two shards the
 * index names   5 tokenizer (tokenizer.json, tokenizer.model or tokenizer.bin by content) 6
 * preprocessor_config.json   7 tokenizer_config.json An empty part is an absent file. The directory is loaded
 * as a model and, when it loads, run (fuzz_model.h). Seeds: fuzz/make_seeds.py (tiny fixtures of every family
 * cut to one layer, a converted Llama). */
#include "fuzz_model.h"

#include <jansson.h>

/* The first two distinct shard file names of an index (plain names only; others are the loader's to refuse).
 */
static void shard_names(const fuzz_part *index, char names[2][128]) {
    snprintf(names[0], 128, "model-00001-of-00002.safetensors");
    snprintf(names[1], 128, "model-00002-of-00002.safetensors");
    json_t *j = json_loadb((const char *)index->p, index->n, 0, NULL);
    const char *k;
    json_t *v;
    int n = 0;
    json_object_foreach(json_object_get(j, "weight_map"), k, v) {
        const char *f = json_string_value(v);
        if (!f || !*f || strlen(f) >= 128 || strchr(f, '/') || strcmp(f, ".") == 0 || strcmp(f, "..") == 0 ||
            (n == 1 && strcmp(f, names[0]) == 0))
            continue;
        snprintf(names[n++], 128, "%s", f);
        if (n == 2) break;
    }
    json_decref(j);
}

static const char *tokenizer_name(const fuzz_part *t) {
    if (t->n && t->p[0] == '{') return "tokenizer.json";
    if (t->n && t->p[0] == 0x0A) return "tokenizer.model";
    return "tokenizer.bin";
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_part part[FUZZ_MAX_PARTS];
    int n = fuzz_split(data, size, part, FUZZ_MAX_PARTS);
    char shards[2][128], path[1024];
    shard_names(n > 2 ? &part[2] : &(fuzz_part){NULL, 0}, shards);
    const char *names[FUZZ_MAX_PARTS] = {"config.json",
                                         "model.safetensors",
                                         "model.safetensors.index.json",
                                         shards[0],
                                         shards[1],
                                         tokenizer_name(&part[n > 5 ? 5 : 0]),
                                         "preprocessor_config.json",
                                         "tokenizer_config.json"};
    fuzz_clear();
    for (int i = 0; i < n; i++)
        if (part[i].n) fuzz_write(path, sizeof path, names[i], part[i].p, part[i].n);
    av_model_params mp = fuzz_model_params();
    av_model *m = NULL;
    av_err err;
    if (fuzz_note(av_model_load(fuzz_dir(), &mp, &m, &err), "model", &err) == 0) {
        static const char text[] = "Hello world, caf\xC3\xA9 \xE6\x97\xA5 \xFF";
        fuzz_exercise_model(m, text, sizeof text - 1);
    }
    av_model_free(m);
    return 0;
}
