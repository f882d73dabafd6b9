/* attnviz convert: TEMPORARY placeholder until the GGUF/HF writers land. */
#include "cli.h"

int cmd_convert(int argc, char **argv) {
    (void)argc;
    (void)argv;
    return cli_failf("convert", "not built yet");
}
