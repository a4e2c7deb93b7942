#!/bin/sh
# Builds tools/gemm_bench/qgemm_bench.c against Sources/ViTKernels (same flags as the package) and runs it: INT8 and
# BF16 packed GEMMs against the fp32 packed GEMM on the ViT shapes; --peak measures the instruction peaks instead.
# VITCLASSIFY_ISA=avx2 or fallback times the narrower paths.
# Usage: tools/gemm_bench/qrun.sh [--threads N] [--rounds N] [--block-ms MS] [--only SUBSTRING] [--q8 K,..|none]
#                                 [--bf16 K,..|none] [--peak]
set -e
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${TMPDIR:-/tmp}/vit_qgemm_bench
CC=${CC:-clang}
$CC -O2 -fno-omit-frame-pointer -ffp-contract=fast -I"$root/Sources/ViTKernels/include" "$here/qgemm_bench.c" "$root"/Sources/ViTKernels/*.c \
    -o "$out" -lpthread -lm
exec "$out" "$@"
