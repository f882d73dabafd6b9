/* attnviz run: model + text (or token ids, or an image, or a source/target pair) -> trace file. */
#include "cli.h"

#include "io/io.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Writes the preprocessed input of an image model as safetensors "pixels" [3, H, W] (debugging, references).
 */
static int dump_pixels(const av_model *m, const char *image, const char *path, av_err *err) {
    float *px;
    int h, w;
    if (av_image_preprocess(m, image, &px, &h, &w, err)) return -1;
    av_st_writer wr;
    av_st_writer_init(&wr);
    int64_t shape[3] = {3, h, w};
    int rc = av_st_writer_meta(&wr, "image", image, err) ||
             av_st_writer_add(&wr, "pixels", AV_DTYPE_F32, AV_DTYPE_F32, 3, shape, px, err) ||
             av_st_writer_save(&wr, path, err);
    av_st_writer_free(&wr);
    free(px);
    return rc ? -1 : 0;
}

/* Image models: trace + the top classes on stdout. */
static int run_image(av_model *m, const cli_args *a, const char *image, const av_run_params *rp,
                     av_trace **t) {
    const char *cmd = "run", *dump = cli_get(a, "dump-pixels");
    long top;
    av_err err = {{0}};
    if (cli_get_int(a, "top", 5, 0, 16, &top, cmd)) return -1;
    av_class_score best[16];
    if ((dump && dump_pixels(m, image, dump, &err)) ||
        av_trace_from_image(m, image, rp, t, best, (int)top, &err))
        return cli_fail(cmd, &err) ? -1 : -1;
    for (long j = 0; j < top && j < av_model_get_info(m).vocab_size; j++)
        printf("%2ld. %6.2f%%  %s (class %d)\n", j + 1, 100.0 * best[j].prob,
               best[j].label ? best[j].label : "", best[j].id);
    return 0;
}

/* Encoder-decoders: source text or ids, forced target (text or ids) or greedy decoding. */
static int run_pair(av_model *m, const cli_args *a, const char *text, const char *ids_spec,
                    const av_run_params *rp, av_trace **t) {
    const char *cmd = "run", *target = cli_get(a, "target"), *target_ids = cli_get(a, "target-ids");
    long steps;
    av_err err = {{0}};
    if (cli_get_int(a, "steps", 32, 1, 4096, &steps, cmd)) return -1;
    if (target_ids && !ids_spec)
        return cli_failf(cmd, "--target-ids goes with --ids (use --target with --text)") ? -1 : -1;
    if (target && ids_spec)
        return cli_failf(cmd, "--target goes with --text (use --target-ids with --ids)") ? -1 : -1;
    int rc;
    if (ids_spec) {
        int32_t *src = NULL, *tgt = NULL;
        size_t ns = 0, nt = 0;
        rc = cli_parse_ids(ids_spec, &src, &ns, &err) ||
             (target_ids && cli_parse_ids(target_ids, &tgt, &nt, &err)) ||
             av_trace_from_pair_ids(m, src, ns, tgt, nt, (int)steps, rp, t, &err);
        free(src);
        free(tgt);
    } else {
        rc = av_trace_from_pair(m, text, target, (int)steps, rp, t, &err);
    }
    if (rc) return cli_fail(cmd, &err) ? -1 : -1;
    printf("target:");
    for (int i = 0; i < av_trace_n_tokens(*t); i++)
        printf(" %s", av_trace_token(*t, i));
    printf("\n");
    return 0;
}

/* Text-to-image models: the DDIM sampler from --seed (--steps, --guidance), the image and the DAAM maps in
 * the trace. */
static int run_t2i(av_model *m, const cli_args *a, const char *text, int n_threads, av_trace **t) {
    const char *cmd = "run", *seed = cli_get(a, "seed");
    av_t2i_params p = av_t2i_default_params();
    long steps;
    double guidance;
    av_err err = {{0}};
    if (cli_get_int(a, "steps", 0, 1, 100000, &steps, cmd) ||
        cli_get_num(a, "guidance", -1, 0, 1000, "in [0, 1000]", &guidance, cmd))
        return -1;
    if (seed) {
        char *end;
        errno = 0;
        p.seed = strtoull(seed, &end, 10);
        if (end == seed || *end || errno || seed[0] == '-')
            return cli_failf(cmd, "--seed must be an unsigned 64-bit integer, got '%s'", seed) ? -1 : -1;
    }
    p.steps = (int)steps;
    p.guidance = (float)guidance;
    p.n_threads = n_threads;
    if (!text) return cli_failf(cmd, "a text-to-image model takes --text PROMPT") ? -1 : -1;
    if (av_trace_from_t2i(m, text, &p, t, &err)) return cli_fail(cmd, &err) ? -1 : -1;
    printf("image %sx%s, %s steps, seed %s, guidance %s: %s\n", av_trace_meta(*t, "image_size"),
           av_trace_meta(*t, "image_size"), av_trace_meta(*t, "steps"), av_trace_meta(*t, "seed"),
           av_trace_meta(*t, "guidance_scale"), av_trace_meta(*t, "prompt_tokens"));
    return 0;
}

