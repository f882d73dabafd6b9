#!/bin/sh
# Attribution benchmark (docs/BENCHMARKS.md#attribution; run on demand, not part of the tests): `attnviz
# attribute` against the same methods in plain PyTorch (bench/torch_attrib.py: Captum's algorithms written
# out), same model, same input, same thread count, in the same run. Two shapes:
#   small  stories260K (../shared) with a BENCH_SMALL_TOKENS-token source: every method (occlusion, shapley
#          with BENCH_SAMPLES permutations, saliency, ixg, ig with BENCH_STEPS points, attn-grad);
#   large  the synthetic 1B Llama shape (bench/make_synth_llama.py, F32 weights so both sides compute in
#          float32 from the same numbers) with BENCH_LAYERS layers (22: TinyLlama-1.1B) and a
#          BENCH_TOKENS-token source: occlusion and ig (the issue's benchmark). attnviz runs every perturbed
#          input and every point; PyTorch, hours on 2 cores, is timed on BENCH_TORCH_SUBSET perturbed inputs
#          (evenly spaced positions) and the first BENCH_TORCH_IG_POINTS points and extrapolated per input
#          or point (each is a full pass of the same cost); its occlusion values at those positions are
#          compared with attnviz's.
# ig also runs with --batch 1 (one point per pass) in the same run: the speedup of batched points.
# Source = BOS + random ids (torch's generator, seed 0), one target token, baseline token 0. Prints the machine
# (CPU model, load average) and one JSON line per shape and method with the seconds of both and their ratio;
# the attributions' sums are compared as a check that both computed the same thing (for shapley the sum over
# positions of every permutation is log p(input) - log p(all baseline), whatever the permutations).
#   BENCH_SHAPES ("small large"), BENCH_THREADS (2), BENCH_TOKENS (512), BENCH_LAYERS (22),
#   BENCH_SMALL_TOKENS (128), BENCH_STEPS (32), BENCH_SAMPLES (8), BENCH_TORCH_BATCH (4: sequences per
#   PyTorch forward; IG's autograd keeps every layer's activations of the batch), BENCH_TORCH_SUBSET (16),
#   BENCH_TORCH_IG_POINTS (4), BENCH_DIR.
# The full large shape is hours of compute on 2 cores (512 forward passes of up to 512 tokens through 1.1 B
# parameters, twice); BENCH_LAYERS=2 BENCH_TOKENS=64 is a quick run.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
PY=/usr/bin/python3
SHAPES=${BENCH_SHAPES:-small large}
THREADS=${BENCH_THREADS:-2}
TOKENS=${BENCH_TOKENS:-512}
LAYERS=${BENCH_LAYERS:-22}
SMALL_TOKENS=${BENCH_SMALL_TOKENS:-128}
STEPS=${BENCH_STEPS:-32}
SAMPLES=${BENCH_SAMPLES:-8}
TB=${BENCH_TORCH_BATCH:-4}
TSUB=${BENCH_TORCH_SUBSET:-16}
TPTS=${BENCH_TORCH_IG_POINTS:-4}
DIR=${BENCH_DIR:-/tmp/attnviz-bench}
BIN=$ROOT/build/attnviz
mkdir -p "$DIR"
export OMP_WAIT_POLICY=PASSIVE
[ -x "$BIN" ] || {
    echo "attrib_bench: build/attnviz missing (run make)" >&2
    exit 1
}
echo "== machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores;" \
    "load average $(cut -d' ' -f1-3 /proc/loadavg) (before); PyTorch $($PY -c 'import torch; print(torch.__version__)');" \
    "threads $THREADS, PyTorch batch $TB"

# draw_ids MODEL TOKENS OUTDIR: OUTDIR/src.json (BOS and TOKENS - 1 random ids) and OUTDIR/target (one more)
draw_ids() {
    $PY - "$1" "$2" "$3" <<'EOF'
import json, os, struct, sys
sys.path.insert(0, "bench")
from torch_attrib import draw_ids
model, n, d = sys.argv[1], int(sys.argv[2]), sys.argv[3]
if os.path.isdir(model):
    vocab = json.load(open(model + "/config.json"))["vocab_size"]
else:  # llama2.c header: dim, hidden, layers, heads, kv heads, vocab (negative: unshared), seq_len
    vocab = abs(struct.unpack("7i", open(model, "rb").read(28))[5])
ids = draw_ids(n, vocab, 0)
json.dump(ids[:n], open(d + "/src.json", "w"))
open(d + "/target", "w").write(str(ids[n]))
EOF
}

