#!/bin/sh
# attnviz corpus end to end: the report files; bad lines counted with their line numbers (text and JSON Lines);
# every statistic against an independent numpy computation over traces written by `attnviz run`
# (scripts/ref_corpus.py) on the induction model, the encoder-decoder demo and, when ../shared has it,
# stories260K, and a tiny BERT; query/key vectors against lazy traces (Llama and BERT self-attention, an
# encoder-decoder's encoder and cross-attention) and PCA against numpy; equal reports from 1 and 2 threads,
# other chunk sizes, and `mpirun -np 2` / `-np 3` (loopback, oversubscribed); a run killed midway (SIGKILL and
# SIGTERM) resumed to the same report; saved traces; the offline page; one-line errors.
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${ATTNVIZ_BIN:-$ROOT/build/attnviz}
PY=/usr/bin/python3
REF="$ROOT/scripts/ref_corpus.py"
MODEL="$ROOT/models/induction/induction.bin"
DEMO="$ROOT/models/demo-fr-en"
SHARED=${ATTNVIZ_SHARED:-$ROOT/../shared}
STORIES="$SHARED/models/stories260K"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/attnviz-corpus-XXXXXX")
trap 'rm -rf "$TMP"' EXIT INT TERM
ok() { if [ "$2" = 0 ]; then echo "PASS $1"; else echo "FAIL $1: $3"; fi; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
cd "$TMP" || exit 1

# 9 lines: 6 inputs (repeats give the induction heads something to do), an empty line, a line longer than the
# model's 128-token context, a blank line of spaces
LONG=$(printf 'abcdefghij%.0s' $(seq 1 20))
cat >in.txt <<EOF
the cat sat on the mat. the cat sat on the mat.
abc abc abc xyz xyz
once upon a time a dog ran. a dog ran.

$LONG
hello world hello world
   
red green blue red green blue red
to be or not to be
EOF
"$BIN" corpus --model "$MODEL" --input in.txt -o r1 --threads 1 --chunk 3 --top 3 >out 2>err
rc=$?
[ $rc = 0 ] && for f in corpus.json run.json heads.csv quantiles.csv positions.csv special.csv top.csv skipped.csv \
    index.html figures/roles-self.png figures/entropy_norm-self.png figures/positions-self.png; do
    [ -s "r1/$f" ] || { echo "missing r1/$f"; false; } || break
done >missing
[ $rc = 0 ] && [ ! -s missing ] && grep -q "6 inputs" err && "$PY" -c "
import json, sys
d = json.load(open('r1/corpus.json'))
assert d['format'] == 'attnviz-corpus' and d['examples'] == 6 and len(d['heads']) == 8, d['examples']
s = d['skipped']
assert s['total'] == 3 and s['empty_text']['lines'] == [4, 7] and s['too_long']['lines'] == [5], s
assert open('r1/skipped.csv').read() == 'reason,line\nempty_text,4\nempty_text,7\ntoo_long,5\n'
roles = {(h['layer'], h['head']): h['role'] for h in d['heads']}
assert [roles[(1, h)] for h in (0, 2, 3)] == ['induction'] * 3, roles   # the model card's induction heads
assert roles[(0, 1)] == 'previous_token' and roles[(1, 1)] == 'duplicate_token', roles
" 2>perr
ok corpus_report_files_roles_and_skipped_lines $? "rc $rc $(cat missing) $(tail -1 err) $(tail -1 perr)"

# the numpy reference over traces of the good lines, written by `attnviz run`
pairs=""
n=0
while IFS= read -r line; do
    n=$((n + 1))
    case $n in 4 | 5 | 7) continue ;; esac
    "$BIN" run --model "$MODEL" --text "$line" -o "t$n.safetensors" --threads 1 2>/dev/null || echo "run failed on line $n"
    pairs="$pairs $n=t$n.safetensors"
