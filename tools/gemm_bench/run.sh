#!/bin/sh
# Builds tools/gemm_bench against Sources/ViTKernels (same flags as the package) and runs it. VITCLASSIFY_ISA=avx2 or
# fallback times the narrower paths; --peak measures the CPU's FMA peak instead.
# Usage: tools/gemm_bench/run.sh [--threads N] [--rounds N] [--block-ms MS] [--cooldown-ms MS] [--only SUBSTRING] [--peak]
set -e
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${TMPDIR:-/tmp}/vit_gemm_bench
CC=${CC:-clang}
$CC -O2 -fno-omit-frame-pointer -ffp-contract=fast -I"$root/Sources/ViTKernels/include" $(pkg-config --cflags openblas) \
    "$here/gemm_bench.c" "$root"/Sources/ViTKernels/*.c -o "$out" $(pkg-config --libs openblas) -lpthread -lm
exec "$out" "$@"
