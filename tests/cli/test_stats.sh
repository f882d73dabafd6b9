#!/bin/sh
# attnviz stats and attnviz roles from the command line, on the project's own attention-only demo model
# (models/induction, always present): the per-head table in text, CSV and JSON (parsed by Python's json),
# --layer, --rollout / --flow / --aggregate / --vnorm in JSON, the flow size guard's message, roles naming the
# induction heads of the model card, and one-line errors with a nonzero exit.
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${ATTNVIZ_BIN:-$ROOT/build/attnviz}
PY=/usr/bin/python3
MODEL="$ROOT/models/induction/induction.bin"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/attnviz-stats-XXXXXX")
trap 'rm -rf "$TMP"' EXIT INT TERM
ok() { if [ "$2" = 0 ]; then echo "PASS $1"; else echo "FAIL $1: $3"; fi; }

# a repeated phrase: the induction heads have something to find
TEXT="the cat sat on the mat. the cat sat on the mat."
if ! "$BIN" run --model "$MODEL" --text "$TEXT" -o "$TMP/t.safetensors" 2>"$TMP/err"; then
    echo "FAIL stats_cli_setup: attnviz run on $MODEL failed: $(tail -1 "$TMP/err")"
    exit 0
fi
t="$TMP/t.safetensors"
NT=$(printf '%s' " $TEXT" | wc -c) # the tokenizer's dummy-prefix space, one token per character
NT=$((NT + 1))                      # and BOS

"$BIN" stats "$t" >"$TMP/out" 2>"$TMP/err"
rc=$?
rows=$(grep -cE '^ +[0-9]+ +[0-9]+ ' "$TMP/out")
[ $rc = 0 ] && grep -q "layer head  entropy" "$TMP/out" && [ "$rows" = 8 ]
ok stats_text_table $? "rc $rc, $rows head rows (want 8): $(head -3 "$TMP/out")"

"$BIN" stats "$t" --csv --layer -1 >"$TMP/out.csv" 2>"$TMP/err"
rc=$?
head -1 "$TMP/out.csv" | grep -q '^layer,head,entropy,entropy_norm,distance,first,self,prev,special,punct,uniformity,first_norm,role,role_score$' &&
    [ "$(wc -l <"$TMP/out.csv")" = 5 ] && [ "$(cut -d, -f1 "$TMP/out.csv" | sort -u | tr '\n' ' ')" = "1 layer " ] &&
    awk -F, 'NR > 1 && NF != 14 { exit 1 }' "$TMP/out.csv"
ok stats_csv_layer_filter $? "rc $rc: $(head -3 "$TMP/out.csv")"

"$BIN" stats "$t" --json --rollout --flow --aggregate max --heads '1.*' --vnorm >"$TMP/out.json" 2>"$TMP/err"
rc=$?
"$PY" - "$TMP/out.json" "$NT" <<'PYEOF' 2>"$TMP/perr"
import json, sys
d = json.load(open(sys.argv[1]))
T = int(sys.argv[2])
assert d["format"] == "attnviz-stats" and d["kind"] == "self" and d["n_layers"] == 2 and d["n_heads"] == 4, d
assert d["n_tokens"] == T and len(d["tokens"]) == T and d["tokens"][0] == "<s>", (T, d["tokens"][:3])
assert len(d["heads"]) == 8
for h in d["heads"]:
    for k in ("entropy", "entropy_norm", "distance", "first", "self", "prev", "special", "punct", "uniformity",
              "first_norm", "role", "role_score", "scores"):
        assert k in h, k
    assert h["role"] in ("previous_token", "first_token", "self", "broad", "none"), h["role"]
for key in ("rollout", "flow", "aggregate"):
    m = d[key]
    assert len(m) == T and all(len(r) == T for r in m), key
    assert d[key + "_info"]["rows"] == T
for key in ("rollout", "flow"):  # rows are distributions, causal (nothing above the diagonal)
    for i, r in enumerate(d[key]):
        assert abs(sum(r) - 1) < 1e-4, (key, i, sum(r))
        assert all(x == 0 for x in r[i + 1:]), (key, i)