done <in.txt >runerr
# shellcheck disable=SC2086
"$PY" "$REF" stats r1 $pairs >ref 2>&1
ok corpus_stats_match_numpy_induction $? "$(cat runerr) $(head -3 ref)"

"$BIN" corpus --model "$MODEL" --input in.txt -o r2 --threads 2 --chunk 3 --top 3 --quiet 2>err &&
    cmp -s r1/corpus.json r2/corpus.json
ok corpus_two_threads_same_report $? "$(tail -1 err)"

"$BIN" corpus --model "$MODEL" --input in.txt -o r3 --threads 2 --chunk 1 --top 3 --quiet 2>err &&
    "$PY" -c "
import json
a, b = json.load(open('r1/corpus.json')), json.load(open('r3/corpus.json'))
a['settings'].pop('chunk_lines'); b['settings'].pop('chunk_lines')
assert a == b
"
ok corpus_other_chunks_same_report $? "$(tail -1 err)"

# JSON Lines: invalid JSON, a missing field, a number, an empty string; the text under --field
printf '%s\n' '{"t": "the cat sat. the cat sat."}' '{"t": "abc abc"' '{"u": "x"}' '{"t": 5}' '{"t": ""}' \
    '[1, 2]' '{"t": "ok ok ok"}' >in.jsonl
"$BIN" corpus --model "$MODEL" --input in.jsonl --field t -o j1 --quiet 2>err && "$PY" -c "
import json
s = json.load(open('j1/corpus.json'))['skipped']
assert s['invalid_json']['lines'] == [2] and s['missing_field']['lines'] == [3, 4, 6], s
assert s['empty_text']['lines'] == [5] and s['total'] == 5, s
assert json.load(open('j1/corpus.json'))['examples'] == 2
" 2>perr
ok corpus_jsonl_bad_lines $? "$(tail -1 err) $(tail -1 perr)"

# the encoder-decoder demo: enc, dec and cross heads, forced targets; numpy reference on its traces
"$PY" -c "
import json
rows = [l.rstrip('\n').split('\t') for l in open('$DEMO/heldout.tsv')][:4]
with open('fr.jsonl', 'w') as f:
    for fr, en, _ in rows: f.write(json.dumps({'fr': fr, 'en': en}) + '\n')
with open('fr.sh', 'w') as f:
    for i, (fr, en, _) in enumerate(rows): f.write('%d\t%s\t%s\n' % (i + 1, fr, en))
"
"$BIN" corpus --model "$DEMO" --input fr.jsonl --field fr --target-field en -o e1 --threads 1 --quiet 2>err
rc=$?
pairs=""
while IFS="$(printf '\t')" read -r n fr en; do
    "$BIN" run --model "$DEMO" --text "$fr" --target "$en" -o "e$n.safetensors" --threads 1 >/dev/null 2>&1
    pairs="$pairs $n=e$n.safetensors"
done <fr.sh
# shellcheck disable=SC2086
[ $rc = 0 ] && "$PY" "$REF" stats e1 $pairs >ref 2>&1 &&
    "$PY" -c "
import json
d = json.load(open('e1/corpus.json'))
assert [g['kind'] for g in d['groups']] == ['enc', 'dec', 'cross'] and len(d['heads']) == 24
" 2>>ref
ok corpus_stats_match_numpy_encoder_decoder $? "rc $rc $(tail -1 err) $(head -3 ref)"

