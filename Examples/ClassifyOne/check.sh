#!/usr/bin/env bash
# Builds Examples/ClassifyOne against this repository's committed HEAD through a git URL at a tag (a bare clone in a
# temporary folder), as another package would depend on it, and classifies a sample image with it. A debug build:
# this checks that SwiftPM accepts the dependency, and takes 40 s where a release build takes 100 s.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
git clone --quiet --bare "$root" "$work/vitclassify.git"
git -C "$work/vitclassify.git" tag -f 0.1.0 HEAD >/dev/null
cp -R "$root/Examples/ClassifyOne" "$work/ClassifyOne"
rm -rf "$work/ClassifyOne/.build"
cd "$work/ClassifyOne"
VITCLASSIFY_PACKAGE_URL="file://$work/vitclassify.git" swift build
out=$(.build/debug/ClassifyOne "$root/weights/fashion-mnist-vit" "$root/images/bag-1.png")
echo "ClassifyOne: $out"
[[ "$out" == Bag$'\t'* ]] || { echo "ClassifyOne: expected Bag" >&2; exit 1; }
