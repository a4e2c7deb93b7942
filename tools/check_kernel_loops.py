#!/usr/bin/env python3
"""Fails if a GEMM micro-kernel's inner loop in a built binary keeps its accumulators in memory.

Twice a release build (`swift build -c release` compiles C at -O2) left a micro-kernel's accumulator tile on the stack:
clang did not unroll the per-row loop, so every multiply-add was a load from the stack, the instruction and a store back,
at 40-50% of the kernel's speed, with the same results (so no test noticed). The fp32 kernels in one session, the
AVX-512 VNNI and BF16 ones in another (BENCHMARKS.md, "Build regression" and "INT8 on AVX-512 without AMX").

This script disassembles the binary (objdump) and looks at every innermost loop of the micro-kernels (the functions
named kernel* and strip*), i.e. a backward conditional jump with none inside its body, whose body holds a
multiply-accumulate instruction (vfmadd*ps, vpdpbusd, vdpbf16ps, vpmaddubsw, vpmaddwd, tdp*): such a loop must not
store one of its multiply-adds' destination registers to the stack (rsp/rbp-relative addresses). It prints each
offending loop and exits 1; 0 when every such loop is clean (and it found at least one, so that a changed symbol name
or an empty disassembly does not pass silently).

Usage: python3 tools/check_kernel_loops.py [BINARY]   (default .build/release/vitclassify)
"""

import re
import subprocess
import sys

MULTIPLY_ADD = re.compile(r"^\s*(?:\{vex\}\s+)?(vfmadd\w*ps|vpdpbusds?|vdpbf16ps|vpmaddubsw|vpmaddwd|tdp\w+)\b")
JUMP = re.compile(r"^\s*(j[a-z]+)\s+([0-9a-f]+)\s+<([^>+]+)(?:\+0x[0-9a-f]+)?>")
STACK_STORE = re.compile(r",\s*-?(?:0x[0-9a-f]+)?\(%r[sb]p(?:,[^)]*)?\)\s*(?:\{%k\d\})?\s*$")
FUNCTION = re.compile(r"^([0-9a-f]+) <([^>]+)>:$")
LINE = re.compile(r"^\s*([0-9a-f]+):\s*(.*)$")
# The micro-kernels are the static functions named kernel* and strip* in Sources/ViTKernels (gemm_*.c, qgemm_*.c,
# bf16_*.c); LayerNorm, softmax and GELU have FMAs too but keep per-row state in memory by design.
KERNEL = re.compile(r"^(kernel|strip)\w*$")


def inner_loop(text, name, start):
    """Whether `text` is a backward conditional jump of function `name` to an address at or after `start`."""
    m = JUMP.match(text)
    return bool(m) and m.group(1) != "jmp" and m.group(3) == name and int(m.group(2), 16) >= start


def functions(binary):
    """(name, [(address, instruction text)]) for every function of the disassembly."""
    out = subprocess.run(["objdump", "-d", "--no-show-raw-insn", "-M", "att", binary], check=True,
                         capture_output=True, text=True).stdout
    name, body = None, []
    for line in out.splitlines():
        m = FUNCTION.match(line)
        if m:
            if name:
                yield name, body
            name, body = m.group(2), []
            continue
        m = LINE.match(line)
        if m and name:
            body.append((int(m.group(1), 16), m.group(2)))
    if name:
        yield name, body


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else ".build/release/vitclassify"
    checked, bad = 0, []
    for name, body in functions(binary):
        if not KERNEL.match(name) or not any(MULTIPLY_ADD.match(text) for _, text in body):
            continue
        for i, (address, text) in enumerate(body):
            m = JUMP.match(text)
            if not m or m.group(1) == "jmp" or m.group(3) != name:
                continue
            target = int(m.group(2), 16)
            if target >= address:
                continue
            loop = [t for a, t in body[: i + 1] if a >= target]
            if not any(MULTIPLY_ADD.match(t) for t in loop):
                continue
            if any(inner_loop(t, name, target) for t in loop[:-1]):
                continue  # not innermost: the inner loop is checked by itself
            checked += 1
            # Accumulators: the destinations (last operand, AT&T order) of the loop's multiply-adds. A spill of
            # anything else (a B vector under register pressure) costs a store and a load, not the kernel's speed.
            accumulators = {m.group(1) for t in loop if MULTIPLY_ADD.match(t)
                            for m in [re.search(r"(%[xyzt]mm\d+)\s*$", t)] if m}
            stores = [t for t in loop if STACK_STORE.search(t) and
                      (re.match(r"^\s*\S+\s+(%[xyzt]mm\d+),", t) or [None, None])[1] in accumulators]
            if stores:
                bad.append((name, target, address, stores))
    for name, start, end, stores in bad:
        print(f"{binary}: {name}: the loop {start:#x}-{end:#x} stores to the stack "
              f"({len(stores)} stores, e.g. '{stores[0].strip()}'): accumulators in memory, not in registers")
    if checked == 0:
        print(f"{binary}: no multiply-accumulate loop found (is this the vitclassify binary?)")
        return 1
    if not bad:
        print(f"{binary}: {checked} multiply-accumulate loops, none stores to the stack")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
