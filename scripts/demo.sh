#!/bin/sh
# What `make demo` runs after building: the project's own demo models, no download, outputs in demo/.
#   1. translates "le chat noir" with models/demo-fr-en (a tiny Marian translator trained by this project,
#      scripts/train_translator.py) by greedy decoding;
#   2. prints the cross-attention of the last decoder layer, averaged over heads, in the terminal;
#   3. writes the standalone viewer demo/index.html and PNG images into demo/;
#   4. does the same for models/induction (attention-only induction-head model) when it is there;
#   5. generates an image with models/demo-t2i and draws each prompt word's DAAM map over it; the image with
#      its per-word maps is also a section of demo/index.html (the PNG inlined), linking demo/t2i.html.
# Needs only the built binary (ATTNVIZ_BIN, default build/attnviz) and the files under models/.
set -e
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
BIN=${ATTNVIZ_BIN:-$ROOT/build/attnviz}
MODEL=models/demo-fr-en
OUT=${ATTNVIZ_DEMO_OUT:-demo} # where the outputs go (the test points it at a scratch folder)
[ -x "$BIN" ] || { echo "demo: $BIN is not built (run 'make')" >&2; exit 1; }
[ -f "$MODEL/model.safetensors" ] || { echo "demo: $MODEL/model.safetensors is missing" >&2; exit 1; }
mkdir -p "$OUT"

echo "== attnviz demo: French -> English with the project's own translator ($MODEL)"
echo
echo "\$ attnviz run --model $MODEL --text \"le chat noir\" -o $OUT/le-chat-noir.safetensors"
"$BIN" run --model "$MODEL" --text "le chat noir" -o "$OUT/le-chat-noir.safetensors"
echo
echo "Cross-attention (rows: English decoder tokens, columns: French source tokens), last decoder layer,"
echo "mean over heads: the row of \"black\" is brightest under \"noir\", the row of \"cat\" under \"chat\"."
echo
echo "\$ attnviz show $OUT/le-chat-noir.safetensors --kind cross --layer -1 --head mean"
"$BIN" show "$OUT/le-chat-noir.safetensors" --kind cross --layer -1 --head mean
"$BIN" render "$OUT/le-chat-noir.safetensors" --kind cross --layer -1 --head mean \
    -o "$OUT/cross-attention.png" >/dev/null
"$BIN" render "$OUT/le-chat-noir.safetensors" --kind cross --grid -o "$OUT/cross-attention-grid.png" >/dev/null
# the page opens where the point is: the last layer's cross-attention, black -> noir
"$BIN" html "$OUT/le-chat-noir.safetensors" -o "$OUT/index.html" --title "attnviz demo: le chat noir" \
    --kind cross --layer -1 --head mean >/dev/null

SENT="le petit chat noir mange la pomme rouge"
echo
echo "\$ attnviz run --model $MODEL --text \"$SENT\" -o $OUT/sentence.safetensors"
"$BIN" run --model "$MODEL" --text "$SENT" -o "$OUT/sentence.safetensors"
"$BIN" render "$OUT/sentence.safetensors" --kind cross --layer -1 --head mean \
    -o "$OUT/sentence-cross-attention.png" >/dev/null
"$BIN" html "$OUT/sentence.safetensors" -o "$OUT/sentence.html" --title "attnviz demo: $SENT" \
    --kind cross --layer -1 --head mean >/dev/null

INDUCTION=models/induction/induction.bin
if [ -f "$INDUCTION" ]; then
    # a random character string repeated: the second copy is predictable only by induction
    TEXT="Xq7 mZp3 vR8k Lw2 Xq7 mZp3 vR8k Lw2"
    echo
    echo "== attnviz demo: induction heads (models/induction, a 2-layer attention-only model trained by this project)"
    echo "\$ attnviz run --model $INDUCTION --text \"$TEXT\" -o $OUT/induction.safetensors"
    "$BIN" run --model "$INDUCTION" --text "$TEXT" -o "$OUT/induction.safetensors"
    echo
    echo "\$ attnviz roles --model $INDUCTION      # which heads do what, from probe sequences"
    "$BIN" roles --model "$INDUCTION"
    "$BIN" roles --model "$INDUCTION" --json > "$OUT/induction-roles.json"
    "$BIN" render "$OUT/induction.safetensors" --grid -o "$OUT/induction-grid.png" >/dev/null
    # the page's Roles tab shows the probe roles (induction, duplicate-token) next to the trace's own
    "$BIN" html "$OUT/induction.safetensors" -o "$OUT/induction.html" --roles "$OUT/induction-roles.json" \
        --title "attnviz demo: induction heads" >/dev/null
    if [ -f models/induction/MODEL_CARD.md ]; then echo "(more in models/induction/MODEL_CARD.md)"; fi
