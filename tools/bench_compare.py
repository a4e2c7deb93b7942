#!/usr/bin/env python3
"""Compare vitclassify with ONNX Runtime and PyTorch eager on ViT-Ti/16, ViT-S/16, ViT-B/16 (224, random weights).

One run measures, for every (model, batch size), the engines in interleaved ROUNDS:

  vitclassify   `vitclassify bench --model DIR --batch-size B --threads T --iterations N --warmup W
                 --format json --no-cold-start`, a new process per round (its ms_per_image_median is that
                 round's median; its peak RSS is recorded for the RSS target; its kernel_path, gemm_kernel and
                 cpu_model fields go into the report);
  baselines     (--baseline NAME=COMMAND_PREFIX, repeatable; optional) another vitclassify-like binary, run
                exactly as vitclassify (COMMAND_PREFIX, split shell-style, + `bench --model DIR ...`), e.g.
                --baseline "openblas-path=env VITCLASSIFY_NO_PACKED_GEMM=1 /tmp/old-build/release/vitclassify";
                reported as its ms/img and the ratio vitclassify/baseline;
  ONNX Runtime  CPUExecutionProvider, intra_op_num_threads=T, inter_op_num_threads=1, ORT_SEQUENTIAL,
                ORT_ENABLE_ALL, on the model exported from timm (tools/make_bench_models.py);
  PyTorch       timm eager model, torch.set_num_threads(T), torch.inference_mode().

PyTorch and ONNX Runtime each run in their own long-lived worker process (spawned, model loaded once per
model), so their thread pools (OpenMP/MKL vs ORT's) never share a process with each other or with the
parent; a worker waits on a pipe while another engine runs, and the script sleeps --settle seconds between
engines so spinning pool threads go idle. Each engine does W warm-up passes then N timed passes per round
(each pass timed on its own, in ms/image); the engine order rotates from round to round. Reported: the median
over rounds of the per-round medians.

Kernel path (--isa, default native): `--isa avx2` or `--isa fallback` sets VITCLASSIFY_ISA for every
vitclassify (and baseline) process the script starts (bench, numerics, default-model checks); `native` removes
VITCLASSIFY_ISA / VITCLASSIFY_NO_PACKED_GEMM from their environment. With `--isa avx2` the PyTorch workers are
started with ATEN_CPU_CAPABILITY=avx2, MKL_ENABLE_INSTRUCTIONS=AVX2 and ONEDNN_MAX_CPU_ISA=AVX2; every PyTorch
worker reports what it actually uses (ATen's CPU capability, MKL's and oneDNN's ISA from their verbose output).
`--isa fallback` narrows vitclassify only. ONNX Runtime has no option to narrow it (MLAS picks its kernels from
CPUID): with `--isa avx2` on an AVX-512 CPU its workers run under tools/cpuid_avx2only.c (built here into
bench-out/, LD_PRELOAD), which makes CPUID fault and answers it without the AVX-512/AVX-VNNI/AMX bits, so MLAS runs
its FMA3 (AVX2) kernels; each worker reports how many CPUID calls it masked. The vitclassify processes run under it
too (VITCLASSIFY_ISA=avx2 alone would still let them use AVX-VNNI for INT8, which a Zen 3 does not have). Where the
CPU has no CPUID faulting (/proc/cpuinfo flag cpuid_fault) or the shim cannot be built, ORT keeps its AVX-512 kernels
and the report says so.

Machine: `tools/gemm_bench/run.sh --peak` is run once (skipped if clang or pkg-config is missing, or the build
fails) and its measured FMA peak is shown beside vitclassify's GFLOP/s.

Numerics (once per model): a 224x224 PNG is classified by `vitclassify IMG --model DIR --format json
--top-k 0`, and by timm on the same PNG through timm's own transform from config.json's pretrained_cfg;
ORT is compared with torch on that preprocessed tensor.

Default model (weights/fashion-mnist-vit; skipped if missing): the wall time of a whole `vitclassify
images/<first sample>.png` process (hyperfine median of --cold-runs, else timed here), and `vitclassify batch`
over the 10,000 Fashion-MNIST test images exported once as PNGs to bench-out/fmnist-test/ (images/s from its
summary line on stderr).

Report: one section per CPU and kernel path, headed `## <cpu model> — <path> path` (+ "(forced)" under
--isa avx2/fallback) and wrapped in `<!-- bench-section: KEY -->` ... `<!-- /bench-section: KEY -->` (KEY from
the CPU model and the path). Writing to --out replaces only the section with the same KEY, or appends it;
everything else in the file (other CPUs' sections, hand-written text, an older unmarked report) is kept.

Usage (from the repository root, after `swift build -c release --scratch-path .build-bench`):
  .venv-tools/bin/python tools/bench_compare.py --threads 2 --rounds 5 --iterations 20 \\
      --models ti,s,b --batches 1,8 --out BENCHMARKS.md
  .venv-tools/bin/python tools/bench_compare.py --isa avx2 --out BENCHMARKS.md   # AVX2 path section
  .venv-tools/bin/python tools/bench_compare.py --baseline "old=/tmp/old-build/release/vitclassify" \\
      --baseline "openblas-path=env VITCLASSIFY_NO_PACKED_GEMM=1 OPENBLAS_CORETYPE=Haswell /tmp/old/vitclassify"
  .venv-tools/bin/python tools/bench_compare.py --precision bf16,int8 --skip-default   # + vitclassify bf16/int8
      # and ONNX Runtime INT8 (quantize_dynamic of the same model.onnx, cached as model.int8.onnx) columns
  .venv-tools/bin/python tools/bench_compare.py --quick      # smoke run -> bench-out/BENCHMARKS.quick.md
  .venv-tools/bin/python tools/bench_compare.py --quick --isa avx2 --out bench-out/BENCHMARKS.test.md
  .venv-tools/bin/python tools/bench_compare.py --from-json bench-out/bench_results.json   # re-render only

Idle-wait (--spin auto, the default): ORT's and PyTorch's pool threads spin while waiting by default, which on
a machine whose cores are busy with other work can make them several times slower. For each model both the
spinning default and a non-spinning setting (ORT allow_spinning=0 / OMP_WAIT_POLICY=PASSIVE, each its own
worker) are probed and the faster one is timed; the report says which. Raw results: bench-out/bench_results.json
(bench_results.quick.json for --quick; the latest run only: re-render other sections from their own copies).
"""

import argparse
import datetime
import gzip
import json
import multiprocessing as mp
import os
import platform
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

TOOLS = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(TOOLS)
sys.path.insert(0, TOOLS)
import make_bench_models as mbm  # noqa: E402  (imports nothing heavy at module level)

BENCH_OUT = os.path.join(REPO, "bench-out")
TITLE = "# Benchmarks: vitclassify vs ONNX Runtime vs PyTorch eager"
ENGINES = ("vitclassify", "ort", "torch")  # plus "baseline:NAME" per --baseline, after vitclassify
ENGINE_NAMES = {"vitclassify": "vitclassify", "ort": "ONNX Runtime", "torch": "PyTorch eager",
                "ort-int8": "ONNX Runtime INT8", "prec:bf16": "vitclassify bf16", "prec:int8": "vitclassify int8"}
# --precision: vitclassify again with `bench --precision P` ("prec:P" engines, after the baselines), and ONNX Runtime's
# quantize_dynamic of the same ONNX model ("ort-int8", after "ort") when int8 is among them.
PRECISIONS = ("bf16", "int8")
INT8_ORT_TARGETS = {"ti": 1.00, "s": 1.00, "b": 0.90}  # vitclassify int8 / ORT INT8, batch 1 and 8
BF16_FP32_TARGET = 0.60  # ViT-B/16 bf16 / fp32, where AVX512_BF16 exists
INT8_RSS_FACTOR = 0.35
# --isa: what narrows each engine. vitclassify (and baselines): VITCLASSIFY_ISA; the older VITCLASSIFY_NO_PACKED_GEMM
# also narrows it (to fallback), so both are removed from the environment the script passes on. PyTorch: ATen's
# dispatch, MKL and oneDNN each have their own variable. ONNX Runtime: nothing (MLAS dispatches on CPUID).
VITCLASSIFY_ISA_VARS = ("VITCLASSIFY_ISA", "VITCLASSIFY_NO_PACKED_GEMM")
TORCH_ISA_ENV = {"avx2": {"ATEN_CPU_CAPABILITY": "avx2", "MKL_ENABLE_INSTRUCTIONS": "AVX2", "ONEDNN_MAX_CPU_ISA": "AVX2"}}
TORCH_ISA_VARS = ("ATEN_CPU_CAPABILITY", "MKL_ENABLE_INSTRUCTIONS", "ONEDNN_MAX_CPU_ISA")
# Idle-wait variants of the two in-process engines. Spinning pool threads (ORT's default allow_spinning=1,
# libgomp's default active wait in PyTorch) are fastest on an idle machine but can be several times slower
# when other processes compete for the cores; `--spin auto` probes both per model and keeps the faster.
VARIANTS = {"ort": {"spin": "allow_spinning=1 (default)", "nospin": "allow_spinning=0"},
            "torch": {"spin": "OMP_WAIT_POLICY unset (default)", "nospin": "OMP_WAIT_POLICY=PASSIVE"}}
