/* attnviz show: TEMPORARY placeholder until the terminal renderer lands. */
#include "cli.h"

int cmd_show(int argc, char **argv) {
    (void)argc;
    (void)argv;
    return cli_failf("show", "not built yet");
}
