#!/usr/bin/env bash
# The end-to-end demo behind `make demo`: the PyTorch example, from spec to a traced model file.
# Runs in a scratch copy (its own git repo), so the record carries a real commit and the
# checkout stays clean.
set -euo pipefail
ENVBUILD="${ENVBUILD:-envbuild}"
DEMO_DIR="${ENVBUILD_DEMO_DIR:-${TMPDIR:-/tmp}/envbuild-demo}"
EXAMPLE="$(cd "$(dirname "$0")/.." && pwd)/examples/torch-mnistlike"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "copy examples/torch-mnistlike to $DEMO_DIR (a fresh git repo)"
rm -rf "$DEMO_DIR"
cp -r "$EXAMPLE" "$DEMO_DIR"
cd "$DEMO_DIR"
git init -q
git add -A
git -c user.name=envbuild-demo -c user.email=demo@localhost commit -qm "torch example"

step "envbuild doctor"
"$ENVBUILD" doctor
step "envbuild lock   (pip-tools: every pin hashed; base tag pinned to its digest)"
"$ENVBUILD" lock
git add requirements.lock envbuild.lock   # lockfiles belong in git, next to the code
git -c user.name=envbuild-demo -c user.email=demo@localhost commit -qm "lock"
step "envbuild build  (envbuild writes the image from the lock: its id and digest are known before any push)"
"$ENVBUILD" build
step "envbuild run train.py   (twice, same seed)"
"$ENVBUILD" run train.py
first=$("$ENVBUILD" runs --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')
"$ENVBUILD" run train.py
step "envbuild runs"
"$ENVBUILD" runs
step "envbuild runs show latest"
"$ENVBUILD" runs show latest
step "envbuild diff $first latest   (same ingredients, same weights)"
"$ENVBUILD" diff "$first" latest
step "envbuild trace outputs/model.pt   (from a model file back to its run)"
"$ENVBUILD" trace outputs/model.pt
step "envbuild reproduce $first   (same commit, image and seed: do the metrics come back?)"
"$ENVBUILD" reproduce "$first"
