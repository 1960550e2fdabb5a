#include "kernels_internal.h"

#include <stdatomic.h>

// -1 until the first query; CPU features cannot change while the process runs, so a relaxed
// cache is enough and racing first callers store the same value.
static _Atomic int cached_best_isa = -1;
static _Atomic int cached_sse42 = -1;

static quiver_isa detect_best_isa(void) {
#if QUIVER_X86
    __builtin_cpu_init();
    // The AVX2 paths also use FMA (float kernels) and F16C (half conversions), so all three gate them.
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
        __builtin_cpu_supports("f16c")) {
        if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
            __builtin_cpu_supports("avx512vl")) {
            return QUIVER_ISA_AVX512;
        }
        return QUIVER_ISA_AVX2;
    }
    return QUIVER_ISA_SCALAR;
#elif QUIVER_ARM64
    return QUIVER_ISA_NEON;  // Advanced SIMD is mandatory on arm64.
#else
    return QUIVER_ISA_SCALAR;
#endif
}

quiver_isa quiver_best_isa(void) {
    int isa = atomic_load_explicit(&cached_best_isa, memory_order_relaxed);
    if (isa < 0) {
        isa = (int)detect_best_isa();
        atomic_store_explicit(&cached_best_isa, isa, memory_order_relaxed);
    }
    return (quiver_isa)isa;
}

int quiver_isa_available(quiver_isa isa) {
    switch (isa) {
    case QUIVER_ISA_SCALAR:
        return 1;
    case QUIVER_ISA_AVX2:
        return quiver_isa_has_avx2(quiver_best_isa());
    case QUIVER_ISA_AVX512:
    case QUIVER_ISA_NEON:
        return quiver_best_isa() == isa;
    }
    return 0;
}

const char *quiver_isa_name(quiver_isa isa) {
    switch (isa) {
    case QUIVER_ISA_SCALAR:
        return "scalar";
    case QUIVER_ISA_AVX2:
        return "avx2";
    case QUIVER_ISA_NEON:
        return "neon";
    case QUIVER_ISA_AVX512:
        return "avx512";
    }
    return "unknown";
}

quiver_isa quiver_runnable_isa(quiver_isa requested) {
    return quiver_isa_available(requested) ? requested : QUIVER_ISA_SCALAR;
}

int quiver_has_sse42(void) {
    int has = atomic_load_explicit(&cached_sse42, memory_order_relaxed);
    if (has < 0) {
#if QUIVER_X86
        __builtin_cpu_init();
        has = __builtin_cpu_supports("sse4.2") ? 1 : 0;
#else
        has = 0;
#endif
        atomic_store_explicit(&cached_sse42, has, memory_order_relaxed);
    }
    return has;
}
