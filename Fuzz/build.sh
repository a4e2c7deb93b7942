#!/usr/bin/env bash
# Builds the libFuzzer targets with AddressSanitizer: Fuzz/build.sh [target ...]   (targets: safetensors config png overlay jpeg)
# Output: .build-fuzz/fuzz-<target>. Each target is one module: the harness, Fuzz/FuzzCommon.swift and every
# Sources/ViTKit file (so that internal entry points are reachable), linked with png_io.c and Sources/ViTKernels
# compiled with -fsanitize=fuzzer-no-link,address, and the system libpng and OpenBLAS.
# Every target also links jpeg_io.c (same flags) and the system libjpeg-turbo; the jpeg target is FuzzJPEG.swift.
# Environment: SOURCES (default: Sources) to build another copy of the sources; OUT (default: .build-fuzz);
# SANITIZERS (default: fuzzer,address); SWIFT_OPT (default: -O).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
src=$(cd "${SOURCES:-Sources}" && pwd)
out=${OUT:-.build-fuzz}
sanitizers=${SANITIZERS:-fuzzer,address}
opt=${SWIFT_OPT:--O}
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(safetensors config png overlay jpeg)
mkdir -p "$out/include/PNGIO" "$out/include/JPEGIO" "$out/include/ViTKernels" "$out/obj"

csan="-fsanitize=${sanitizers/fuzzer/fuzzer-no-link}"
# Module maps that SwiftPM would generate for the C targets.
printf 'module PNGIO {\n    header "%s/PNGIO/include/png_io.h"\n    export *\n}\n' "$src" >"$out/include/PNGIO/module.modulemap"
printf 'module JPEGIO {\n    header "%s/JPEGIO/include/jpeg_io.h"\n    export *\n}\n' "$src" >"$out/include/JPEGIO/module.modulemap"
printf 'module ViTKernels {\n    umbrella "%s/ViTKernels/include"\n    export *\n    module * { export * }\n}\n' "$src" >"$out/include/ViTKernels/module.modulemap"

clang -c -g -O1 $csan -DPNGIO_FUZZING -I "$src/PNGIO/include" $(pkg-config --cflags libpng) \
    "$src/PNGIO/png_io.c" -o "$out/obj/png_io.o"
clang -c -g -O1 $csan -I "$src/JPEGIO/include" $(pkg-config --cflags libjpeg) \
    "$src/JPEGIO/jpeg_io.c" -o "$out/obj/jpeg_io.o"
# The kernels' flags are those of Package.swift's ViTKernels target.
kernels=()
for file in "$src"/ViTKernels/*.c; do
    object="$out/obj/$(basename "${file%.c}").o"
    clang -c -g -O3 -ffp-contract=fast $csan -I "$src/ViTKernels/include" "$file" -o "$object"
    kernels+=("$object")
done

declare -A harness=([safetensors]=FuzzSafeTensors.swift [config]=FuzzConfig.swift [png]=FuzzPNG.swift
    [overlay]=FuzzOverlay.swift [jpeg]=FuzzJPEG.swift)
mapfile -t vitkit < <(cd "$src/ViTKit" && find "$(pwd)" -name '*.swift' | sort)
for target in "${targets[@]}"; do
    file=${harness[$target]:?unknown target $target (safetensors, config, png, overlay, jpeg)}
    echo "building $out/fuzz-$target"
    swiftc $opt -g -use-ld=lld -sanitize="$sanitizers" -parse-as-library -module-name "Fuzz_$target" -package-name vitclassify \
        -I "$out/include/PNGIO" -I "$out/include/JPEGIO" -I "$out/include/ViTKernels" -I "$src/CBLAS" -I "$src/CZlib" \
        $(pkg-config --cflags-only-I openblas | sed 's/-I/-Xcc -I/g') \
        "$root/Fuzz/$file" "$root/Fuzz/FuzzCommon.swift" "${vitkit[@]}" \
        "$out/obj/png_io.o" "$out/obj/jpeg_io.o" "${kernels[@]}" \
        $(pkg-config --libs libpng libjpeg openblas) \
        -o "$out/fuzz-$target"
done