# c_time FILE: attnviz's own timing in its stderr FILE (the method, without loading the model or writing)
c_time() { sed -n 's/.*(\([0-9.]*\) s)$/\1/p' "$1"; }

# bench_shape NAME MODEL TOKENS METHODS(comma list) [TORCH OPTIONS]: times every method on both sides, prints
# the JSON lines
bench_shape() {
    name=$1 model=$2 tokens=$3 methods=$4
    shift 4
    d=$DIR/$name
    mkdir -p "$d"
    draw_ids "$model" "$tokens" "$d"
    target=$(cat "$d/target")
    times=""
    for m in $(echo "$methods" | tr , ' '); do
        "$BIN" attribute --model "$model" --ids "@$d/src.json" --target-ids "$target" --method "$m" --baseline 0 \
            --steps "$STEPS" --samples "$SAMPLES" --no-attention --quiet --threads "$THREADS" \
            -o "$d/c_$m.safetensors" >/dev/null 2>"$d/c_$m.err" || {
            cat "$d/c_$m.err" >&2
            exit 1
        }
        times="$times $m=$(c_time "$d/c_$m.err")"
    done
    b1=0
    case ",$methods," in *,ig,*) # the same IG with one point per pass
        "$BIN" attribute --model "$model" --ids "@$d/src.json" --target-ids "$target" --method ig --baseline 0 \
            --steps "$STEPS" --batch 1 --no-attention --quiet --threads "$THREADS" -o "$d/c_ig1.safetensors" \
            >/dev/null 2>"$d/c_ig1.err" || {
            cat "$d/c_ig1.err" >&2
            exit 1
        }
        b1=$(c_time "$d/c_ig1.err")
        ;;
    esac
    $PY bench/torch_attrib.py --model "$model" --ids "$d/src.json" --target "$target" --threads "$THREADS" \
        --steps "$STEPS" --samples "$SAMPLES" --batch "$TB" --methods "$methods" "$@" >"$d/torch.json"
    $PY - "$name" "$d" "$tokens" "$b1" $times <<'EOF'
import json, sys
sys.path.insert(0, "scripts")
import safetensors_np as st
name, d, tokens, ig_batch1 = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
t = json.load(open(d + "/torch.json"))
load = open("/proc/loadavg").read().split()[:3]
for arg in sys.argv[5:]:
    m, c_s = arg.split("=")
    c_s = float(c_s)
    tensors, _ = st.read(d + "/c_%s.safetensors" % m)
    c_sum = float(tensors["attr." + m].sum())
    t_s = t["seconds_" + m]
    line = {"shape": name, "method": m, "layers": t["n_layers"], "tokens": tokens, "attnviz_s": c_s,
            "torch_s": t_s, "torch_over_attnviz": round(t_s / c_s, 2), "attnviz_sum": round(c_sum, 4),
            "torch_sum": round(t[m + "_sum"], 4), "load_after": load}
    if m == "ig" and ig_batch1 > 0:  # batched points against one point per pass
        line.update(attnviz_s_batch1=ig_batch1, batch_speedup=round(ig_batch1 / c_s, 2))
    measured = t.get(m + "_measured")
    if measured:  # PyTorch timed on a subset and extrapolated: say so; compare the values it has
        line["torch_measured"] = {k: v for k, v in measured.items() if k not in ("positions", "values")}
        line.pop("attnviz_sum"), line.pop("torch_sum")
        if "positions" in measured:
            ours = tensors["attr." + m][0]
            line["max_abs_diff_on_subset"] = float(max(abs(ours[j] - v) for j, v in
                                                       zip(measured["positions"], measured["values"])))
    print(json.dumps(line))
EOF
}

for shape in $SHAPES; do
    case $shape in
    small)
        MODEL=../shared/models/stories260K/stories260K.bin
        if [ -f "$MODEL" ]; then
            bench_shape small "$MODEL" "$SMALL_TOKENS" occlusion,shapley,saliency,ixg,ig,attn-grad
        else
            echo "SKIP small: $MODEL absent"
        fi
        ;;
    large)
        SYN=$DIR/synth-1b-f32-$LAYERS
        [ -f "$SYN/config.json" ] ||
            $PY bench/make_synth_llama.py --preset 1b --layers "$LAYERS" --dtype f32 --out "$SYN" >/dev/null
        bench_shape "large-${LAYERS}L-${TOKENS}" "$SYN" "$TOKENS" occlusion,ig --occlusion-subset "$TSUB" \
            --ig-points "$TPTS"
        ;;
    *)
        echo "attrib_bench: unknown shape '$shape' (small, large)" >&2
        exit 2
        ;;
    esac
done
