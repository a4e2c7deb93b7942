/* cpuid_avx2only.so: make a process see an x86-64 CPU with AVX2 and FMA but no AVX-512 (a Zen 3 /
 * Haswell-class feature set), so that libraries which pick their kernels from CPUID alone and offer no
 * option to narrow them (ONNX Runtime's MLAS, also PyTorch's cpuinfo/MKL/oneDNN) run their AVX2 kernels
 * on an AVX-512 machine. Used by `tools/bench_compare.py --isa avx2` to time the anchors on the same
 * instruction set as vitclassify's forced AVX2 path.
 *
 *   cc -O2 -shared -fPIC -o cpuid_avx2only.so tools/cpuid_avx2only.c
 *   LD_PRELOAD=$PWD/cpuid_avx2only.so python3 ...
 *
 * With CPUID_MASK=zen4 in the environment it hides only what a Zen 4 lacks (AMX, AVX-VNNI, AVX512-FP16 ...) and
 * keeps AVX-512 with VNNI and BF16: the INT8 kernels a Zen 4 runs (BENCHMARKS.md, "INT8 on AVX-512 without AMX").
 *
 * How: Linux's arch_prctl(ARCH_SET_CPUID, 0) makes the CPUID instruction fault in this thread and the
 * threads it creates (needs the CPU's "cpuid_fault" feature, /proc/cpuinfo; KVM guests have it). The
 * SIGSEGV handler below runs the real CPUID with faulting briefly re-enabled, clears the AVX-512,
 * AVX-VNNI and AMX bits, writes the result into the interrupted context and steps over the instruction.
 * Other faults are passed to the previous handler (or the default action). The setting is reset by
 * execve, so a child process is covered only if it inherits LD_PRELOAD. The C library's own dispatch
 * (memcpy etc.) was chosen before this constructor runs and is not affected.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ucontext.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <asm/prctl.h>
#include <cpuid.h>

#ifndef ARCH_SET_CPUID
#define ARCH_SET_CPUID 0x1012
#endif

static struct sigaction previous;
static volatile long masked_calls;

/* How many CPUID instructions were answered with the masked feature set so far (tools call it via ctypes
 * to show that a library's dispatch really went through the mask). */
long cpuid_avx2only_calls(void) { return masked_calls; }

/* CPUID_MASK=zen4 in the environment: keep AVX-512 (F..VL, VNNI, BF16) and clear only what a Zen 4 lacks (AMX,
 * AVX-VNNI, AVX512-FP16, AMX-FP16, AVX-IFMA, VP2INTERSECT), so that the INT8 kernels are the AVX512-VNNI ones. */
static int zen4;

static void masked_cpuid(uint32_t leaf, uint32_t sub, uint32_t r[4]) {
    syscall(SYS_arch_prctl, ARCH_SET_CPUID, 1);
    __cpuid_count(leaf, sub, r[0], r[1], r[2], r[3]);
    syscall(SYS_arch_prctl, ARCH_SET_CPUID, 0);
    if (zen4) {
        if (leaf == 7 && sub == 0) r[3] &= ~((1u << 8) | (1u << 22) | (1u << 23) | (1u << 24) | (1u << 25));
        else if (leaf == 7 && sub == 1) r[0] &= ~((1u << 4) | (1u << 21) | (1u << 23));
        else if (leaf == 0xD && sub == 0) r[0] &= ~((1u << 17) | (1u << 18));
        return;
    }
    if (leaf == 7 && sub == 0) {
        /* EBX: AVX512F 16, DQ 17, IFMA 21, PF 26, ER 27, CD 28, BW 30, VL 31 */
        r[1] &= ~((1u << 16) | (1u << 17) | (1u << 21) | (1u << 26) | (1u << 27) | (1u << 28) |
                  (1u << 30) | (1u << 31));
        /* ECX: VBMI 1, VBMI2 6, GFNI-512 n/a, VNNI 11, BITALG 12, VPOPCNTDQ 14 */
        r[2] &= ~((1u << 1) | (1u << 6) | (1u << 11) | (1u << 12) | (1u << 14));
        /* EDX: 4VNNIW 2, 4FMAPS 3, VP2INTERSECT 8, AMX-BF16 22, AVX512-FP16 23, AMX-TILE 24, AMX-INT8 25 */
        r[3] &= ~((1u << 2) | (1u << 3) | (1u << 8) | (1u << 22) | (1u << 23) | (1u << 24) | (1u << 25));
    } else if (leaf == 7 && sub == 1) {
        /* EAX: AVX-VNNI 4, AVX512-BF16 5, AMX-FP16 21, AVX-IFMA 23 (Zen 3 has none of them) */
        r[0] &= ~((1u << 4) | (1u << 5) | (1u << 21) | (1u << 23));
    } else if (leaf == 0xD && sub == 0) {
        /* XCR0 components the OS supports: drop opmask/ZMM (5-7) and AMX tile (17-18) */
        r[0] &= ~((1u << 5) | (1u << 6) | (1u << 7) | (1u << 17) | (1u << 18));
    }
}

static void on_segv(int sig, siginfo_t *info, void *context) {
    ucontext_t *uc = context;
    greg_t *g = uc->uc_mcontext.gregs;
    const unsigned char *ip = (const unsigned char *)g[REG_RIP];
    if (ip[0] == 0x0F && ip[1] == 0xA2) {
        uint32_t r[4];
        masked_cpuid((uint32_t)g[REG_RAX], (uint32_t)g[REG_RCX], r);
        g[REG_RAX] = r[0]; g[REG_RBX] = r[1]; g[REG_RCX] = r[2]; g[REG_RDX] = r[3];
        g[REG_RIP] += 2;
        __atomic_add_fetch(&masked_calls, 1, __ATOMIC_RELAXED);
        return;
    }
    if (previous.sa_flags & SA_SIGINFO) { previous.sa_sigaction(sig, info, context); return; }
    if (previous.sa_handler != SIG_DFL && previous.sa_handler != SIG_IGN) { previous.sa_handler(sig); return; }
    signal(sig, SIG_DFL);  /* re-raised on return: the default action (core dump) */
}

__attribute__((constructor)) static void install(void) {
    const char *mode = getenv("CPUID_MASK");
    zen4 = mode && strcmp(mode, "zen4") == 0;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGSEGV, &sa, &previous) != 0) return;
    if (syscall(SYS_arch_prctl, ARCH_SET_CPUID, 0) != 0) {
        fprintf(stderr, "cpuid_avx2only: CPUID faulting unavailable (no cpuid_fault on this CPU)\n");
        exit(3);
    }
}