static const cli_opt_spec opts[] = {
    {"model", 1, "PATH      model: llama2.c .bin, .gguf, or Hugging Face directory"},
    {"tokenizer", 1, "PATH  tokenizer file (default: from the model or next to it)"},
    {"text", 1,
     "TEXT       input text (or the last argument); '-' reads stdin, '@FILE' reads FILE ('@@' for a "
     "leading '@')"},
    {"text-file", 1, "PATH  input text from a file ('-': stdin), of any size"},
    {"text-pair", 1,
     "TEXT  BERT-family models: a second sentence ([CLS] text [SEP] pair [SEP], token types 0/1)"},
    {"ids", 1, "LIST        token ids instead of text: \"1,403,407\" or @file.json (a JSON array)"},
    CLI_CHAT_OPTS,
    {"output", 1, "PATH     trace file to write (default: trace.safetensors); also -o"},
    {"o", 1, "PATH          same as --output"},
    {"dtype", 1, "f32|f16   storage type of the attention in the trace (default f32)"},
    {"no-bos", 0, "          do not prepend the BOS token"},
    {"logits", 0, "          also store the logits of every position"},
    {"lazy", 0,
     "            store queries/keys instead of T x T matrices (long inputs; see docs/TRACE_FORMAT.md)"},
    {"overview", 1,
     "N      lazy traces: pooled overview cells a side (default: 256 from 4096 tokens; 0: none)"},
    {"keep-qk", 0, "         full traces: also store queries and keys (the viewer's neuron view)"},
    {"progress", 0, "        show progress on stderr (default: only on a terminal)"},
    {"image", 1, "PATH     image models (ViT): a PNG or JPEG to classify; prints the top classes"},
    {"top", 1, "K           image models: how many classes to print (default 5)"},
    {"dump-pixels", 1,
     "PATH  image models: also write the preprocessed input as safetensors \"pixels\" [3, H, W]"},
    {"target", 1, "TEXT     encoder-decoders: force the decoder on this target (default: greedy decoding)"},
    {"target-ids", 1, "LIST encoder-decoders with --ids: decoder input ids (decoder start token first)"},
    {"steps", 1,
     "N         encoder-decoders: greedy decoding length limit (default 32); text-to-image: DDIM steps"},
    {"seed", 1, "N          text-to-image: seed of the starting noise (default 1)"},
    {"guidance", 1, "W      text-to-image: classifier-free guidance scale (default: the model's)"},
    {"threads", 1, "N       worker threads (default: all cores)"},
    {"help", 0, "            show this help"},
};