# Targets from the issue: max vitclassify/ORT ratio per (batch, model); min PyTorch/vitclassify speedup.
ORT_TARGETS = {1: {"ti": 1.10, "s": 1.00, "b": 1.00}, 8: {"b": 1.00}}
# Issue 16's targets for the AVX2 path (vs ORT's AVX2 kernels): ViT-B/S <= 0.95x, ViT-Ti <= 1.00x at batch 1 and 8.
ORT_TARGETS_AVX2 = {1: {"ti": 1.00, "s": 0.95, "b": 0.95}, 8: {"ti": 1.00, "s": 0.95, "b": 0.95}}
TORCH_SPEEDUP_TARGET = 1.2
RSS_FACTOR, RSS_SLACK_MB = 1.15, 64.0
COLD_START_TARGET_MS, BATCH_TARGET_IPS = 50.0, 3000.0


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------- workers
def _bench_input(batch):
    """Same distribution as `vitclassify bench`'s synthetic input: uniform in [-1, 1), fixed seed."""
    return np.random.default_rng(1234 + batch).uniform(-1, 1, size=(batch, 3, mbm.IMG, mbm.IMG)).astype(np.float32)


def _timed(run, x, warmup, iterations):
    for _ in range(warmup):
        run(x)
    times = []
    for _ in range(iterations):
        t0 = time.perf_counter_ns()
        run(x)
        times.append((time.perf_counter_ns() - t0) / 1e6 / x.shape[0])
    return times


def _capture_stdout(fn):
    """What fn() writes to file descriptor 1 (C code included: MKL's and oneDNN's verbose output)."""
    import ctypes
    sys.stdout.flush()
    saved = os.dup(1)
    with tempfile.TemporaryFile() as tf:
        os.dup2(tf.fileno(), 1)
        try:
            fn()
        finally:
            sys.stdout.flush()
            ctypes.CDLL(None).fflush(None)  # C stdio buffers, before fd 1 points back
            os.dup2(saved, 1)
            os.close(saved)
        tf.seek(0)
        return tf.read().decode(errors="replace")


def _torch_isa(torch):
    """The instruction sets this PyTorch process really uses: ATen's dispatch level, and MKL's (sgemm: the linear
    layers) and oneDNN's (the patch-embedding convolution) as their verbose modes print them on first use."""
    res = {"aten_capability": str(torch.backends.cpu.get_cpu_capability()),
           "env": {k: os.environ[k] for k in TORCH_ISA_VARS if k in os.environ}}
    try:
        def mkl():
            with torch.backends.mkl.verbose(torch.backends.mkl.VERBOSE_ON), torch.inference_mode():
                torch.nn.functional.linear(torch.ones(8, 64), torch.ones(64, 64), torch.ones(64))
        out = _capture_stdout(mkl)
        m = re.search(r"64 architecture (.*?)(?:, Lnx|$)", out, re.M)
        short = re.search(r"\(Intel\(R\) (AVX[^)]*)\)", m.group(1)) if m else None
        res["mkl"] = short.group(1) if short else (m.group(1).strip() if m else "no MKL_VERBOSE output")
    except Exception as e:  # noqa: BLE001  (a report field, not a failure)
        res["mkl"] = f"unknown ({type(e).__name__}: {e})"
    try:
        def onednn():
            with torch.backends.mkldnn.verbose(torch.backends.mkldnn.VERBOSE_ON), torch.inference_mode():
                torch.nn.functional.conv2d(torch.ones(1, 3, 224, 224), torch.ones(192, 3, 16, 16), stride=16)
        m = re.search(r"onednn_verbose,.*?,isa:(.*)", _capture_stdout(onednn))
        res["onednn"] = m.group(1).strip() if m else "no oneDNN verbose output"
    except Exception as e:  # noqa: BLE001
        res["onednn"] = f"unknown ({type(e).__name__}: {e})"
    return res


def torch_worker(conn, threads):
    import torch
    import timm
    import timm.data
    from PIL import Image
    from safetensors.torch import load_file

    torch.set_num_threads(threads)
    model, cfg = None, None
    conn.send(("ready", {"torch": str(torch.__version__), "timm": str(timm.__version__),  # plain str: a
                         # TorchVersion would import torch into the parent when unpickled
                         "torch_threads": torch.get_num_threads(), "isa": _torch_isa(torch)}))
    while True:
        msg = conn.recv()
        try:
            if msg[0] == "quit":
                return
            if msg[0] == "unload":
                model = None
                conn.send(("ok", None))
            elif msg[0] == "load":
                model = None
                with open(os.path.join(msg[1], "config.json")) as f:
                    cfg = json.load(f)
                model = timm.create_model(cfg["architecture"], pretrained=False, num_classes=cfg["num_classes"],
                                          global_pool=cfg["global_pool"], **cfg["model_args"])
                model.load_state_dict(load_file(os.path.join(msg[1], "model.safetensors")), strict=True)
                model = model.float().eval()
                conn.send(("ok", None))
            elif msg[0] == "run":
                _, batch, warmup, iterations = msg
                x = torch.from_numpy(_bench_input(batch))
                with torch.inference_mode():
                    conn.send(("ok", _timed(model, x, warmup, iterations)))
            elif msg[0] == "classify":  # PNG -> (preprocessed tensor, logits), timm's transform from config.json
                pc = cfg["pretrained_cfg"]
                tf = timm.data.create_transform(input_size=tuple(pc["input_size"]), interpolation=pc["interpolation"],
                                                crop_pct=pc["crop_pct"], crop_mode=pc.get("crop_mode", "center"),
                                                mean=tuple(pc["mean"]), std=tuple(pc["std"]), is_training=False)
                x = tf(Image.open(msg[1]).convert("RGB")).unsqueeze(0)
                with torch.inference_mode():
                    conn.send(("ok", (x.numpy(), model(x).numpy())))
        except Exception as e:  # report, keep serving
            conn.send(("error", f"{type(e).__name__}: {e}"))


def _cpuid_masked_calls():
    """CPUID calls answered by tools/cpuid_avx2only.c in this process so far, or None without the shim."""
    lib = next((p for p in os.environ.get("LD_PRELOAD", "").split(":") if p.endswith("cpuid_avx2only.so")), None)
    if lib is None:
        return None
    import ctypes
    return int(ctypes.CDLL(lib).cpuid_avx2only_calls())


def ort_worker(conn, threads, spinning=True, model_file="model.onnx"):
    import onnxruntime as ort

    sess = None
    conn.send(("ready", {"onnxruntime": str(ort.__version__)}))
    while True:
        msg = conn.recv()
        try:
            if msg[0] == "quit":
                return
            if msg[0] == "unload":
                sess = None
                conn.send(("ok", None))
            elif msg[0] == "load":
                sess = None
                so = ort.SessionOptions()
                so.intra_op_num_threads = threads
                so.inter_op_num_threads = 1
                so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
                so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
                so.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
                sess = ort.InferenceSession(os.path.join(msg[1], model_file), so, providers=["CPUExecutionProvider"])
                conn.send(("ok", {"providers": sess.get_providers(), "cpuid_masked_calls": _cpuid_masked_calls()}))
            elif msg[0] == "run":
                _, batch, warmup, iterations = msg
                conn.send(("ok", _timed(lambda x: sess.run(None, {"input": x}), _bench_input(batch), warmup, iterations)))
            elif msg[0] == "logits":
                conn.send(("ok", sess.run(None, {"input": msg[1]})[0]))
        except Exception as e:
            conn.send(("error", f"{type(e).__name__}: {e}"))


class Worker:
    def __init__(self, target, threads, *extra, env=None):
        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=target, args=(child, threads) + extra, daemon=True)
        saved = dict(os.environ)
        os.environ.update(env or {})  # the spawned child copies the environment at start
        try:
            self.proc.start()
        finally:
            os.environ.clear()
            os.environ.update(saved)
        self.info = self._recv()

    def _recv(self):
        status, value = self.conn.recv()
        if status == "error":
            raise RuntimeError(value)
        return value

    def call(self, *msg):
        self.conn.send(msg)
        return self._recv()

    def close(self):
        try:
            self.conn.send(("quit",))
        except OSError:
            pass
        self.proc.join(10)