assert d["aggregate_info"]["heads"] == ["1.0", "1.1", "1.2", "1.3"] and d["aggregate_info"]["op"] == "max"
v = d["vnorm"]
assert len(v) == 2 and len(v[0]) == 4 and len(v[0][0]) == T and all(x > 0 for x in v[1][3])
PYEOF
ok stats_json_rollout_flow_aggregate_vnorm $? "rc $rc $(tail -1 "$TMP/err") $(tail -1 "$TMP/perr")"

"$BIN" stats "$t" --flow --flow-limit 1000 >"$TMP/out" 2>"$TMP/err"
rc=$?
[ $rc = 1 ] && [ "$(wc -l <"$TMP/err")" = 1 ] && grep -q "^attnviz stats: attention flow on $NT tokens x 2 layers is too expensive" "$TMP/err" &&
    grep -q "at most 4 tokens" "$TMP/err"
ok stats_flow_size_guard $? "rc $rc: $(cat "$TMP/err")"

"$BIN" stats "$TMP/missing.safetensors" >"$TMP/out" 2>"$TMP/err"
rc=$?
[ $rc = 1 ] && [ "$(wc -l <"$TMP/err")" = 1 ] && grep -q "^attnviz stats: .*missing.safetensors" "$TMP/err"
ok stats_missing_file $? "rc $rc: $(cat "$TMP/err")"

"$BIN" stats "$t" --layer 2 >"$TMP/out" 2>"$TMP/err"
rc=$?
[ $rc = 1 ] && grep -q "out of range: the trace has self layers 0..1" "$TMP/err"
ok stats_bad_layer $? "rc $rc: $(cat "$TMP/err")"

"$BIN" stats "$t" --csv --rollout >"$TMP/out" 2>"$TMP/err"
[ $? = 1 ] && grep -q "use --json" "$TMP/err"
ok stats_csv_rejects_matrices $? "$(cat "$TMP/err")"

# roles: the heads the model card names
"$BIN" roles --model "$MODEL" --json >"$TMP/roles.json" 2>"$TMP/err"
rc=$?
"$PY" - "$TMP/roles.json" "$ROOT/models/induction/MODEL_CARD.md" <<'PYEOF' 2>"$TMP/perr"
import json, re, sys
d = json.load(open(sys.argv[1]))
card = open(sys.argv[2]).read()
named = re.search(r"^- Induction heads \(layer\.head\): (.*)$", card, re.M).group(1).split(", ")
assert d["format"] == "attnviz-roles" and d["model"] == "induction" and d["n_layers"] == 2
p = d["probe"]
assert (p["seq_len"], p["samples"], p["seed"]) == (32, 4, 1) and p["text"].startswith("The little dog"), p
assert p["text_tokens"] == min(128, len(p["text"]) + 2), p  # BOS + dummy-prefix space + one token a character
assert sorted(d["summary"]["induction"]) == sorted(named), (d["summary"], named)
for h in d["heads"]:
    assert set(h["scores"]) == {"previous_token", "first_token", "self", "broad", "duplicate_token", "induction"}
    assert h["role"] == "none" or h["score"] == h["scores"][h["role"]]
PYEOF
ok roles_json_matches_model_card $? "rc $rc $(tail -1 "$TMP/err") $(tail -1 "$TMP/perr")"

"$BIN" roles --model "$MODEL" --seq-len 16 --samples 2 --seed 7 >"$TMP/out" 2>"$TMP/err"
rc=$?
[ $rc = 0 ] && grep -q "2 x \[BOS + 16 random tokens repeated twice\] (seed 7)" "$TMP/out" &&
    grep -qE "^induction +heads: " "$TMP/out"
ok roles_text $? "rc $rc: $(head -2 "$TMP/out") $(cat "$TMP/err")"

"$BIN" roles --model "$MODEL" --seq-len 200 >"$TMP/out" 2>"$TMP/err"
rc=$?
[ $rc = 1 ] && [ "$(wc -l <"$TMP/err")" = 1 ] && grep -q "use --seq-len 63 or less" "$TMP/err"
ok roles_probe_too_long $? "rc $rc: $(cat "$TMP/err")"

"$BIN" roles --seq-len 8 >"$TMP/out" 2>"$TMP/err"
[ $? = 1 ] && grep -q "^attnviz roles: --model PATH is required" "$TMP/err"
ok roles_needs_model $? "$(cat "$TMP/err")"
