/* Fuzz harness of the chat templates: a Jinja template and the JSON messages it formats, from one input.
 *
 * Input: the template, a NUL byte, then the messages (an OpenAI-style JSON array, or {"messages": [...],
 * ...}); without a NUL byte the whole input is the template and the messages are one user turn. Every outcome
 * must be a rendering or a one-line error: no crash, no hang (the interpreter bounds steps, depth, memory and
 * output), no leak. Seeds: fuzz/corpus/chat_template (the template fixtures of tests/chat with one message
 * list each). */
#include "attnviz.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const char default_messages[] = "[{\"role\": \"user\", \"content\": \"Hi\"}]";
    const uint8_t *nul = memchr(data, 0, size);
    size_t tlen = nul ? (size_t)(nul - data) : size;
    char *tmpl = malloc(tlen + 1);
    if (!tmpl) return 0;
    memcpy(tmpl, data, tlen);
    tmpl[tlen] = 0;
    const char *msgs = nul ? (const char *)nul + 1 : default_messages;
    size_t mlen = nul ? size - tlen - 1 : sizeof default_messages - 1;
    av_chat_params p = av_chat_default_params();
    p.chat_template = tmpl;
    p.bos_token = "<s>";
    p.eos_token = "</s>";
    p.now = 1721995200; /* a fixed date: the same input renders the same */
    char *text = NULL;
    int add_special;
    av_err err;
    if (av_chat_format(NULL, msgs, mlen, &p, &text, &add_special, &err) == 0 &&
        strlen(text) > ((size_t)64 << 20))
        abort(); /* the output bound was not applied */
    free(text);
    free(tmpl);
    return 0;
}