# --------------------------------------------------------------------------------------------- helpers
def run_vitclassify_bench(prefix, model_dir, batch, threads, warmup, iterations, extra=()):
    """prefix: the command before `bench` (vitclassify's path, or a --baseline's split COMMAND_PREFIX); extra: more
    bench options (`--precision P` for the "prec:P" engines)."""
    cmd = list(prefix) + ["bench", "--model", model_dir, "--batch-size", str(batch), "--threads", str(threads),
                          "--iterations", str(iterations), "--warmup", str(warmup), "--format", "json",
                          "--no-cold-start"] + list(extra)
    # Launched through a forking `sh`: Linux carries a process's pre-exec peak RSS into ru_maxrss across
    # fork/exec, so a direct child of this Python process would report max(parent's peak, its own).
    p = subprocess.run(["sh", "-c", '"$@"; exit $?', "sh"] + cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"{shlex.join(cmd)} failed ({p.returncode}): {p.stderr.strip()}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def median(xs):
    return statistics.median(xs) if xs else float("nan")


def parse_baselines(specs):
    """--baseline NAME=COMMAND_PREFIX strings -> [(name, [argv...])]."""
    out = []
    for spec in specs or []:
        name, sep, prefix = spec.partition("=")
        name = name.strip()
        if not sep or not re.fullmatch(r"[\w.+-]+", name) or not shlex.split(prefix):
            raise ValueError(f"--baseline {spec!r}: expected NAME=COMMAND_PREFIX (NAME of letters, digits, . _ + -)")
        if name in ENGINES or name in (n for n, _ in out):
            raise ValueError(f"--baseline {spec!r}: name {name!r} is already used")
        out.append((name, shlex.split(prefix)))
    return out


def precisions(args):
    """The reduced precisions of --precision (a comma list; none by default)."""
    return [p for p in PRECISIONS if p in (getattr(args, "precision", None) or "").split(",")]


def engine_list(args):
    """Engine ids in round order: vitclassify, the baselines ("baseline:NAME"), vitclassify in each --precision
    ("prec:P"), ONNX Runtime, ONNX Runtime INT8 (with --precision int8), PyTorch."""
    p = precisions(args)
    return (["vitclassify"] + [f"baseline:{n}" for n, _ in parse_baselines(getattr(args, "baseline", []))]
            + [f"prec:{x}" for x in p] + ["ort"] + (["ort-int8"] if "int8" in p else []) + ["torch"])


def engine_name(e):
    return ENGINE_NAMES.get(e) or e.split(":", 1)[1]


def cpuid_mask_library():
    """Build tools/cpuid_avx2only.c into bench-out/ and return (path, None), or (None, why not)."""
    with open("/proc/cpuinfo") as f:
        if "cpuid_fault" not in f.read().split():
            return None, "this CPU (or its hypervisor) offers no CPUID faulting: no cpuid_fault in /proc/cpuinfo"
    out = os.path.join(BENCH_OUT, "cpuid_avx2only.so")
    src = os.path.join(TOOLS, "cpuid_avx2only.c")
    p = subprocess.run([os.environ.get("CC", "cc"), "-O2", "-shared", "-fPIC", "-o", out, src],
                       capture_output=True, text=True)
    if p.returncode != 0:
        return None, f"building {os.path.relpath(src, REPO)} failed: {' '.join(p.stderr.strip().splitlines()[-1:])}"
    return out, None


def fma_peak():
    """`tools/gemm_bench/run.sh --peak`: the measured FMA peak, {threads: {bits: GFLOP/s}}; {"skipped": why} when
    the compiler, pkg-config or OpenBLAS's .pc is missing or the build fails."""
    run_sh = os.path.join(TOOLS, "gemm_bench", "run.sh")
    cc = os.environ.get("CC", "clang")
    missing = [t for t in (cc, "pkg-config") if not shutil.which(t)]
    if missing:
        return {"skipped": f"{' and '.join(missing)} not found"}
    if subprocess.run(["pkg-config", "--exists", "openblas"]).returncode != 0:
        return {"skipped": "pkg-config knows no openblas"}
    with tempfile.TemporaryDirectory() as tmp:  # run.sh builds into $TMPDIR: don't share a binary with anyone
        try:
            p = subprocess.run(["sh", run_sh, "--peak"], capture_output=True, text=True, cwd=REPO, timeout=600,
                               env=dict(os.environ, TMPDIR=tmp))
        except subprocess.TimeoutExpired:
            return {"skipped": "tools/gemm_bench/run.sh --peak timed out"}
    if p.returncode != 0:
        return {"skipped": f"tools/gemm_bench/run.sh --peak failed ({p.returncode}): "
                           + (p.stderr.strip().splitlines() or ["?"])[-1][:200]}
    res = {"command": "tools/gemm_bench/run.sh --peak", "gflops": {}}
    for line in p.stdout.splitlines():
        m = re.match(r"FMA peak, (\d+) threads?: (.*)", line)
        if m:
            res["gflops"][m.group(1)] = {b: float(v) for b, v in re.findall(r"(\d+)-bit ([\d.]+) GFLOP/s", m.group(2))}
        elif line.startswith("CPU: "):
            res["cpu"] = line[5:].strip()
        elif line.strip() == "no FMA":
            res["skipped"] = "the CPU has no FMA"
    if not res["gflops"] and "skipped" not in res:
        res["skipped"] = "no FMA peak in run.sh's output: " + p.stdout.strip()[:200]
    return res


def peak_for(meta, threads):
    """The measured FMA peak matching vitclassify's kernel path (512-bit for avx512, 256-bit for avx2) at this
    thread count, or None."""
    bits = {"avx512": "512", "avx2": "256"}.get((meta.get("vitclassify_kernels") or {}).get("kernel_path"))
    return ((meta.get("fma_peak") or {}).get("gflops") or {}).get(str(threads), {}).get(bits) if bits else None


def section_key(meta):
    """The report section's KEY: CPU model + kernel path, lower-case, [a-z0-9-] only."""
    k = meta.get("vitclassify_kernels") or {}
    cpu = k.get("cpu_model") or meta["machine"]["cpu"]
    cpu = re.sub(r"\((r|tm)\)", "", cpu, flags=re.I)
    return re.sub(r"[^a-z0-9]+", "-", f"{cpu} {k.get('kernel_path') or 'unknown-path'}".lower()).strip("-")


def write_section(path, key, section):
    """Put `section` into the Markdown file `path` between its KEY markers: replace the section with the same
    KEY, else append it; everything outside it is kept. A new (or empty) file gets the title first."""
    begin, end = f"<!-- bench-section: {key} -->", f"<!-- /bench-section: {key} -->"
    block = f"{begin}\n{section.strip()}\n{end}\n"
    old = ""
    if os.path.exists(path):
        with open(path) as f:
            old = f.read()
    pat = re.compile(re.escape(begin) + r".*?" + re.escape(end) + r"[ \t]*\n?", re.S)
    if pat.search(old):
        new, action = pat.sub(lambda _: block, old, count=1), "replaced section"
    elif old.strip():
        new, action = old.rstrip("\n") + "\n\n" + block, "appended section"
    else:
        new, action = (f"{TITLE}\n\nOne section per CPU and kernel path, each written by `tools/bench_compare.py` "
                       "(a re-run replaces its own section; text outside the sections is kept).\n\n" + block,
                       "created with section")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(new)
    os.replace(tmp, path)
    return action


def sh(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, cwd=REPO).stdout.strip()
    except OSError:
        return ""


def machine_info():
    cpu = {}
    with open("/proc/cpuinfo") as f:
        for line in f:
            if ":" in line:
                k, v = (s.strip() for s in line.split(":", 1))
                cpu.setdefault(k, v)
    flags = cpu.get("flags", "").split()
    mem_gib = None
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_gib = int(line.split()[1]) / 1024 / 1024
    return {
        "cpu": cpu.get("model name", platform.processor() or "unknown"),
        "logical_cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)),
        "avx512": [f for f in flags if f.startswith("avx512")],
        "avx2": "avx2" in flags, "fma": "fma" in flags,
        "mem_gib": mem_gib,
        "kernel": platform.release(),
        "os": sh(["sh", "-c", ". /etc/os-release && echo $PRETTY_NAME"]),
    }


def openblas_info(binary):
    """OpenBLAS config/core of the library the binary links (vitclassify itself doesn't print it)."""
    path = None
    for line in sh(["ldd", binary]).splitlines():
        if "openblas" in line and "=>" in line:
            path = line.split("=>")[1].split("(")[0].strip()
    if not path:
        return None
    code = ("import ctypes,sys; L=ctypes.CDLL(sys.argv[1]); "
            "[setattr(getattr(L,n),'restype',ctypes.c_char_p) for n in ('openblas_get_config','openblas_get_corename')]; "
            "print(L.openblas_get_config().decode()); print(L.openblas_get_corename().decode())")
    out = subprocess.run([sys.executable, "-c", code, path], capture_output=True, text=True,
                         env=dict(os.environ, OPENBLAS_NUM_THREADS="1")).stdout.split("\n")
    return {"path": os.path.realpath(path), "config": out[0].strip() if out else "",
            "core": out[1].strip() if len(out) > 1 else ""}


def git_info():
    commit = sh(["git", "rev-parse", "--short=12", "HEAD"])
    # --no-optional-locks: never refresh/write the index.
    dirty = sh(["git", "--no-optional-locks", "status", "--porcelain", "--untracked-files=no", "--", "Sources",
                "Package.swift"])
    return {"commit": commit or "unknown", "dirty_sources": bool(dirty)}


def swift_version():
    out = sh(["swift", "--version"]).splitlines()
    return out[0] if out else "unknown"


def write_png_rgb(path, seed, size):
    from PIL import Image
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    base = np.stack([xx, yy, 1 - 0.5 * (xx + yy)], -1) * 200 + 20
    img = np.clip(base + rng.normal(0, 25, base.shape), 0, 255).astype(np.uint8)
    Image.fromarray(img, "RGB").save(path)


def read_idx_images(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    n, h, w = (int.from_bytes(data[i:i + 4], "big") for i in (4, 8, 12))
    return np.frombuffer(data, np.uint8, offset=16).reshape(n, h, w)


def export_fmnist_test(src, out_dir):
    """The 10,000 test images as 8-bit grayscale PNGs 00000.png..09999.png (once; reused when complete)."""
    from PIL import Image
    images = read_idx_images(src)
    marker = os.path.join(out_dir, ".complete")
    if os.path.exists(marker) and open(marker).read().strip() == str(len(images)):
        return len(images)
    os.makedirs(out_dir, exist_ok=True)
    for i, im in enumerate(images):
        Image.fromarray(im, "L").save(os.path.join(out_dir, f"{i:05d}.png"))
    with open(marker, "w") as f:
        f.write(f"{len(images)}\n")
    return len(images)


# --------------------------------------------------------------------------------------------- measurements
def numerics_check(binary, key, model_dir, tw, ow, threads):  # tw/ow: any variant
    png = os.path.join(BENCH_OUT, f"numerics-{key}.png")
    write_png_rgb(png, seed=99, size=mbm.IMG)
    x, torch_logits = tw.call("classify", png)
    ort_logits = ow.call("logits", x)
    p = subprocess.run([binary, png, "--model", model_dir, "--format", "json", "--top-k", "0",
                        "--threads", str(threads)], capture_output=True, text=True)
    res = {"torch_vs_ort_max_abs": float(np.abs(torch_logits - ort_logits).max()),
           "logit_scale": float(np.abs(torch_logits).max())}
    if p.returncode != 0:
        res["vitclassify_error"] = p.stderr.strip()
        return res
    preds = json.loads(p.stdout.strip().splitlines()[-1])["predictions"]
    vc = np.zeros_like(torch_logits[0])
    for pr in preds:
        vc[pr["index"]] = pr["logit"]
    res["vitclassify_vs_torch_max_abs"] = float(np.abs(vc - torch_logits[0]).max())
    res["top1_agree"] = int(vc.argmax()) == int(torch_logits[0].argmax()) == int(ort_logits[0].argmax())
    return res


def probe_variants(key, workers):
    """Per engine, the idle-wait variant that is faster right now (batch 1, 1 warm-up + 3 passes)."""
    chosen, probe = {}, {}
    for engine, variants in workers.items():
        for v, w in variants.items():
            time.sleep(0.2)
            probe[f"{engine}/{v}"] = median(w.call("run", 1, 1, 3))
        chosen[engine] = min(variants, key=lambda v: probe[f"{engine}/{v}"])
    log(f"  {mbm.LABELS[key]} idle-wait probe (ms/img): " + ", ".join(f"{k} {t:.1f}" for k, t in probe.items())
        + " -> " + ", ".join(f"{e} {v}" for e, v in chosen.items()))
    return chosen, probe


def bench_model(commands, key, model_dir, batches, args, tw, ow, loads, kernels, others=None):
    """commands: engine id -> command prefix for vitclassify and the baselines; tw/ow: the PyTorch and ORT workers
    to time; others: engine id -> worker for further in-process engines (ORT INT8); kernels: engine id ->
    kernel_path/gemm_kernel/cpu_model (and precision/linear_kernel) from its bench JSON (filled in here)."""
    engines = engine_list(args)
    out = {}
    for batch in batches:
        rounds = {e: [] for e in engines}
        mins = {e: [] for e in engines}
        rss = {e: [] for e in commands}
        for r in range(args.rounds):
            order = engines[r % len(engines):] + engines[:r % len(engines)]  # rotate: no engine always runs first
            for engine in order:
                time.sleep(args.settle)
                if engine in commands:
                    extra = ["--precision", engine.split(":", 1)[1]] if engine.startswith("prec:") else []
                    j = run_vitclassify_bench(commands[engine], model_dir, batch, args.threads, args.warmup,
                                              args.iterations, extra)
                    rounds[engine].append(j["ms_per_image_median"])
                    mins[engine].append(j["ms_per_image_min"])
                    rss[engine].append(j["peak_rss_mb"])
                    if engine == "vitclassify":
                        out.setdefault(batch, {})["gflop_per_image"] = (j["gflops_per_second"] * j["ms_per_image_median"]
                                                                        / 1e3)
                    k = {f: j.get(f) for f in ("kernel_path", "gemm_kernel", "cpu_model")}
                    if engine.startswith("prec:"):
                        k.update({f: j.get(f) for f in ("precision", "linear_kernel")})
                    if engine not in kernels:
                        kernels[engine] = k
                    elif kernels[engine] != k:  # never expected: the path is fixed per binary and environment
                        kernels[engine].setdefault("changed", []).append(k)
                        log(f"warning: {engine_name(engine)} reported {k}, earlier {kernels[engine]}")
                else:
                    worker = tw if engine == "torch" else ow if engine == "ort" else others[engine]
                    times = worker.call("run", batch, args.warmup, args.iterations)
                    rounds[engine].append(median(times))
                    mins[engine].append(min(times))
            loads.append(os.getloadavg()[0])
            log(f"  {mbm.LABELS[key]} batch {batch} round {r + 1}/{args.rounds}: " + ", ".join(
                f"{engine_name(e)} {rounds[e][-1]:.2f}" for e in engines) + f" ms/img (load {loads[-1]:.2f})")
        res = out.setdefault(batch, {})
        for e in engines:
            res[e] = {"ms_per_image": median(rounds[e]), "round_medians": rounds[e], "min": min(mins[e])}
            if e in rss and e != "vitclassify":
                res[e]["peak_rss_mb"] = max(rss[e])
        res["peak_rss_mb"] = max(rss["vitclassify"])
    return out


def default_model_checks(binary, args):
    res = {}
    model_dir = os.path.join(REPO, args.default_model)
    if not os.path.exists(os.path.join(model_dir, "config.json")):
        res["skipped"] = f"{args.default_model} does not exist yet"
        return res
    env = dict(os.environ)
    if os.path.realpath(model_dir) != os.path.realpath(os.path.join(REPO, "weights", "fashion-mnist-vit")):
        env["VITCLASSIFY_MODEL"] = model_dir  # the commands stay the user's (no --model); the binary honours it
        res["model_note"] = f"default model overridden with VITCLASSIFY_MODEL={model_dir}"
    samples = sorted(f for f in os.listdir(os.path.join(REPO, "images")) if f.endswith(".png")) \
        if os.path.isdir(os.path.join(REPO, "images")) else []
    fm_dir = os.path.join(BENCH_OUT, "fmnist-test")
    n = export_fmnist_test(args.fmnist, fm_dir)
    if samples:
        image = os.path.join("images", samples[0])
    else:
        image = os.path.relpath(os.path.join(fm_dir, "00000.png"), REPO)
        res["cold_start_note"] = "images/ has no PNG; used the first Fashion-MNIST test image"
    cmd = [binary, image]
    res["cold_start_command"] = shlex.join([os.path.relpath(binary, REPO), image])
    if shutil.which("hyperfine"):
        with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as tf:
            jpath = tf.name
        subprocess.run(["hyperfine", "-N", "--warmup", "2", "--runs", str(args.cold_runs), "--export-json", jpath,
                        "--style", "none", shlex.join(cmd)], cwd=REPO, check=True, env=env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        with open(jpath) as f:
            h = json.load(f)["results"][0]
        os.unlink(jpath)
        res["cold_start_ms"] = h["median"] * 1e3
        res["cold_start_min_ms"] = h["min"] * 1e3
        res["cold_start_tool"] = f"hyperfine -N, median of {args.cold_runs} runs after 2 warm-ups"
    else:
        walls = []
        for i in range(args.cold_runs + 2):
            t0 = time.perf_counter()
            subprocess.run(cmd, cwd=REPO, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if i >= 2:
                walls.append((time.perf_counter() - t0) * 1e3)
        res["cold_start_ms"], res["cold_start_min_ms"] = median(walls), min(walls)
        res["cold_start_tool"] = f"timed in Python, median of {args.cold_runs} runs after 2 warm-ups"
    ips, walls = [], []
    bcmd = [binary, "batch", os.path.relpath(fm_dir, REPO)]
    res["batch_command"] = shlex.join([os.path.relpath(binary, REPO)] + bcmd[1:]) + " > /dev/null"
    for _ in range(args.batch_runs):
        time.sleep(args.settle)
        t0 = time.perf_counter()
        p = subprocess.run(bcmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        walls.append(time.perf_counter() - t0)
        m = re.search(r"done: (\d+) classified, (\d+) failed, ([\d.]+) s, ([\d.]+) images/s", p.stderr)
        if p.returncode != 0 or not m:
            res["batch_error"] = f"exit {p.returncode}: {p.stderr.strip()[-300:]}"
            return res
        ips.append(float(m.group(4)))
        res["batch_classified"], res["batch_failed"] = int(m.group(1)), int(m.group(2))
    res["batch_images"] = n
    res["batch_images_per_s"] = median(ips)
    res["batch_process_wall_s"] = median(walls)
    res["batch_runs"] = args.batch_runs
    return res


def vitb_batch_check(binary, args, images=48, size=320):
    """`vitclassify batch` over a folder of {images} {size}x{size} PNGs with the ViT-B/16 checkpoint: the
    whole pipeline (decode, resize/crop, forward, rows), as the issue asks for a ViT-B/16-sized model."""
    d = mbm.model_dir(os.path.join(BENCH_OUT, "models"), "b")
    if not os.path.exists(os.path.join(d, "config.json")):
        return {"skipped": "the ViT-B/16 benchmark checkpoint was not built (--models without b)"}
    folder = os.path.join(BENCH_OUT, f"vitb-batch-{images}x{size}")
    os.makedirs(folder, exist_ok=True)
    for i in range(images):
        path = os.path.join(folder, f"{i:03d}.png")
        if not os.path.exists(path):
            write_png_rgb(path, 1000 + i, size)
    cmd = [binary, "batch", os.path.relpath(folder, REPO), "--model", os.path.relpath(d, REPO), "--batch-size", "8",
           "--threads", str(args.threads)]
    ips = []
    for _ in range(max(1, args.batch_runs)):
        time.sleep(args.settle)
        p = subprocess.run(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        m = re.search(r"done: (\d+) classified, (\d+) failed, ([\d.]+) s, ([\d.]+) images/s", p.stderr)
        if p.returncode != 0 or not m:
            return {"command": shlex.join([os.path.relpath(binary, REPO)] + cmd[1:]), "error": p.stderr.strip()[-300:]}
        ips.append(float(m.group(4)))
    return {"command": shlex.join([os.path.relpath(binary, REPO)] + cmd[1:]) + " > /dev/null", "images": images,
            "size": size, "images_per_s": median(ips), "runs": len(ips)}


# --------------------------------------------------------------------------------------------- report
def ok(flag):
    return "✅" if flag else "❌"


def fmt_peak(peak):
    """'1 thread: 256-bit 60.1, 512-bit 118.9 GFLOP/s; 2 threads: ...'"""
    return "; ".join(f"{t} thread{'s' if t != '1' else ''}: "
                     + ", ".join(f"{b}-bit {v:.1f}" for b, v in sorted(bits.items())) + " GFLOP/s"
                     for t, bits in sorted(peak["gflops"].items(), key=lambda kv: int(kv[0])))


def isa_caveat(meta, args):
    """The plain statement of what --isa could not narrow, or None."""
    isa, m = getattr(args, "isa", "native"), meta["machine"]
    path = (meta.get("vitclassify_kernels") or {}).get("kernel_path") or isa
    if isa == "native":
        return None
    ti = meta.get("torch_isa") or {}
    mask = meta.get("ort_cpuid_mask") or {}
    if isa == "avx2" and m["avx512"] and mask.get("masked_calls"):
        return ("> **ONNX Runtime was narrowed to AVX2 by masking CPUID.** It has no switch for its kernel set, so its "
                "workers ran under `tools/cpuid_avx2only.c` (LD_PRELOAD; CPUID faulting, the AVX-512, AVX-VNNI and AMX "
                f"bits cleared; {mask['masked_calls']} CPUID calls answered in the first worker): MLAS saw a CPU without "
                "AVX-512 and ran its FMA3 kernels. vitclassify ran its "
                f"{path} path (`VITCLASSIFY_ISA=avx2`, under the same mask, so its INT8 kernel is the plain-AVX2 one) "
                "and PyTorch was narrowed to AVX2 (it reported ATen capability "
                f"{ti.get('aten_capability', '?')}, MKL {ti.get('mkl', '?')}, oneDNN {ti.get('onednn', '?')}). All three "
                "engines ran 256-bit kernels on this CPU; its caches, memory and 256-bit FMA rate are not a Zen 3's, "
                "so these ratios stand in for, and do not replace, a run on an AVX2-only CPU.")
    if isa == "avx2" and m["avx512"]:
        return (f"> **ONNX Runtime still used its AVX-512 kernels** ({mask.get('why') or 'no CPUID mask'}). vitclassify ran its "
                f"{path} path (`VITCLASSIFY_ISA=avx2`) and PyTorch was narrowed to AVX2 (it reported ATen capability "
                f"{ti.get('aten_capability', '?')}, MKL {ti.get('mkl', '?')}, oneDNN {ti.get('onednn', '?')}), but ONNX "
                "Runtime has no switch to turn its AVX-512 kernels off (MLAS picks them from CPUID), and this CPU has "
                "AVX-512. So the \"vs ORT\" ratios below compare vitclassify's AVX2 path with ORT's AVX-512 kernels: "
                "they are not the vitclassify-vs-ORT comparison on an AVX2-only CPU. The \"vs PyTorch\" ratios are "
                "AVX2 against AVX2.")
    if isa == "fallback":
        other = "AVX-512" if m["avx512"] else "AVX2" if m["avx2"] else "native"
        return (f"> **Only vitclassify was narrowed.** vitclassify ran its {path} path (`VITCLASSIFY_ISA=fallback`); "
                f"PyTorch and ONNX Runtime used their usual ({other}) kernels on this CPU, so the \"vs ORT\" and "
                "\"vs PyTorch\" ratios compare vitclassify's portable path with their vectorised kernels.")
    return None


def render(meta, results, rss, numerics, default, args):
    """One section of the report (no file title): `## <cpu model> — <path> path` and its ### subsections."""
    L = []
    a = L.append
    m = meta["machine"]
    k = meta.get("vitclassify_kernels") or {}
    isa = getattr(args, "isa", "native")
    engines = engine_list(args)
    baselines = [e for e in engines if e.startswith("baseline:")]
    caveat = isa_caveat(meta, args)
    ort_avx512 = isa == "avx2" and bool(m["avx512"]) and not (meta.get("ort_cpuid_mask") or {}).get("masked_calls")
    ort_targets = ORT_TARGETS_AVX2 if k.get("kernel_path") == "avx2" else ORT_TARGETS
    a(f"## {k.get('cpu_model') or m['cpu']} — {k.get('kernel_path') or 'unknown'} path"
      + (" (forced)" if isa != "native" else ""))
    a("")
    a(f"Generated by `tools/bench_compare.py` on {meta['date']}. Random-weight timm checkpoints "
      f"(224×224, 1000 classes; `tools/make_bench_models.py`), fp32, CPU, {args.threads} threads for every engine.")
    a("")
    if caveat:
        a(caveat)
        a("")
    for note in meta.get("isa_notes", []):
        a(f"> **Note:** {note}")
        a("")
    lb, la = meta["load_before"], meta["load_after"]
    # The benchmark itself keeps `threads` cores busy, so a 1-minute load average during the run up to about that is
    # its own; more means other processes competed for the CPU.
    busy = max(meta["load_during"] or [0]) > args.threads + 0.75
    if busy:
        a(f"> **Measured under load.** Load average (1/5/15 min) was {lb[0]:.2f}/{lb[1]:.2f}/{lb[2]:.2f} before and "
          f"{la[0]:.2f}/{la[1]:.2f}/{la[2]:.2f} after the run (1-min load {min(meta['load_during']):.2f}–"
          f"{max(meta['load_during']):.2f} during it) on {m['usable_cpus']} cores: other processes "
          "were competing for the CPU, so absolute numbers are noisy and pessimistic; the interleaved ratios are "
          "the more meaningful figures.")
    else:
        a(f"No other load: the 1-minute load average stayed at {min(meta['load_during'] or [0]):.2f}–"
          f"{max(meta['load_during'] or [0]):.2f} during the run, the benchmark's own {args.threads} threads "
          f"(1/5/15 min: {lb[0]:.2f}/{lb[1]:.2f}/{lb[2]:.2f} before, {la[0]:.2f}/{la[1]:.2f}/{la[2]:.2f} after).")
    a("")
    a("### Machine and versions")
    a("")
    a("| | |")
    a("|---|---|")
    a(f"| CPU | {m['cpu']} |")
    a(f"| cores | {m['usable_cpus']} usable ({m['logical_cpus']} logical) |")
    a(f"| AVX-512 | {'yes (' + ', '.join(m['avx512']) + ')' if m['avx512'] else 'no'}; AVX2 {'yes' if m['avx2'] else 'no'}, FMA {'yes' if m['fma'] else 'no'} |")
    peak = meta.get("fma_peak")
    if peak is None:
        a("| FMA peak | not measured (results from before `--peak`) |")
    elif peak.get("gflops"):
        a(f"| FMA peak (measured) | {fmt_peak(peak)} (`{peak['command']}`: independent FMA chains, no memory "
          "operands, best of 5; the ceiling for any fp32 GEMM on this machine at the time) |")
    else:
        a(f"| FMA peak | not measured: {peak.get('skipped', '?')} |")
    a(f"| memory | {m['mem_gib']:.1f} GiB |")
    a(f"| OS | {m['os']}, Linux {m['kernel']} |")
    g = meta["git"]
    a(f"| vitclassify | commit `{g['commit']}`{' + uncommitted changes under Sources/' if g['dirty_sources'] else ''}, "
      f"`swift build -c release` ({meta['swift']}), binary `{meta['binary']}` built {meta['binary_mtime']} |")
    how = ("picked at run time" if isa == "native" else f"forced with `VITCLASSIFY_ISA={isa}` for every vitclassify "
           "process of this section: bench, numerics, default model")
    if k.get("kernel_path"):
        a(f"| vitclassify kernels | **{k['kernel_path']}** path ({how}), GEMM micro-kernel `{k.get('gemm_kernel')}`; "
          f"CPU model as vitclassify reads it: {k.get('cpu_model')} |")
    else:
        a(f"| vitclassify kernels | not reported by this binary (no `kernel_path` in its bench JSON; {how}) |")
    for e in baselines:
        bk = (meta.get("baseline_kernels") or {}).get(e) or {}
        paths = (f"kernel path {bk['kernel_path']}, GEMM micro-kernel `{bk.get('gemm_kernel')}`" if bk.get("kernel_path")
                 else "reports no kernel path")
        prefix = (meta.get("baselines") or {}).get(engine_name(e), "?")
        a(f"| baseline {engine_name(e)} | `{prefix} bench …` ({paths}"
          + (f"; run with `VITCLASSIFY_ISA={isa}` in its environment too" if isa != "native" else "") + ") |")
    ob = meta["openblas"]
    a(f"| OpenBLAS | {('`' + ob['config'] + '`, core ' + ob['core'] + ' (' + ob['path'] + ')') if ob else 'unknown'} |")
    v = meta["versions"]
    ti = meta.get("torch_isa")
    tisa = ""
    if ti:
        tisa = (f"; ATen CPU capability {ti['aten_capability']}, MKL {ti.get('mkl')}, oneDNN {ti.get('onednn')} "
                "(reported inside the worker)")
        if ti.get("env"):
            tisa += "; worker started with " + ", ".join(f"`{n}={x}`" for n, x in ti["env"].items())
    a(f"| PyTorch | {v['torch']} (eager, `torch.set_num_threads({args.threads})`, `inference_mode`{tisa}) |")
    a(f"| ONNX Runtime | {v['onnxruntime']} (CPUExecutionProvider, intra-op {args.threads}, inter-op 1, sequential, "
      f"graph optimisation ALL; opset {mbm.OPSET} TorchScript export"
      + (f"; run under `tools/cpuid_avx2only.c` (CPUID masked: no AVX-512, AVX-VNNI or AMX), so MLAS used its AVX2 (FMA3) kernels"
         if (meta.get("ort_cpuid_mask") or {}).get("masked_calls") else
         "; not narrowed by `--isa`: no switch exists, MLAS picks its kernels from CPUID" if isa != "native" else "")
      + ") |")
    a(f"| timm | {v['timm']} |")
    a(f"| Python | {v['python']} |")
    a("")
    a("Command:")
    a("")
    a("```")
    a(meta["command"])
    a("```")
    a("")
    a(f"Method: for each model and batch size, {args.rounds} rounds; in each round every engine (order rotated "
      f"per round) does {args.warmup} warm-up then {args.iterations} timed forward passes on a synthetic "
      "uniform[-1, 1) input, and the round's value is the median ms/image. Reported: the median of the round "
      "values. vitclassify runs as `vitclassify bench --format json --no-cold-start` (a new process per round)"
      + (", and so does each baseline (its command prefix + `bench …`), in the same rotation" if baselines else "")
      + "; PyTorch and ONNX Runtime each run in a separate long-lived worker process (spawned by the script), with "
      f"a {args.settle:g} s pause between engines. GFLOP/img = 2 × multiply-adds, as `vitclassify bench` counts them; "
      "vitclassify GFLOP/s = GFLOP/img × 1000 / ms/img"
      + (f", in brackets as a share of the measured {'512' if k.get('kernel_path') == 'avx512' else '256'}-bit FMA "
         f"peak on {args.threads} threads" if peak_for(meta, args.threads) else "") + ".")
    a("")
    a(f"Idle-wait of the ORT and PyTorch thread pools (`--spin {args.spin}`): "
      + ("both the libraries' default (spinning) and non-spinning settings were probed per model (batch 1, 1 warm-up "
         "+ 3 passes) and the faster was timed, so neither engine is penalised for spin-waiting while other "
         "processes hold the cores. vitclassify (OpenBLAS) runs with its defaults." if args.spin == "auto" else
         ("the libraries' defaults (spinning)." if args.spin == "on" else "spinning off (ORT allow_spinning=0, "
                                                                           "OMP_WAIT_POLICY=PASSIVE).")))
    a("")
    if args.spin == "auto":
        a("| model | ONNX Runtime | PyTorch | probe ms/img (ORT spin / no spin, PyTorch spin / no spin) |")
        a("|---|---|---|---|")
        for key in args.models:
            ch, pr = results[key]["variants"], results[key]["probe"]
            a(f"| {mbm.LABELS[key]} | {VARIANTS['ort'][ch['ort']]} | {VARIANTS['torch'][ch['torch']]} | "
              f"{pr['ort/spin']:.1f} / {pr['ort/nospin']:.1f}, {pr['torch/spin']:.1f} / {pr['torch/nospin']:.1f} |")
        a("")
    peak_gf = peak_for(meta, args.threads)
    vs_ort = "vs ORT (ORT on AVX-512)" if ort_avx512 else "vs ORT"
    for batch in args.batches:
        a(f"### Batch {batch}")
        a("")
        bnames = [engine_name(e) for e in baselines]
        a("| model | GFLOP/img | vitclassify ms/img | vitclassify GFLOP/s | "
          + "".join(f"{n} ms/img | " for n in bnames) + "ORT ms/img | PyTorch ms/img | "
          + "".join(f"vs {n} | " for n in bnames) + f"{vs_ort} | vs PyTorch | target |")
        a("|---|---:|---:|---:|" + "---:|" * (2 * len(bnames)) + "---:|---:|---:|---:|---|")
        for key in args.models:
            r = results[key][batch]
            vc, orr, pt = (r[e]["ms_per_image"] for e in ENGINES)
            ratio, speed = vc / orr, pt / vc
            gf = r["gflop_per_image"] * 1000 / vc
            gfs = f"{gf:.1f}" + (f" ({gf / peak_gf * 100:.0f}%)" if peak_gf else "")
            tgt = []
            lim = ort_targets.get(batch, {}).get(key)
            if lim is not None:
                tgt.append(f"{ok(ratio <= lim)} ≤ {lim:.2f}× ORT" + (" (ORT on AVX-512)" if ort_avx512 else ""))
            tgt.append(f"{ok(speed >= TORCH_SPEEDUP_TARGET)} ≥ {TORCH_SPEEDUP_TARGET}× faster than PyTorch")
            a(f"| {mbm.LABELS[key]} | {r['gflop_per_image']:.2f} | {vc:.2f} | {gfs} | "
              + "".join(f"{r[e]['ms_per_image']:.2f} | " for e in baselines) + f"{orr:.2f} | {pt:.2f} | "
              + "".join(f"{vc / r[e]['ms_per_image']:.2f}× | " for e in baselines)
              + f"{ratio:.2f}× | {speed:.2f}× | {', '.join(tgt)} |")
        a("")
        if baselines:
            a("vs a baseline and vs ORT: vitclassify's time / theirs (below 1 = vitclassify faster); vs PyTorch: "
              "PyTorch's time / vitclassify's (above 1 = vitclassify faster).")
            a("")
        per_round = []
        for key in args.models:
            r = results[key][batch]
            vc, orr, pt = (r[e]["round_medians"] for e in ENGINES)
            per_round.append(f"{mbm.LABELS[key]} "
                             + "".join(f"{median([v / b for v, b in zip(vc, r[e]['round_medians'])]):.2f}× / "
                                       for e in baselines)
                             + f"{median([v / o for v, o in zip(vc, orr)]):.2f}× / "
                             f"{median([p / v for v, p in zip(vc, pt)]):.2f}×")
        a("Median of the per-round ratios (each round compares engines run back to back, so this is less sensitive "
          "to load drift between rounds), " + "".join(f"vs {n} / " for n in bnames) + "vs ORT / vs PyTorch: "
          + "; ".join(per_round) + ".")
        a("")
        a("<details><summary>Per-round medians (ms/img) and best single pass</summary>")
        a("")
        a("| model | engine | round medians | best pass |")
        a("|---|---|---|---:|")
        for key in args.models:
            for e in engines:
                r = results[key][batch][e]
                a(f"| {mbm.LABELS[key]} | {engine_name(e)} | {', '.join(f'{t:.2f}' for t in r['round_medians'])} | {r['min']:.2f} |")
        a("")
        a("</details>")
        a("")
    precs = [e for e in engines if e.startswith("prec:")]
    if precs:
        render_precision(a, meta, results, rss, args, precs, "ort-int8" in engines)
    a("### vitclassify peak RSS")
    a("")
    a(f"Target: peak RSS ≤ {RSS_FACTOR} × fp32 weight bytes + {RSS_SLACK_MB:g} MB (MB = MiB; `ru_maxrss` of the "
      "`vitclassify bench` process, max over rounds).")
    a("")
    a("| model | fp32 weights MB | limit MB | " + " | ".join(f"peak RSS batch {b} MB" for b in args.batches) + " | target |")
    a("|---|---:|---:|" + "---:|" * len(args.batches) + "---|")
    for key in args.models:
        w = rss[key]["weights_mb"]
        lim = RSS_FACTOR * w + RSS_SLACK_MB
        peaks = [results[key][b]["peak_rss_mb"] for b in args.batches]
        a(f"| {mbm.LABELS[key]} | {w:.1f} | {lim:.1f} | " + " | ".join(f"{p:.1f}" for p in peaks)
          + f" | {ok(all(p <= lim for p in peaks))} |")
    a("")
    a("### Numerical agreement")
    a("")
    a("One 224×224 RGB PNG per model: vitclassify (`vitclassify IMG --model DIR --format json --top-k 0`, its own "
      "PNG decoding and preprocessing) vs timm (Pillow + `timm.data.create_transform` from config.json), and ONNX "
      "Runtime vs PyTorch on timm's preprocessed tensor.")
    a("")
    a("| model | max logit | max \\|vitclassify − PyTorch\\| | max \\|ORT − PyTorch\\| | same top-1 |")
    a("|---|---:|---:|---:|---|")
    for key in args.models:
        n = numerics[key]
        vcd = f"{n['vitclassify_vs_torch_max_abs']:.2e}" if "vitclassify_vs_torch_max_abs" in n else "error: " + n.get("vitclassify_error", "?")
        a(f"| {mbm.LABELS[key]} | {n['logit_scale']:.2f} | {vcd} | {n['torch_vs_ort_max_abs']:.2e} | "
          f"{ok(n.get('top1_agree', False))} |")
    a("")
    a(f"### Default model ({args.default_model})")
    a("")
    if "skipped" in default:
        a(f"Not measured: {default['skipped']}.")
    elif args.skip_default:
        a("Not measured (--skip-default).")
    else:
        a("| measurement | value | target |")
        a("|---|---:|---|")
        if "cold_start_ms" in default:
            a(f"| cold start: `{default['cold_start_command']}`, whole-process wall time ({default['cold_start_tool']}; "
              f"min {default['cold_start_min_ms']:.1f} ms) | {default['cold_start_ms']:.1f} ms | "
              f"{ok(default['cold_start_ms'] <= COLD_START_TARGET_MS)} ≤ {COLD_START_TARGET_MS:g} ms |")
        if "batch_images_per_s" in default:
            a(f"| `{default['batch_command']}`: {default['batch_classified']:,} test PNGs, {default['batch_failed']} failed, "
              f"images/s from its summary line (median of {default['batch_runs']} runs; whole process "
              f"{default['batch_process_wall_s']:.2f} s) | {default['batch_images_per_s']:,.0f} images/s | "
              f"{ok(default['batch_images_per_s'] >= BATCH_TARGET_IPS)} ≥ {BATCH_TARGET_IPS:,.0f} images/s |")
        elif "batch_error" in default:
            a(f"| `{default['batch_command']}` | failed: {default['batch_error']} | |")
        for note in ("model_note", "cold_start_note"):
            if note in default:
                a("")
                a(f"Note: {default[note]}.")
        a("")
        a("Both run with the default thread count (all cores) as a user would, without `--threads`.")
    vb = default.get("vitb_batch") if default else None
    if vb:
        a("")
        a("### Batch throughput with a ViT-B/16-sized checkpoint")
        a("")
        if "images_per_s" in vb:
            a(f"`{vb['command']}`: {vb['images']} PNGs of {vb['size']}×{vb['size']} (decode, resize and crop, forward, rows): "
              f"**{vb['images_per_s']:.2f} images/s** (median of {vb['runs']} runs).")
        else:
            a(f"Not measured: {vb.get('skipped') or vb.get('error')}.")
    a("")
    return "\n".join(L).rstrip("\n") + "\n"


def render_precision(a, meta, results, rss, args, precs, with_ort_int8):
    """The --precision subsection: vitclassify fp32 / bf16 / int8 beside ONNX Runtime fp32 and INT8, ratios from the
    same rounds, and the INT8 peak RSS target."""
    pk = meta.get("precision_kernels") or {}
    a("### Reduced precision (`--precision`)")
    a("")
    a("Kernels: " + "; ".join(f"{engine_name(e)}: `{(pk.get(e) or {}).get('linear_kernel')}` for the blocks' linear "
                             "layers" for e in precs)
      + (". ONNX Runtime INT8: `onnxruntime.quantization.quantize_dynamic(model.onnx, weight_type=QInt8, "
         "per_channel=True)` of the same exported model (dynamic per-tensor UINT8 activations), run like ONNX "
         "Runtime fp32." if with_ort_int8 else "."))
    a("")
    for batch in args.batches:
        a(f"Batch {batch}, ms/image (median of the round medians) and time ratios (median of the per-round ratios; "
          "below 1 = the first is faster):")
        a("")
        head = ["model", "fp32 ms"] + [f"{e.split(':')[1]} ms" for e in precs] + ["ORT fp32 ms"]
        head += ["ORT INT8 ms"] if with_ort_int8 else []
        head += [f"{e.split(':')[1]} / fp32" for e in precs] + (["int8 / ORT INT8"] if with_ort_int8 else [])
        head += [f"{e.split(':')[1]} GOP/s" for e in precs] + ["target"]
        a("| " + " | ".join(head) + " |")
        a("|---|" + "---:|" * (len(head) - 2) + "---|")
        for key in args.models:
            r = results[key][batch]

            def ratio(x, y):
                return median([u / v for u, v in zip(r[x]["round_medians"], r[y]["round_medians"])])

            row = [mbm.LABELS[key], f"{r['vitclassify']['ms_per_image']:.2f}"]
            row += [f"{r[e]['ms_per_image']:.2f}" for e in precs] + [f"{r['ort']['ms_per_image']:.2f}"]
            row += [f"{r['ort-int8']['ms_per_image']:.2f}"] if with_ort_int8 else []
            row += [f"{ratio(e, 'vitclassify'):.2f}×" for e in precs]
            tgt = []
            if with_ort_int8 and "prec:int8" in precs:
                q = ratio("prec:int8", "ort-int8")
                row.append(f"{q:.2f}×")
                lim = INT8_ORT_TARGETS.get(key)
                if lim is not None:
                    tgt.append(f"{ok(q <= lim)} int8 ≤ {lim:.2f}× ORT INT8")
            row += [f"{r['gflop_per_image'] * 1000 / r[e]['ms_per_image']:.0f}" for e in precs]
            if key == "b" and "prec:bf16" in precs and "bf16" in ((pk.get("prec:bf16") or {}).get("linear_kernel") or ""):
                q = ratio("prec:bf16", "vitclassify")
                tgt.append(f"{ok(q <= BF16_FP32_TARGET)} bf16 ≤ {BF16_FP32_TARGET:.2f}× fp32")
            row.append(", ".join(tgt))
            a("| " + " | ".join(row) + " |")
        a("")
    if "prec:int8" in precs:
        a(f"INT8 peak RSS (target for ViT-B/16: ≤ {INT8_RSS_FACTOR} × fp32 weight bytes + {RSS_SLACK_MB:g} MB):")
        a("")
        a("| model | fp32 weights MB | limit MB | " + " | ".join(f"int8 batch {b} MB" for b in args.batches)
          + " | " + " | ".join(f"fp32 batch {b} MB" for b in args.batches) + " | target |")
        a("|---|---:|---:|" + "---:|" * (2 * len(args.batches)) + "---|")
        for key in args.models:
            w = rss[key]["weights_mb"]
            lim = INT8_RSS_FACTOR * w + RSS_SLACK_MB
            peaks = [results[key][b]["prec:int8"]["peak_rss_mb"] for b in args.batches]
            a(f"| {mbm.LABELS[key]} | {w:.1f} | {lim:.1f} | " + " | ".join(f"{p:.1f}" for p in peaks) + " | "
              + " | ".join(f"{results[key][b]['peak_rss_mb']:.1f}" for b in args.batches)
              + (f" | {ok(all(p <= lim for p in peaks))} |" if key == "b" else " | (ViT-B/16 only) |"))
        a("")


# --------------------------------------------------------------------------------------------- main
def ort_int8_model(model_dir):
    """model.int8.onnx beside model.onnx: `onnxruntime.quantization.quantize_dynamic` (QInt8 weights per channel,
    every op type it quantises by default), built once in a child process (the parent stays free of onnxruntime)."""
    out = os.path.join(model_dir, "model.int8.onnx")
    if not os.path.exists(out):
        code = ("import sys; from onnxruntime.quantization import quantize_dynamic, QuantType; "
                "quantize_dynamic(sys.argv[1], sys.argv[2], weight_type=QuantType.QInt8, per_channel=True)")
        subprocess.run([sys.executable, "-c", code, os.path.join(model_dir, "model.onnx"), out + ".tmp"], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.replace(out + ".tmp", out)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--iterations", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--models", default="ti,s,b")
    ap.add_argument("--batches", default="1,8")
    ap.add_argument("--out", default=None, help="Markdown report (default BENCHMARKS.md; --quick: bench-out/BENCHMARKS.quick.md); "
                    "only this run's section (same CPU model and kernel path) is replaced or appended")
    ap.add_argument("--quick", action="store_true", help="smoke run: ViT-Ti only, batch 1, 2 rounds x 3 iterations, 1 warm-up")
    ap.add_argument("--vitclassify", default=os.path.join(REPO, ".build-bench", "release", "vitclassify"))
    ap.add_argument("--isa", choices=["native", "avx2", "fallback"], default="native",
                    help="vitclassify's kernel path: VITCLASSIFY_ISA for every vitclassify/baseline process; avx2 also "
                         "narrows PyTorch (ATEN_CPU_CAPABILITY, MKL_ENABLE_INSTRUCTIONS, ONEDNN_MAX_CPU_ISA); ONNX "
                         "Runtime cannot be narrowed")
    ap.add_argument("--baseline", action="append", default=[], metavar="NAME=COMMAND_PREFIX",
                    help="another vitclassify-like binary timed in the same rounds (repeatable); the prefix is split "
                         "shell-style and `bench --model ... --format json ...` is appended, e.g. "
                         "'openblas-path=env VITCLASSIFY_NO_PACKED_GEMM=1 /tmp/old-build/release/vitclassify'")
    ap.add_argument("--spin", choices=["auto", "on", "off"], default="auto",
                    help="idle-wait of ORT/PyTorch pool threads: auto = probe spinning and non-spinning per model, "
                         "keep the faster (default); on = the libraries' defaults; off = no spinning")
    ap.add_argument("--settle", type=float, default=0.2, help="seconds of pause before each engine's turn")
    ap.add_argument("--cold-runs", type=int, default=10)
    ap.add_argument("--batch-runs", type=int, default=3)
    ap.add_argument("--fmnist", default="/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz")
    ap.add_argument("--default-model", default=os.path.join("weights", "fashion-mnist-vit"),
                    help="the default model's folder (another one is passed through $VITCLASSIFY_MODEL)")
    ap.add_argument("--from-json", metavar="PATH",
                    help="re-render the report from a results JSON of an earlier run (bench-out/bench_results.json)")
    ap.add_argument("--skip-default", action="store_true", help="skip the default-model measurements")
    ap.add_argument("--precision", default="", metavar="LIST",
                    help="also time vitclassify with `bench --precision P` for each P of a comma list (bf16, int8); "
                         "with int8, also ONNX Runtime on quantize_dynamic of the same ONNX model (QInt8 weights per "
                         "channel, dynamic UINT8 activations): the reduced-precision tables")
    args = ap.parse_args()
    argv = sys.argv[1:]
    try:
        baselines = parse_baselines(args.baseline)
    except ValueError as e:
        ap.error(str(e))
    if args.quick:
        if "--models" not in argv:
            args.models = "ti"
        if "--batches" not in argv:
            args.batches = "1"
        if "--rounds" not in argv:
            args.rounds = 2
        if "--iterations" not in argv:
            args.iterations = 3
        if "--warmup" not in argv:
            args.warmup = 1
        args.cold_runs = min(args.cold_runs, 3)
        args.batch_runs = 1
    if args.out is None:
        args.out = os.path.join(BENCH_OUT, "BENCHMARKS.quick.md") if args.quick else os.path.join(REPO, "BENCHMARKS.md")
    args.models = [m.strip() for m in args.models.split(",") if m.strip()]
    args.batches = [int(b) for b in args.batches.split(",")]
    if args.from_json:
        with open(args.from_json) as f:
            saved = json.load(f)
        args.isa, args.baseline = "native", []  # what a results file from before --isa/--baseline measured
        for k, v in saved["meta"].get("args", {}).items():
            if k not in ("out", "from_json", "quick"):
                setattr(args, k, v)
        results = {k: {(int(b) if b.isdigit() else b): v for b, v in r.items()} for k, r in saved["results"].items()}
        key = section_key(saved["meta"])
        action = write_section(args.out, key, render(saved["meta"], results, saved["rss"], saved["numerics"],
                                                     saved["default_model"], args))
        log(f"re-rendered {args.out} from {args.from_json} ({action} {key})")
        return
    for key in args.models:
        if key not in mbm.MODELS:
            ap.error(f"unknown model '{key}' (known: {', '.join(mbm.MODELS)})")
    binary = os.path.abspath(args.vitclassify)
    if not os.access(binary, os.X_OK):
        sys.exit(f"{binary} not found: run `swift build -c release --scratch-path .build-bench` first "
                 "(or pass --vitclassify PATH)")
    os.makedirs(BENCH_OUT, exist_ok=True)

    # Same thread count everywhere; the env covers OpenMP/MKL in the torch worker and OpenBLAS's default.
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    # --isa: every vitclassify and baseline process inherits this environment (a baseline's prefix can still set its
    # own with `env`); the PyTorch workers get TORCH_ISA_ENV[isa] at spawn, nothing inherited from the caller.
    for var in VITCLASSIFY_ISA_VARS + TORCH_ISA_VARS:
        if var in os.environ:
            log(f"ignoring {var}={os.environ.pop(var)} from the environment (--isa {args.isa} decides)")
    if args.isa != "native":
        os.environ["VITCLASSIFY_ISA"] = args.isa
    if args.isa == "avx2" and "OPENBLAS_CORETYPE" not in os.environ:
        # OpenBLAS (vitclassify's explanations; its attention core did until 2026-11-27; the old engine a baseline may
        # run) would still pick its AVX-512 (SkylakeX) kernels here; Haswell is what it picks on an AVX2-only CPU
        # (Zen 3 included: its "Zen" core uses the Haswell kernels).
        os.environ["OPENBLAS_CORETYPE"] = "Haswell"
    torch_env = TORCH_ISA_ENV.get(args.isa, {})

    meta = {"date": datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
            "command": ".venv-tools/bin/python tools/bench_compare.py " + shlex.join(argv) if argv else
            ".venv-tools/bin/python tools/bench_compare.py",
            "machine": machine_info(), "git": git_info(), "swift": swift_version(), "openblas": openblas_info(binary),
            "load_before": os.getloadavg(), "load_during": [], "args": dict(vars(args)), "binary": os.path.relpath(binary, REPO),
            "binary_mtime": datetime.datetime.fromtimestamp(os.path.getmtime(binary)).astimezone().strftime("%Y-%m-%d %H:%M %Z")}
    meta["isa"] = args.isa
    meta["baselines"] = {n: shlex.join(p) for n, p in baselines}
    meta["isa_notes"] = []
    log(f"load average before: {meta['load_before']}")
    log("measuring the FMA peak (tools/gemm_bench/run.sh --peak)")
    meta["fma_peak"] = fma_peak()
    log(f"FMA peak: {fmt_peak(meta['fma_peak']) if meta['fma_peak'].get('gflops') else meta['fma_peak'].get('skipped')}")

    # Checkpoints + ONNX, built once and cached (in a child process: the parent stays free of torch).
    log("checking/building benchmark models")
    subprocess.run([sys.executable, os.path.join(TOOLS, "make_bench_models.py"), "--models", ",".join(args.models),
                    "--out", os.path.join(BENCH_OUT, "models")], check=True, stdout=subprocess.DEVNULL)

    variants = ["spin", "nospin"] if args.spin == "auto" else ["spin" if args.spin == "on" else "nospin"]
    ort_env = {}
    if args.isa == "avx2" and meta["machine"]["avx512"]:
        lib, why = cpuid_mask_library()
        meta["ort_cpuid_mask"] = {"library": lib and os.path.relpath(lib, REPO), "why": why}
        if lib:
            ort_env["LD_PRELOAD"] = ":".join(filter(None, [lib, os.environ.get("LD_PRELOAD")]))
            # vitclassify under the mask too: VITCLASSIFY_ISA=avx2 alone still lets it pick AVX-VNNI INT8 kernels
            # (an AVX2-level instruction set, but not on a Zen 3), so every engine sees what an AVX2-only CPU shows.
            os.environ["LD_PRELOAD"] = ort_env["LD_PRELOAD"]
        log(f"ONNX Runtime and vitclassify under the CPUID mask: {lib or why}")
    workers = {"torch": {v: Worker(torch_worker, args.threads,
                                   env={**torch_env, **({"OMP_WAIT_POLICY": "PASSIVE"} if v == "nospin" else {})})
                         for v in variants},
               "ort": {v: Worker(ort_worker, args.threads, v == "spin", env=ort_env) for v in variants}}
    if "int8" in precisions(args):
        workers["ort-int8"] = {v: Worker(ort_worker, args.threads, v == "spin", "model.int8.onnx", env=ort_env)
                               for v in variants}
    tw0, ow0 = workers["torch"][variants[0]], workers["ort"][variants[0]]
    meta["versions"] = {**{k: v for k, v in tw0.info.items() if k != "isa"}, **ow0.info,
                        "python": platform.python_version()}
    meta["torch_isa"] = tw0.info["isa"]
    log(f"PyTorch worker ISA: {meta['torch_isa']}")
    for v, w in workers["torch"].items():
        if w.info["isa"] != meta["torch_isa"]:
            meta["isa_notes"].append(f"the PyTorch workers disagree on their ISA: {v} reported {w.info['isa']}")
    ti = meta["torch_isa"]
    if args.isa == "avx2" and (ti["aten_capability"].upper() != "AVX2" or ti.get("mkl") != "AVX2"
                               or "AVX2" not in ti.get("onednn", "")
                               or any(x in ti.get("onednn", "") for x in ("512", "AVX10", "AMX"))):
        meta["isa_notes"].append(f"PyTorch was asked for AVX2 ({', '.join(f'{k}={v}' for k, v in torch_env.items())}) "
                                 f"but reported ATen capability {meta['torch_isa']['aten_capability']}, MKL "
                                 f"{meta['torch_isa'].get('mkl')}, oneDNN {meta['torch_isa'].get('onednn')}")
    commands = {"vitclassify": [binary], **{f"baseline:{n}": p for n, p in baselines},
                **{f"prec:{x}": [binary] for x in precisions(args)}}
    kernels = {}
    results, rss, numerics, chosen = {}, {}, {}, {}
    try:
        for key in args.models:
            d = mbm.model_dir(os.path.join(BENCH_OUT, "models"), key)
            with open(os.path.join(d, "meta.json")) as f:
                rss[key] = {"weights_mb": json.load(f)["fp32_weight_bytes"] / 2**20}
            if "ort-int8" in workers:
                log(f"{mbm.LABELS[key]}: ONNX Runtime quantize_dynamic -> {ort_int8_model(d)}")
            log(f"{mbm.LABELS[key]}: loading into PyTorch and ONNX Runtime workers")
            for name, engine in workers.items():
                for w in engine.values():
                    loaded = w.call("load", d)
                    if name == "ort" and "ort_cpuid_mask" in meta and isinstance(loaded, dict):
                        meta["ort_cpuid_mask"].setdefault("masked_calls", loaded.get("cpuid_masked_calls"))
            numerics[key] = numerics_check(binary, key, d, tw0, ow0, args.threads)
            log(f"{mbm.LABELS[key]}: numerics {numerics[key]}")
            if len(variants) > 1:
                chosen[key], probe = probe_variants(key, workers)
            else:
                chosen[key], probe = {e: variants[0] for e in workers}, {}
            results[key] = bench_model(commands, key, d, args.batches, args, workers["torch"][chosen[key]["torch"]],
                                       workers["ort"][chosen[key]["ort"]], meta["load_during"], kernels,
                                       {e: workers[e][chosen[key][e]] for e in workers if e not in ("torch", "ort")})
            if "vitclassify_kernels" not in meta:
                meta["vitclassify_kernels"] = kernels.get("vitclassify") or {}
                log(f"vitclassify kernels: {meta['vitclassify_kernels']}")
                got = meta["vitclassify_kernels"].get("kernel_path")
                if args.isa != "native" and got != args.isa:
                    meta["isa_notes"].append(f"`VITCLASSIFY_ISA={args.isa}` was set but vitclassify reported the "
                                             f"{got or 'unknown'} kernel path")
                    log(f"warning: {meta['isa_notes'][-1]}")
            results[key]["variants"], results[key]["probe"] = chosen[key], probe
            for engine in workers.values():  # free the model in every worker before the next one
                for w in engine.values():
                    w.call("unload")
    finally:
        for engine in workers.values():
            for w in engine.values():
                w.close()

    default = {} if args.skip_default else default_model_checks(binary, args)
    if "b" in args.models:
        default["vitb_batch"] = vitb_batch_check(binary, args)
    if default:
        log(f"default model: {default}")
    meta["load_after"] = os.getloadavg()
    log(f"load average after: {meta['load_after']}")
    meta["baseline_kernels"] = {e: k for e, k in kernels.items() if e != "vitclassify" and not e.startswith("prec:")}
    meta["precision_kernels"] = {e: k for e, k in kernels.items() if e.startswith("prec:")}

    key = section_key(meta)
    action = write_section(args.out, key, render(meta, results, rss, numerics, default, args))
    log(f"{args.out}: {action} {key}")
    raw = os.path.join(BENCH_OUT, "bench_results" + (".quick" if args.quick else "") + ".json")
    with open(raw, "w") as f:
        json.dump({"meta": meta, "results": {k: {str(b): v for b, v in r.items()} for k, r in results.items()},
                   "rss": rss, "numerics": numerics, "default_model": default}, f, indent=2)
    log(f"wrote {args.out} and {raw}")


if __name__ == "__main__":
    main()