if [ -r "$STORIES/stories260K.bin" ]; then
    S="--model $STORIES/stories260K.bin --tokenizer $STORIES/tok512.bin"
    printf '%s\n' "Once upon a time, there was a little girl named Lily." "Tom saw a big red ball. Tom wanted the ball." \
        "The dog ran to the park and the dog played." "She was happy." >st.txt
    # shellcheck disable=SC2086
    "$BIN" corpus $S --input st.txt -o s1 --threads 1 --quiet 2>err
    rc=$?
    pairs=""
    n=0
    while IFS= read -r line; do
        n=$((n + 1))
        # shellcheck disable=SC2086
        "$BIN" run $S --text "$line" -o "s$n.safetensors" --threads 1 2>/dev/null
        pairs="$pairs $n=s$n.safetensors"
    done <st.txt
    # shellcheck disable=SC2086
    [ $rc = 0 ] && "$PY" "$REF" stats s1 $pairs >ref 2>&1
    ok corpus_stats_match_numpy_stories260K $? "rc $rc $(tail -1 err) $(head -3 ref)"
else
    echo "SKIP corpus_stats_match_numpy_stories260K: $STORIES/stories260K.bin not found"
fi

# an encoder-only model (bidirectional attention: keys after the query too): the tiny BERT checkpoint of
# scripts/make_tiny_models.py with a 40-piece WordPiece vocabulary written here; statistics and its query/key
# vectors against numpy over traces and lazy traces of `attnviz run`
BERT="--model $ROOT/tests/fixtures/tiny/bert --tokenizer vocab.txt"
{
    printf '%s\n' '[PAD]' '[UNK]' '[CLS]' '[SEP]' '[MASK]' . , the cat sat on mat dog ran a red
    for c in a b c d e f g h i j k l m n o p q r s t u v w x; do echo "##$c"; done
} >vocab.txt
printf '%s\n' "the cat sat on the mat." "the dog ran, the cat sat." "red dog on a red mat" "the cat the cat the cat" >bt.txt
# shellcheck disable=SC2086
"$BIN" corpus $BERT --input bt.txt -o b1 --threads 1 --qk-layer 1 --qk-head 1 --qk-samples 500 --tsne-iters 100 \
    --perplexity 5 --quiet 2>err
rc=$?
pairs=""
lpairs=""
n=0
while IFS= read -r line; do
    n=$((n + 1))
    # shellcheck disable=SC2086
    "$BIN" run $BERT --text "$line" -o "b$n.safetensors" --threads 1 2>/dev/null
    # shellcheck disable=SC2086
    "$BIN" run $BERT --text "$line" --lazy -o "lb$n.safetensors" --threads 1 2>/dev/null
    pairs="$pairs $n=b$n.safetensors"
    lpairs="$lpairs $n=lb$n.safetensors"
done <bt.txt
# shellcheck disable=SC2086
[ $rc = 0 ] && "$PY" "$REF" stats b1 $pairs >ref 2>&1 && "$PY" "$REF" qk b1 $lpairs >>ref 2>&1 && "$PY" -c "
import json
d = json.load(open('b1/corpus.json'))
assert d['examples'] == 4 and d['skipped']['total'] == 0 and d['model']['family'] == 'bert', d['model']
assert d['position_bins'][0]['hi'] < 0, d['position_bins'][0]   # offsets of keys after the query
" 2>>ref
ok corpus_bert_stats_and_qk_match_numpy $? "rc $rc $(tail -1 err) $(head -3 ref)"
"$BIN" corpus --model "$ROOT/tests/fixtures/tiny/bert" --input bt.txt -o b2 >out 2>err
rc=$?
[ $rc = 1 ] && [ "$(wc -l <err)" = 1 ] && grep -q "has no tokenizer: pass --tokenizer" err && [ ! -e b2/corpus.json ]
ok corpus_model_without_tokenizer_refused $? "rc $rc: $(cat err)"

# query/key map: every vector of the good lines (the sample is larger than the corpus) against lazy traces,
# normalization + PCA against numpy, the t-SNE map and the figures
"$BIN" corpus --model "$MODEL" --input in.txt -o q1 --qk-layer 1 --qk-head 2 --qk-samples 5000 --tsne-iters 300 \
    --perplexity 10 --quiet 2>err
