/* The files of web/ embedded at build time: tools/embed.c writes the table av_web_assets (build/gen/); this
 * is its one lookup, shared by the standalone HTML page (render/html.c) and the server (server/static.c). */
#include "core.h"

#include <string.h>

extern const av_asset av_web_assets[];
extern const int av_web_assets_count;

const av_asset *av_asset_find(const char *name) {
    for (int i = 0; i < av_web_assets_count; i++)
        if (strcmp(av_web_assets[i].name, name) == 0) return &av_web_assets[i];
    return NULL;
}