fi

# t2i_section PROMPT GRID_PNG PAGE: adds a section to the viewer page PAGE, before </body>: the image-generation
# example's per-word DAAM grid (inlined as a data: URI, so the page stays one offline file), the caveat and a
# link to the interactive DAAM viewer t2i.html next to it. Written to a temporary file, then renamed.
t2i_section() {
    {
        sed '/<\/body>/,$d' "$3"
        printf '<section id="t2i-demo" style="margin:24px 12px;font:14px sans-serif">\n'
        printf '<h2>Image generation: "%s"</h2>\n' "$1"
        printf '<p>models/demo-t2i (a tiny diffusion model trained by this project) drew the first tile; the others\n'
        printf 'are each prompt word'"'"'s DAAM map (cross-attention summed over all steps, layers and heads) over it.\n'
        printf 'Pick words, steps, layers and heads in the <a href="t2i.html">interactive DAAM viewer</a>.</p>\n'
        printf '<img alt="DAAM maps of every prompt word" style="max-width:100%%" src="data:image/png;base64,'
        base64 -w0 "$2"
        printf '">\n<p><em>These maps are descriptive, not explanatory: they show where the image read each word,\n'
        printf 'not that the word caused what is there.</em></p>\n</section>\n'
        sed -n '/<\/body>/,$p' "$3"
    } >"$3.tmp"
    mv "$3.tmp" "$3"
}

T2I=models/demo-t2i
if [ -f "$T2I/model.safetensors" ]; then
    PROMPT="a red circle above a blue square"
    echo
    echo "== attnviz demo: text-to-image with DAAM word maps ($T2I, a tiny diffusion model trained by this project)"
    echo "\$ attnviz run --model $T2I --text \"$PROMPT\" --seed 1 --steps 25 -o $OUT/t2i.safetensors"
    "$BIN" run --model "$T2I" --text "$PROMPT" --seed 1 --steps 25 -o "$OUT/t2i.safetensors"
    echo
    echo "\$ attnviz show $OUT/t2i.safetensors --word red     # the image, then where \"red\" attended"
    "$BIN" show "$OUT/t2i.safetensors" --word red
    "$BIN" render "$OUT/t2i.safetensors" -o "$OUT/t2i-words.png" >/dev/null
    "$BIN" render "$OUT/t2i.safetensors" --word red -o "$OUT/t2i-red.png" >/dev/null
    "$BIN" html "$OUT/t2i.safetensors" -o "$OUT/t2i.html" --title "attnviz demo: $PROMPT" >/dev/null
    t2i_section "$PROMPT" "$OUT/t2i-words.png" "$OUT/index.html"
    if [ -f "$T2I/MODEL_CARD.md" ]; then echo "(measured quality and the DAAM overlap in $T2I/MODEL_CARD.md)"; fi
fi

echo
echo "== outputs in $OUT/"
for f in index.html cross-attention.png cross-attention-grid.png sentence.html sentence-cross-attention.png \
         induction.html induction-grid.png t2i-words.png t2i-red.png t2i.html; do
    if [ -f "$OUT/$f" ]; then printf '   %-30s %s\n' "$f" "$(du -h "$OUT/$f" | cut -f1)"; fi
done
echo
echo "Open $OUT/index.html in a browser (works offline: one file, no network request). Traces are"
echo "$OUT/*.safetensors, readable from Python (docs/TRACE_FORMAT.md). More in docs/DEMO.md."
