/* The options of chat prompts shared by run, generate, tokenize and chat: --chat FILE (the conversation),
 * --chat-template FILE (instead of the model's), --no-generation-prompt, --chat-date,
 * --bos-token/--eos-token. */
#include "cli.h"
#include "core/core.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CHAT_FILE_MAX ((size_t)64 << 20)

/* "YYYY-MM-DD" (noon, local time) -> seconds since the epoch; -1 when malformed. */
static int64_t parse_date(const char *s) {
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    char extra;
    if (sscanf(s, "%4d-%2d-%2d%c", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &extra) != 3 || tm.tm_mon < 1 ||
        tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31)
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    tm.tm_hour = 12;
    tm.tm_isdst = -1;
    return (int64_t)mktime(&tm);
}

int cli_chat_prompt(const cli_args *a, const char *cmd, const char *messages_path, const av_tokenizer *tok,
                    char **text, int *add_special) {
    av_chat_params p = av_chat_default_params();
    av_err err = {{0}};
    char *msgs = NULL, *tmpl = NULL;
    size_t n_msgs = 0, n_tmpl = 0;
    const char *date = cli_get(a, "chat-date"), *tmpl_path = cli_get(a, "chat-template");
    int rc = -1;
    p.add_generation_prompt = !cli_has(a, "no-generation-prompt");
    p.bos_token = cli_get(a, "bos-token");
    p.eos_token = cli_get(a, "eos-token");
    if (date && (p.now = parse_date(date)) < 0) {
        cli_failf(cmd, "--chat-date must be YYYY-MM-DD, got '%s'", date);
        return -1;
    }
    if (av_file_read_all(messages_path, CHAT_FILE_MAX, &msgs, &n_msgs, &err) ||
        (tmpl_path && av_file_read_all(tmpl_path, CHAT_FILE_MAX, &tmpl, &n_tmpl, &err))) {
        cli_fail(cmd, &err);
        goto done;
    }
    if (tmpl && strlen(tmpl) != n_tmpl) {
        cli_failf(cmd, "%s: a chat template cannot hold NUL bytes", tmpl_path);
        goto done;
    }
    p.chat_template = tmpl;
    if (av_chat_format(tok, msgs, n_msgs, &p, text, add_special, &err)) {
        cli_fail(cmd, &err);
        goto done;
    }
    rc = 0;
done:
    free(msgs);
    free(tmpl);
    return rc;
}