rc=$?
pairs=""
n=0
while IFS= read -r line; do
    n=$((n + 1))
    case $n in 4 | 5 | 7) continue ;; esac
    "$BIN" run --model "$MODEL" --text "$line" --lazy -o "l$n.safetensors" --threads 1 2>/dev/null
    pairs="$pairs $n=l$n.safetensors"
done <in.txt
# shellcheck disable=SC2086
[ $rc = 0 ] && "$PY" "$REF" qk q1 $pairs >ref 2>&1 && "$PY" -c "
import json
d = json.load(open('q1/corpus.json'))
q = d['qk']
n = d['tokens']
assert sum(p['type'] == 'query' for p in q['points']) == n and sum(p['type'] == 'key' for p in q['points']) == n
assert q['tsne'] and all(len(p['tsne']) == 2 for p in q['points'])
" 2>>ref && [ -s q1/figures/qk-pca.png ] && [ -s q1/figures/qk-tsne-position.png ]
ok corpus_qk_vectors_and_pca_match_numpy $? "rc $rc $(tail -1 err) $(head -3 ref)"

MPI_OK=""
if ! command -v mpirun >/dev/null 2>&1; then
    MPI_WHY="mpirun not found (Debian: openmpi-bin libopenmpi-dev)"
elif ! timeout 60 mpirun --oversubscribe -np 2 true >mpiout 2>&1; then
    MPI_WHY="mpirun cannot start 2 processes here: $(grep -v '^$' mpiout | head -1)"
else
    MPI_OK=1
fi
# query/key map of an encoder-decoder: its encoder's self-attention (the default kind) and cross-attention
# (decoder queries over encoder keys, each side with its own labels), against lazy traces of the same forced
# pairs; the cross map is the same from 2 threads and from 2 MPI ranks
pairs=""
while IFS="$(printf '\t')" read -r n fr en; do
    "$BIN" run --model "$DEMO" --text "$fr" --target "$en" --lazy -o "le$n.safetensors" --threads 1 >/dev/null 2>&1
    pairs="$pairs $n=le$n.safetensors"
done <fr.sh
QE="--model $DEMO --input fr.jsonl --field fr --target-field en --chunk 1 --tsne-iters 100 --perplexity 5 --quiet"
for spec in "enc 1 3" "cross 0 1"; do
    set -- $spec
    kind_opt=""
    [ "$1" = cross ] && kind_opt="--qk-kind cross"
    # shellcheck disable=SC2086
    "$BIN" corpus $QE $kind_opt --qk-layer "$2" --qk-head "$3" -o "qe-$1" --threads 1 2>err
    rc=$?
    # shellcheck disable=SC2086
    [ $rc = 0 ] && "$PY" "$REF" qk "qe-$1" $pairs >ref 2>&1 && "$PY" -c "
import json
q = json.load(open('qe-$1/corpus.json'))['qk']
assert q['kind'] == '$1' and q['layer'] == $2 and q['head'] == $3, q['kind']
assert {p['type'] for p in q['points']} == {'query', 'key'} and q['tsne']
" 2>>ref
    ok "corpus_qk_encoder_decoder_$1_matches_lazy_traces" $? "rc $rc $(tail -1 err) $(head -3 ref)"
done
# shellcheck disable=SC2086
"$BIN" corpus $QE --qk-kind cross --qk-layer 0 --qk-head 1 -o qe-cross2 --threads 2 2>err
rc=$?
[ $rc = 0 ] && cmp -s qe-cross/corpus.json qe-cross2/corpus.json && cmp -s qe-cross/qk.csv qe-cross2/qk.csv
ok corpus_qk_cross_same_from_2_threads $? "rc $rc $(tail -1 err)"
if [ -n "$MPI_OK" ]; then
    # shellcheck disable=SC2086
    mpirun --oversubscribe --bind-to none -np 2 "$BIN" corpus $QE --qk-kind cross --qk-layer 0 --qk-head 1 \
        -o qe-cross-mpi --threads 1 >out 2>err
    rc=$?
    [ $rc = 0 ] && cmp -s qe-cross/corpus.json qe-cross-mpi/corpus.json
    ok corpus_qk_cross_same_from_mpirun_np2 $? "rc $rc: $(grep -v '^$' err | tail -2)"
