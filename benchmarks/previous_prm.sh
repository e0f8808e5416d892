#!/usr/bin/env bash
# The PRM shipped before its last training round (README, "One more training round for the
# shipped PRM"): checkpoints/arith-prm as of commit 38c6079, written from git history into $1
# (default runs/prm-previous). benchmarks/longer_training.sh and benchmarks/mc_recipes.sh measure
# against it, so they reproduce their tables after checkpoints/arith-prm moved on.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-runs/prm-previous}
COMMIT=38c6079fa67530e196438c80c12b4235d0cfdb97
[ -f "$OUT/config.json" ] && exit 0
if [ -e "$OUT" ]; then
  echo "expected $OUT to be absent or the previous PRM, got something else there;" \
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
mv "$OUT.partial" "$OUT"
