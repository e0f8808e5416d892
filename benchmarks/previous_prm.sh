#!/usr/bin/env bash
# A PRM shipped before: checkpoints/arith-prm as of commit $2, written from git history into $1
# (default runs/prm-previous). The default commit, 38c6079, is the PRM shipped before its
# "One more training round" (README); benchmarks/longer_training.sh and benchmarks/mc_recipes.sh
# measure against it, and benchmarks/more_rounds.sh and benchmarks/dvts_width.sh against a later
# one, so they reproduce their tables after checkpoints/arith-prm moved on.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-runs/prm-previous}
COMMIT=${2:-38c6079fa67530e196438c80c12b4235d0cfdb97}
# the full hash, however the commit was named (the commit file records it)
COMMIT=$(git rev-parse --verify --quiet "$COMMIT^{commit}" || echo "$COMMIT")
if [ -f "$OUT/config.json" ]; then
  # written before: by this script for $COMMIT (its commit file says so), or an older run of it
  # (no commit file, the default commit)
  written=$(cat "$OUT/commit" 2>/dev/null || echo 38c6079fa67530e196438c80c12b4235d0cfdb97)
  [ "$written" = "$COMMIT" ] && exit 0
  echo "expected $OUT to hold the PRM of commit $COMMIT, got the one of $written;" \
    "fix: pass another directory" >&2
  exit 2
fi
if [ -e "$OUT" ]; then
  echo "expected $OUT to be absent or the PRM of commit $COMMIT, got something else there;" \
    "fix: remove it, or pass another directory" >&2
  exit 2
fi
if ! git cat-file -e "$COMMIT^{commit}" 2>/dev/null; then
  echo "expected commit $COMMIT in this clone's history, got none (a shallow clone?);" \
    "fix: git fetch --unshallow" >&2
  exit 2
fi
rm -rf "$OUT.partial"
mkdir -p "$OUT.partial"
for file in $(git ls-tree --name-only "$COMMIT" checkpoints/arith-prm/); do
  git show "$COMMIT:$file" > "$OUT.partial/$(basename "$file")"
done
if [ ! -f "$OUT.partial/config.json" ]; then
  echo "expected checkpoints/arith-prm/ at commit $COMMIT, got no config.json there;" \
    "fix: pass a commit that shipped a PRM" >&2
  exit 2
fi
echo "$COMMIT" > "$OUT.partial/commit"
mv "$OUT.partial" "$OUT"
