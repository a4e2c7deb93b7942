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
DESTINATION = re.compile(r"(%[xyzt]mm\d+)\s*$")  # an instruction's last operand, if a vector or tile register
SOURCE = re.compile(r"^\s*\S+\s+(%[xyzt]mm\d+),")  # its first operand, if a vector or tile register
# The micro-kernels are the static functions named kernel* and strip* in Sources/ViTKernels (gemm_*.c, qgemm_*.c,
# bf16_*.c); LayerNorm, softmax and GELU have FMAs too but keep per-row state in memory by design.
KERNEL = re.compile(r"^(kernel|strip)\w*$")


def loop_start(address, text, name):
    """The first address of the loop that the instruction `text` at `address` closes, if it is a conditional jump
    backwards within function `name`; else None."""
    m = JUMP.match(text)
    if not m or m.group(1) == "jmp" or m.group(3) != name:
        return None
    target = int(m.group(2), 16)
    return target if target < address else None


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
            start = loop_start(address, text, name)
            if start is None:
                continue
            loop = [(a, t) for a, t in body[: i + 1] if a >= start]
            multiply_adds = [t for _, t in loop if MULTIPLY_ADD.match(t)]
            if not multiply_adds:
                continue
            inner = (loop_start(a, t, name) for a, t in loop[:-1])
            if any(s is not None and s >= start for s in inner):
                continue  # not innermost: the inner loop is checked by itself
            checked += 1
            # Accumulators: the destinations (last operand, AT&T order) of the loop's multiply-adds. A spill of
            # anything else (a B vector under register pressure) costs a store and a load, not the kernel's speed.
            accumulators = {m.group(1) for m in map(DESTINATION.search, multiply_adds) if m}
            stores = [t for _, t in loop
                      if STACK_STORE.search(t) and (m := SOURCE.match(t)) and m.group(1) in accumulators]
            if stores:
                bad.append((name, start, address, stores))
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
