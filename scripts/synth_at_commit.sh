#!/usr/bin/env bash
# Synthesise with an earlier commit's own code (RTL and flow) on today's pinned tools, beside main's results:
#   bash scripts/synth_at_commit.sh COMMIT [essop synth options...]
# e.g. bash scripts/synth_at_commit.sh e0f4249 --rows 8 --bl 16 --sharing shared --scaling block --fp16-outer 0
# The commit is checked out in build/at/COMMIT/tree; its modules are imported through a package folder that
# maps essop.* to that tree (the editable install maps them to this checkout). Results: build/at/COMMIT/out.
set -euo pipefail
cd "$(dirname "$0")/.."
commit=${1:?usage: bash scripts/synth_at_commit.sh COMMIT [essop synth options...]}
shift
repo=$PWD
root=$repo/build/at/$commit
if [ ! -d "$root/tree" ]; then
    mkdir -p "$root"
    git worktree add --detach -f "$root/tree" "$commit" >/dev/null
fi
rm -rf "$root/pkg" && mkdir -p "$root/pkg"
cp -r "$root/tree/essop" "$root/pkg/essop"
for part in app golden hdl sim synth training formal; do
    if [ -d "$root/tree/$part" ]; then ln -s "$root/tree/$part" "$root/pkg/essop/$part"; fi
done
# Run from outside the checkout so that `essop` is not found in the current directory first.
(cd "$root" && PYTHONPATH="$root/pkg" "$repo/.venv/bin/python" -m essop.app synth "$@" --out "$root/out" --build "$root/build")