else
    echo "SKIP corpus_qk_cross_same_from_mpirun_np2: $MPI_WHY"
fi

if [ -n "$MPI_OK" ]; then
    for np in 2 3; do
        mpirun --oversubscribe --bind-to none -np $np "$BIN" corpus --model "$MODEL" --input in.txt -o "m$np" \
            --threads 1 --chunk 3 --top 3 --quiet >out 2>err
        rc=$?
        [ $rc = 0 ] && cmp -s r1/corpus.json "m$np/corpus.json" && grep -q "\"ranks\": $np" "m$np/run.json"
        ok "corpus_mpirun_np${np}_same_report" $? "rc $rc: $(grep -v '^$' err | tail -2)"
    done
    mpirun --oversubscribe --bind-to none -np 2 "$BIN" corpus --model "$MODEL" --input in.txt -o m2 --threads 1 \
        --chunk 3 --top 3 --quiet >out 2>err
    rc=$?
    [ $rc = 0 ] && grep -q '"chunks_resumed": 3' m2/run.json && cmp -s r1/corpus.json m2/corpus.json
    ok corpus_mpirun_rerun_resumes_complete_state $? "rc $rc: $(tail -1 err)"
    "$BIN" corpus --model "$MODEL" --input in.txt -o m2 --threads 1 --chunk 3 --top 3 --quiet >out 2>err
    rc=$?
    [ $rc = 1 ] && [ "$(wc -l <err)" = 1 ] && grep -q "run with 2 processes: resume with -np 2.*--fresh" err
    ok corpus_state_of_other_rank_count_refused $? "rc $rc: $(cat err)"
else
    for t in np2_same_report np3_same_report rerun_resumes_complete_state; do echo "SKIP corpus_mpirun_$t: $MPI_WHY"; done
    echo "SKIP corpus_state_of_other_rank_count_refused: $MPI_WHY"
fi

# resuming: kill a run midway (after its first state file), restart, compare with an uninterrupted run
BIG="$MODEL"
for i in $(seq 1 300); do echo "line $i: the cat sat on the mat and the dog sat on the log $i times. the cat sat."; done >big.txt
"$BIN" corpus --model "$BIG" --input big.txt -o full --threads 1 --chunk 2 --quiet 2>err
for sig in KILL TERM; do
    rm -rf "k$sig"
    "$BIN" corpus --model "$BIG" --input big.txt -o "k$sig" --threads 1 --chunk 2 --checkpoint 0 --quiet 2>"err$sig" &
    pid=$!
    i=0
    while [ ! -f "k$sig/.state/rank-0-of-1.bin" ] && [ $i -lt 400 ]; do sleep 0.02; i=$((i + 1)); done
    kill -$sig $pid
    wait $pid 2>/dev/null
    rc=$?
    "$BIN" corpus --model "$BIG" --input big.txt -o "k$sig" --threads 1 --chunk 2 --checkpoint 0 --quiet 2>err
    rc2=$?
    resumed=$(sed -n 's/.*"chunks_resumed": \([0-9]*\).*/\1/p' "k$sig/run.json")
    want_rc=137
    [ $sig = TERM ] && want_rc=130
    [ $rc = $want_rc ] && [ $rc2 = 0 ] && [ "${resumed:-0}" -ge 1 ] && [ "$resumed" -lt 150 ] &&
        cmp -s full/corpus.json "k$sig/corpus.json" && { [ $sig = KILL ] || grep -q "interrupted with" "err$sig"; }
    ok "corpus_resume_after_SIG$sig" $? "rc $rc (want $want_rc), rerun rc $rc2, resumed ${resumed:-?} of 150 chunks: $(tail -1 err)"
