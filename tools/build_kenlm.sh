#!/usr/bin/env bash
# Optional: builds KenLM's build_binary and query into tools/kenlm/build/bin.
#
# Nothing in ds2 or its tests needs them: train/lm.py writes ARPA files itself. build_binary
# turns an ARPA file into a KenLM binary that loads faster and is smaller
# (`python -m train.lm ... --binary` uses it when it is here); query scores text with an LM.
# lmplz is left out: in kenlm-ex 0.2.1 it throws std::bad_alloc in InitialProbabilities
# (FixedArray<Chain>::Init) and then hangs joining its threads, on any corpus.
#
# The source is KenLM from the PyPI sdist "kenlm-ex" (no other registry is needed); it needs
# cmake >= 3.28 (installed from PyPI into a private venv here) and a C++17 compiler. Boost is
# not needed: this KenLM parses options with the vendored CLI11, whose default "-h,--help" flag
# clashes with the one the *_main.cc files add, so the build removes the default first.
# About 3 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."

KENLM_VERSION=0.2.1
ROOT=tools/kenlm/build
JOBS=${JOBS:-2}
mkdir -p "$ROOT"

if [[ ! -x $ROOT/venv/bin/cmake ]]; then
  python3 -m venv "$ROOT/venv"
  "$ROOT/venv/bin/pip" install -q "cmake>=3.28"
fi

SRC=$ROOT/kenlm_ex-$KENLM_VERSION
if [[ ! -d $SRC ]]; then
  "$ROOT/venv/bin/pip" download -q "kenlm-ex==$KENLM_VERSION" --no-binary kenlm-ex --no-deps \
    -d "$ROOT"
  tar xzf "$ROOT/kenlm_ex-$KENLM_VERSION.tar.gz" -C "$ROOT"
  # CLI11 adds its own -h,--help; adding it again aborts every tool at start.
  grep -rl --include='*_main.cc' 'add_flag("-h,--help"' "$SRC" | while read -r f; do
    sed -i 's/^\(\s*\)\(app\.add_flag("-h,--help"\)/\1app.set_help_flag();\n\1\2/' "$f"
  done
fi

"$ROOT/venv/bin/cmake" -S "$SRC" -B "$ROOT/cmake" -DCMAKE_BUILD_TYPE=Release >/dev/null
"$ROOT/venv/bin/cmake" --build "$ROOT/cmake" -j "$JOBS" --target build_binary query
mkdir -p "$ROOT/bin"
cp "$ROOT/cmake/bin/build_binary" "$ROOT/cmake/bin/query" "$ROOT/bin/"

# Smoke test: a tiny bigram ARPA file becomes a binary that query reads:
# log10 p(hi | <s>) + log10 p(</s> | hi) = -0.2 + (0 - 0.5).
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat >"$tmp/lm.arpa" <<'ARPA'
\data\
ngram 1=4
ngram 2=1

\1-grams:
-99	<s>	0
-0.5	</s>
-1	<unk>
-0.3	hi	0

\2-grams:
-0.2	<s> hi

\end\
ARPA
"$ROOT/bin/build_binary" -s "$tmp/lm.arpa" "$tmp/lm.bin" >/dev/null 2>&1
echo hi | "$ROOT/bin/query" "$tmp/lm.bin" 2>/dev/null | grep -q "Total: -0.7 " \
  || { echo "build_kenlm: the built tools do not work" >&2; exit 1; }
echo "built: $ROOT/bin/{build_binary,query}"
