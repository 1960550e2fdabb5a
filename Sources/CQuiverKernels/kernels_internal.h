// Declarations shared between the kernel files; not part of the public interface.
#ifndef QUIVER_KERNELS_INTERNAL_H
#define QUIVER_KERNELS_INTERNAL_H

#include "quiver_kernels.h"

#if defined(__x86_64__)
#define QUIVER_X86 1
// Every function that uses AVX2 intrinsics carries this, so the rest of the library stays
// baseline x86-64 and only runs these paths after dispatch says the CPU has them.
#define QUIVER_TARGET_AVX2 __attribute__((target("avx2,fma,f16c")))
#define QUIVER_TARGET_AVX512 __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl")))
#else
#define QUIVER_X86 0
#endif

#if defined(__aarch64__)
#define QUIVER_ARM64 1
#else
#define QUIVER_ARM64 0
#endif

/// An ISA request downgraded to what this CPU can run (unavailable requests fall back to scalar).
quiver_isa quiver_runnable_isa(quiver_isa requested);
/// 1 when `isa` (after quiver_runnable_isa) may run the AVX2 float kernels: AVX2 or AVX-512.
static inline int quiver_isa_has_avx2(quiver_isa isa) { return isa == QUIVER_ISA_AVX2 || isa == QUIVER_ISA_AVX512; }
/// 1 when the CPU has SSE4.2 (hardware CRC-32C).
int quiver_has_sse42(void);

#endif
