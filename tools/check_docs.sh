#!/usr/bin/env bash
# Builds ViTKit's DocC catalog with warnings as errors (broken symbol links, undocumented parameters), from the
# module the release build already made: swift-symbolgraph-extract reads .build/release's ViTKit.swiftmodule, with
# the search paths and module maps of ViTKit's own compile command, and docc converts the catalog against it.
# The same check as `swift package generate-documentation --target ViTKit --warnings-as-errors` (which stays the way
# to build the docs), without the plugin's second, debug build of the package (about a minute in CI).
# Usage: swift build -c release && tools/check_docs.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
manifest=.build/release.yaml
[[ -f $manifest ]] || { echo "check_docs: $manifest not found: run 'swift build -c release' first" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# ViTKit's swiftc arguments from the build manifest: its -I paths and -Xcc options (the C modules' maps).
mapfile -t flags < <(python3 - "$manifest" <<'EOF'
import re, sys
for block in open(sys.argv[1]).read().split('\n  "'):
    if '"-module-name","ViTKit"' not in block:
        continue
    args = [a for a in re.search(r'args: \["(.*)"\]', block).group(1).split('","')]
    for i, a in enumerate(args[:-1]):
        if a in ("-I", "-Xcc"):
            print(a)
            print(args[i + 1])
    break
EOF
)
[[ ${#flags[@]} -gt 0 ]] || { echo "check_docs: no ViTKit compile command in $manifest" >&2; exit 1; }
triple=$(swiftc -print-target-info | python3 -c 'import json, sys; print(json.load(sys.stdin)["target"]["triple"])')
mkdir -p "$work/symbols"
swift-symbolgraph-extract -module-name ViTKit -target "$triple" -I .build/release/Modules "${flags[@]}" \
    -minimum-access-level public -output-dir "$work/symbols"
docc convert Sources/ViTKit/ViTKit.docc --additional-symbol-graph-dir "$work/symbols" --warnings-as-errors \
    --fallback-display-name ViTKit --fallback-bundle-identifier ViTKit --output-path "$work/ViTKit.doccarchive"
echo "check_docs: ViTKit's documentation builds without warnings"