done

# saved traces: each head's best example of its role, linked from the page data
"$BIN" corpus --model "$MODEL" --input in.txt -o t1 --save-traces 1 --quiet 2>err && "$PY" -c "
import json, os
d = json.load(open('t1/corpus.json'))
linked = [e for e in d['examples_text'] if e['trace']]
assert linked and all(os.path.getsize('t1/' + e['trace']) > 0 for e in linked)
assert all(os.path.exists('t1/traces/line-%d.safetensors' % e['line']) for e in linked)
for h in d['heads']:
    r = h['role'] if h['role'] != 'none' else max(h['scores'], key=lambda k: h['scores'][k] or -1)
    best = h['top'][r][0]['line']
    assert any(e['line'] == best and e['trace'] for e in d['examples_text']), (h['layer'], h['head'], r)
" 2>perr
ok corpus_save_traces $? "$(tail -1 err) $(tail -1 perr)"

# the page: offline (no network references), with the report's data inline
"$PY" -c "
import json, re
html = open('q1/index.html').read()
assert not re.search(r'(src|href)=[\"\\']?(https?:)?//', html), 'network reference'
m = re.search(r'<script type=\"application/json\" id=\"corpus-data\">(.*?)</script>', html, re.S)
data = json.loads(m.group(1))
ref = json.load(open('q1/corpus.json'))
assert len(data['heads']) == len(ref['heads']) and len(data['qk']['points']) == len(ref['qk']['points'])
assert len(data['colormaps']['viridis']) == 768
" 2>perr
ok corpus_html_offline_with_data $? "$(tail -1 perr)"

"$BIN" corpus --model "$MODEL" --input in.txt -o p1 --progress --fresh 2>err
grep -q "inputs/s" err && grep -q "ETA" err
ok corpus_progress_on_request $? "$(cat err)"

# one-line errors, nonzero exit
"$BIN" corpus --model "$MODEL" -o x1 >out 2>err
rc=$?
[ $rc = 2 ] && [ "$(wc -l <err)" = 1 ] && grep -q "input PATH is required" err
ok corpus_needs_input $? "rc $rc: $(cat err)"
"$BIN" corpus --model "$MODEL" --input missing.txt -o x2 >out 2>err
rc=$?
[ $rc = 1 ] && [ "$(wc -l <err)" = 1 ] && grep -q "missing.txt" err
ok corpus_missing_input $? "rc $rc: $(cat err)"
"$BIN" corpus --model "$DEMO" --input fr.jsonl --field fr --qk-layer 0 --qk-kind self -o x3 >out 2>err
rc=$?
[ $rc = 1 ] && [ "$(wc -l <err)" = 1 ] && grep -q "qk-kind self: demo-fr-en has enc, dec and cross attention" err
ok corpus_qk_kind_of_the_model $? "rc $rc: $(cat err)"
"$BIN" corpus --model "$MODEL" --input in.txt --qk-layer 0 --qk-kind sideways -o x3 >out 2>err
rc=$?
[ $rc = 1 ] && [ "$(wc -l <err)" = 1 ] && grep -q "qk-kind must be self, enc, dec or cross, got 'sideways'" err
ok corpus_qk_kind_unknown $? "rc $rc: $(cat err)"
"$BIN" corpus --model "$MODEL" --input in.txt --qk-layer 5 -o x4 >out 2>err
rc=$?
[ $rc = 1 ] && grep -q "layers 0..1" err
ok corpus_qk_layer_range $? "rc $rc: $(cat err)"
"$BIN" corpus --model "$MODEL" --input in.txt -o r1 --top 4 --chunk 3 --threads 1 >out 2>err
rc=$?
[ $rc = 1 ] && grep -q "other settings.*--fresh" err && cmp -s r1/corpus.json r2/corpus.json
ok corpus_state_of_other_settings_refused $? "rc $rc: $(cat err)"
