// The instruction-set level every kernel of this target runs at: chosen once, at first use, from the CPU (and the
// VITCLASSIFY_ISA override), so that the GEMM and the element-wise kernels always run on the same path.
// Internal to ViTKernels; the public view is vk_instruction_set() in vit_kernels.h.

#ifndef VITCLASSIFY_VK_ISA_H
#define VITCLASSIFY_VK_ISA_H

typedef enum {
    VK_LEVEL_FALLBACK = 1, ///< portable C (generic vectors): any CPU
    VK_LEVEL_AVX2 = 2,     ///< x86-64 with AVX2 and FMA
    VK_LEVEL_AVX512 = 3,   ///< x86-64 with AVX-512 F, DQ, BW, VL (and FMA)
} vk_level;

/// The level in use: the widest the CPU supports, narrowed by VITCLASSIFY_ISA=avx2|fallback (or the older
/// VITCLASSIFY_NO_PACKED_GEMM=1, meaning fallback). Never wider than the CPU supports.
vk_level vk_isa_level(void);

/// The widest level the CPU supports, ignoring the environment.
vk_level vk_isa_supported(void);

#if defined(__x86_64__) && defined(__clang__)
#define VK_X86 1
#endif

#endif
