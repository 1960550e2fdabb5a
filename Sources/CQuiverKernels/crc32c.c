#include "kernels_internal.h"

#include <pthread.h>
#include <string.h>

#if QUIVER_X86
#include <immintrin.h>
#endif

// Reflected Castagnoli polynomial.
enum { CRC32C_POLY = 0x82F63B78u };

static uint32_t crc_table[256];
static pthread_once_t crc_table_once = PTHREAD_ONCE_INIT;

static void build_crc_table(void) {
    for (uint32_t byte = 0; byte < 256; byte++) {
        uint32_t crc = byte;
        for (int bit = 0; bit < 8; bit++) crc = (crc >> 1) ^ ((crc & 1) ? CRC32C_POLY : 0);
        crc_table[byte] = crc;
    }
}

static uint32_t scalar_crc32c(uint32_t crc, const uint8_t *data, size_t count) {
    pthread_once(&crc_table_once, build_crc_table);
    crc = ~crc;
    for (size_t i = 0; i < count; i++) crc = (crc >> 8) ^ crc_table[(crc ^ data[i]) & 0xff];
    return ~crc;
}

#if QUIVER_X86
__attribute__((target("sse4.2"))) static uint32_t sse42_crc32c(uint32_t crc, const uint8_t *data,
                                                                size_t count) {
    uint64_t state = ~crc;
    size_t i = 0;
    for (; i + 8 <= count; i += 8) {
        uint64_t word;
        memcpy(&word, data + i, sizeof word);  // unaligned load without undefined behaviour
        state = _mm_crc32_u64(state, word);
    }
    uint32_t state32 = (uint32_t)state;
    for (; i < count; i++) state32 = _mm_crc32_u8(state32, data[i]);
    return ~state32;
}
#endif

uint32_t quiver_crc32c(uint32_t crc, const void *data, size_t count) {
#if QUIVER_X86
    // SSE4.2 predates AVX2 by years: use it even where the AVX2 paths are unavailable.
    if (quiver_has_sse42()) return sse42_crc32c(crc, data, count);
#endif
    return scalar_crc32c(crc, data, count);
}

uint32_t quiver_crc32c_isa(quiver_isa isa, uint32_t crc, const void *data, size_t count) {
    if (isa == QUIVER_ISA_SCALAR) return scalar_crc32c(crc, data, count);
    return quiver_crc32c(crc, data, count);
}