int cmd_run(int argc, char **argv) {
    const char *cmd = "run";
    cli_args a;
    int early;
    if (cli_start(argc, argv, opts, sizeof opts / sizeof opts[0],
                  "usage: attnviz run --model PATH [--tokenizer PATH] --text TEXT [-o trace.safetensors]\n"
                  "       attnviz run --model PATH --chat messages.json [--chat-template T.jinja]\n"
                  "       attnviz run --model VIT_DIR --image cat.png [--top 5]\n"
                  "       attnviz run --model ENCDEC_DIR --text \"le chat noir\" [--target \"the black "
                  "cat\"] [--steps N]\n"
                  "       attnviz run --model T2I_DIR --text \"a red circle above a blue square\" [--seed 1] "
                  "[--steps 25] [--guidance W]\n",
                  -1, &a, cmd, &early))
        return early;
    char *text = NULL, *pair = NULL;
    const char *out = cli_output(&a, "trace.safetensors");
    const char *dtype = cli_get(&a, "dtype");
    av_run_params rp = av_run_default_params();
    int rc = 1;
    av_model *m = NULL;
    av_trace *t = NULL;
    av_err err = {{0}};
    const char *ids_spec = cli_get(&a, "ids"), *image = cli_get(&a, "image"), *chat = cli_get(&a, "chat");
    long overview;
    cli_progress prog;
    cli_progress_start(&prog, &a, cmd);
    if (cli_get_text(&a, cmd, "text", "text-file", 1, &text) ||
        cli_get_text(&a, cmd, "text-pair", NULL, 0, &pair) ||
        cli_get_int(&a, "overview", -1, 0, 4096, &overview, cmd))
        goto done;
    if (!text && !ids_spec && !image && !chat) {
        cli_failf(cmd, "no input: give --text TEXT, --chat FILE, --ids LIST or --image PATH");
        goto done;
    }
    if (chat && (text || ids_spec || image)) {
        cli_failf(cmd, "give either --chat or --text / --ids / --image, not both");
        goto done;
    }
    if (image && (text || ids_spec)) {
        cli_failf(cmd, "give either an image or a text, not both");
        goto done;
    }
    if (text && ids_spec) {
        cli_failf(cmd, "give either --text or --ids, not both");
        goto done;
    }
    if (pair && !text) {
        cli_failf(cmd, "--text-pair is the second sentence of a pair: give the first with --text");
        goto done;
    }
    if (dtype && strcmp(dtype, "f32") != 0 && strcmp(dtype, "f16") != 0) {
        cli_failf(cmd, "--dtype must be f32 or f16, got '%s'", dtype);
        goto done;
    }
    rp.dtype = dtype && strcmp(dtype, "f16") == 0 ? AV_DTYPE_F16 : AV_DTYPE_F32;
    rp.add_bos = !cli_has(&a, "no-bos");
    rp.want_logits = cli_has(&a, "logits");
    rp.lazy = cli_has(&a, "lazy");
    rp.keep_qk = cli_has(&a, "keep-qk");
    rp.pool_cells = overview < 0 ? 0 : overview == 0 ? -1 : (int)overview;
    rp.output_path = out; /* full F32 traces (and lazy ones' queries/keys) go straight into this file */
    rp.on_progress = cli_progress_run;
    rp.on_progress_ctx = &prog;
    if ((cli_has(&a, "overview") && !rp.lazy) || (rp.keep_qk && rp.lazy)) {
        cli_failf(cmd, rp.lazy
                           ? "--keep-qk is for full traces (a lazy trace keeps its queries and keys anyway)"
                           : "--overview is for lazy traces (--lazy)");
        goto done;
    }
    if (cli_load_model(&a, cmd, &m)) goto done;
    if (chat) { /* the conversation as the model's template formats it; BOS as its runtime adds it */
        int add_special;
        if (cli_chat_prompt(&a, cmd, chat, av_model_tokenizer(m), &text, &add_special)) goto done;
        rp.add_bos = rp.add_bos && add_special;
    }
    double t0 = av_seconds();
    av_family family = av_model_get_info(m).family;
    if ((cli_has(&a, "seed") || cli_has(&a, "guidance")) && family != AV_FAMILY_T2I) {
        cli_failf(cmd, "--seed and --guidance are for text-to-image models (this one is %s)",
                  av_family_name(family));
        goto done;
    }
    if (pair && family != AV_FAMILY_BERT) {
        cli_failf(cmd, "--text-pair is for BERT-family encoders (this model is %s)", av_family_name(family));
        goto done;
    }
    if (((cli_has(&a, "target") || cli_has(&a, "target-ids")) && family != AV_FAMILY_ENCDEC) ||
        (cli_has(&a, "steps") && family != AV_FAMILY_ENCDEC && family != AV_FAMILY_T2I)) {
        cli_failf(cmd,
                  "--target, --target-ids and --steps are for encoder-decoder models (--steps also for "
                  "text-to-image; this one is %s)",
                  av_family_name(family));
        goto done;
    }
    if (family == AV_FAMILY_T2I) {
        if (image || ids_spec || chat) {
            cli_failf(cmd, "a text-to-image model takes --text PROMPT (not --image, --ids or --chat)");
            goto done;
        }
        if (run_t2i(m, &a, text, rp.n_threads, &t)) goto done;
    } else if (image || family == AV_FAMILY_VIT) {
        if (!image) {
            cli_failf(cmd, "%s is an image model: give --image PATH", av_model_get_info(m).name);
            goto done;
        }
        if (run_image(m, &a, image, &rp, &t)) goto done;
    } else if (family == AV_FAMILY_ENCDEC) {
        if (chat) {
            cli_failf(cmd, "--chat is for decoder-only models (this one is an encoder-decoder)");
            goto done;
        }
        if (run_pair(m, &a, text, ids_spec, &rp, &t)) goto done;
    } else if (ids_spec) {
        int32_t *ids;
        size_t n;
        if (cli_parse_ids(ids_spec, &ids, &n, &err)) {
            cli_fail(cmd, &err);
            goto done;
        }
        int r = av_trace_from_ids(m, ids, n, &rp, &t, &err);
        free(ids);
        if (r) {
            cli_fail(cmd, &err);
            goto done;
        }
    } else if (pair ? av_trace_from_text_pair(m, text, pair, &rp, &t, &err)
                    : av_trace_from_text(m, text, &rp, &t, &err)) {
        cli_fail(cmd, &err);
        goto done;
    }
    cli_progress_end(&prog);
    double t1 = av_seconds();
    if (av_trace_save(t, out, &err)) {
        cli_fail(cmd, &err);
        goto done;
    }
    double t2 = av_seconds();
    av_model_info info = av_model_get_info(m);
    fprintf(stderr, "attnviz run: %d tokens, %d layers x %d heads -> %s (forward %.3f s, write %.3f s)\n",
            av_trace_n_tokens(t), info.n_layers, info.n_heads, out, t1 - t0, t2 - t1);
    rc = 0;
done:
    cli_progress_end(&prog);
    free(text);
    free(pair);
    av_trace_free(t);
    av_model_free(m);
    cli_args_free(&a);
    return rc;
}
