// Fused multiply-add across statements, as -ffp-contract=fast did (no unsafeFlags: SwiftPM refuses them in dependencies).
#pragma clang fp contract(fast)
// Instruction-set selection for every kernel of ViTKernels. See vk_isa.h.

#include "vk_isa.h"

#include "vit_kernels.h"

#include <stdlib.h>
#include <string.h>

vk_level vk_isa_supported(void) {
#ifdef VK_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("fma"))
        return VK_LEVEL_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return VK_LEVEL_AVX2;
#endif
    return VK_LEVEL_FALLBACK;
}

static vk_level requested(void) {
    const char *isa = getenv("VITCLASSIFY_ISA");
    if (isa && *isa) {
        if (strcmp(isa, "fallback") == 0) return VK_LEVEL_FALLBACK;
        if (strcmp(isa, "avx2") == 0) return VK_LEVEL_AVX2;
    }
    const char *off = getenv("VITCLASSIFY_NO_PACKED_GEMM");
    if (off && *off && strcmp(off, "0") != 0) return VK_LEVEL_FALLBACK;
    return VK_LEVEL_AVX512;
}

vk_level vk_isa_level(void) {
    static int cached = 0;
    int l = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (l == 0) {
        vk_level cpu = vk_isa_supported(), want = requested();
        l = (int)(want < cpu ? want : cpu);
        __atomic_store_n(&cached, l, __ATOMIC_RELAXED);
    }
    return (vk_level)l;
}

const char *vk_instruction_set(void) {
    switch (vk_isa_level()) {
    case VK_LEVEL_AVX512: return "avx512";
    case VK_LEVEL_AVX2: return "avx2";
    default: return "fallback";
    }
}

const char *vk_cpu_model(void) {
    static char model[49];
    static int done = 0;
    if (__atomic_load_n(&done, __ATOMIC_ACQUIRE)) return model;
    char buf[49] = "unknown";
#ifdef VK_X86
    unsigned int regs[12];
    unsigned int max;
    __asm__ volatile("cpuid" : "=a"(max) : "a"(0x80000000u) : "ebx", "ecx", "edx");
    if (max >= 0x80000004u) {
        for (unsigned int i = 0; i < 3; i++) {
            __asm__ volatile("cpuid"
                             : "=a"(regs[4 * i]), "=b"(regs[4 * i + 1]), "=c"(regs[4 * i + 2]), "=d"(regs[4 * i + 3])
                             : "a"(0x80000002u + i), "c"(0));
        }
        memcpy(buf, regs, 48);
        buf[48] = 0;
        // The brand string is padded with spaces (leading on some Intel parts): trim both ends.
        char *s = buf;
        while (*s == ' ') s++;
        size_t n = strlen(s);
        while (n > 0 && s[n - 1] == ' ') s[--n] = 0;
        memmove(buf, s, n + 1);
    }
#endif
    // Racing first callers write the same bytes.
    memcpy(model, buf, sizeof model);
    __atomic_store_n(&done, 1, __ATOMIC_RELEASE);
    return model;
}
