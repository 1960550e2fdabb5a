#include "kernels_internal.h"

#include <math.h>
#include <string.h>

#if QUIVER_X86
#include <immintrin.h>
#elif QUIVER_ARM64
#include <arm_neon.h>
#endif

// Every path must push bit-identical distances; keep `sum / scale + bias` two rounded operations.
#pragma STDC FP_CONTRACT OFF

enum { BLOCK_VECTORS = QUIVER_FASTSCAN_BLOCK_VECTORS, GROUP_BYTES = 32 };

/// Groups of two subspaces per block; an odd m has a last group whose second subspace is padding
/// (zero codes, and the kernels treat its missing LUT row as zeros without reading it).
static inline size_t group_count(size_t m) { return (m + 1) / 2; }

size_t quiver_fastscan_packed_size(size_t count, size_t m) {
    size_t blocks = (count + BLOCK_VECTORS - 1) / BLOCK_VECTORS;
    return blocks * group_count(m) * GROUP_BYTES;
}

/// Byte of a block holding (vector j, subspace s); vectors 16..31 use its high nibble.
static inline size_t code_offset(size_t j, size_t s) {
    return (s / 2) * GROUP_BYTES + (s % 2) * 16 + (j % 16);
}

void quiver_fastscan_pack(const uint8_t *codes, size_t count, size_t m, uint8_t *packed) {
    size_t block_bytes = group_count(m) * GROUP_BYTES;
    memset(packed, 0, quiver_fastscan_packed_size(count, m));
    for (size_t v = 0; v < count; v++) {
        uint8_t *block = packed + (v / BLOCK_VECTORS) * block_bytes;
        size_t j = v % BLOCK_VECTORS;
        unsigned shift = j < 16 ? 0 : 4;
        for (size_t s = 0; s < m; s++) {
            block[code_offset(j, s)] |= (uint8_t)((codes[v * m + s] & 0x0f) << shift);
        }
    }
}

void quiver_fastscan_set_entry(uint8_t *packed, size_t m, size_t index, const uint8_t *codes) {
    uint8_t *block = packed + (index / BLOCK_VECTORS) * group_count(m) * GROUP_BYTES;
    size_t j = index % BLOCK_VECTORS;
    unsigned shift = j < 16 ? 0 : 4;
    uint8_t keep = j < 16 ? 0xf0 : 0x0f;
    for (size_t s = 0; s < m; s++) {
        uint8_t *byte = block + code_offset(j, s);
        *byte = (uint8_t)((*byte & keep) | ((codes[s] & 0x0f) << shift));
    }
}

void quiver_fastscan_get_entry(const uint8_t *packed, size_t m, size_t index, uint8_t *codes) {
    const uint8_t *block = packed + (index / BLOCK_VECTORS) * group_count(m) * GROUP_BYTES;
    size_t j = index % BLOCK_VECTORS;
    unsigned shift = j < 16 ? 0 : 4;
    for (size_t s = 0; s < m; s++) codes[s] = (block[code_offset(j, s)] >> shift) & 0x0f;
}

void quiver_fastscan_unpack(const uint8_t *packed, size_t count, size_t m, uint8_t *codes) {
    size_t block_bytes = group_count(m) * GROUP_BYTES;
    for (size_t v = 0; v < count; v++) {
        const uint8_t *block = packed + (v / BLOCK_VECTORS) * block_bytes;
        size_t j = v % BLOCK_VECTORS;
        unsigned shift = j < 16 ? 0 : 4;
        for (size_t s = 0; s < m; s++) {
            codes[v * m + s] = (block[code_offset(j, s)] >> shift) & 0x0f;
        }
    }
}

static inline float sum_to_distance(uint16_t sum, float scale, float bias) {
    return (float)sum / scale + bias;
}

/// Largest 16-bit sum that could still enter the heap: every vector above it is pruned.
///
/// Exactly, a sum s can enter only if s / scale + bias <= threshold, i.e. s <= (threshold - bias) * scale.
/// The float evaluation of the distance rounds twice (relative error 2^-24 each), so the bound is
/// widened by a few ulps of every operand before the floor, plus one: pruning must never reject a
/// vector the heap would accept, while a loose bound only costs a rejected push.
static int sum_limit(const quiver_topk *heap, float scale, float bias) {
    float threshold = quiver_topk_threshold(heap);
    if (!(scale > 0.0f)) return UINT16_MAX;  // distances not increasing in the sum: cannot prune
    double headroom = ((double)threshold - (double)bias + fabs((double)threshold) * 0x1p-21) * scale;
    headroom += fabs(headroom) * 0x1p-21;
    if (isnan(headroom) || headroom >= (double)UINT16_MAX) return UINT16_MAX;
    if (headroom < 0.0) return 0;
    return (int)floor(headroom) + 1;
}

// ---------------------------------------------------------------------------------------------
// Scalar reference
// ---------------------------------------------------------------------------------------------

static void scalar_block_sums(const uint8_t *block, size_t m, const uint8_t *lut,
                              uint16_t sums[BLOCK_VECTORS]) {
    for (size_t j = 0; j < BLOCK_VECTORS; j++) {
        unsigned shift = j < 16 ? 0 : 4;
        uint16_t sum = 0;  // wraps like the 16-bit SIMD lanes if the caller's LUT bound is broken
        for (size_t s = 0; s < m; s++) {
            unsigned code = (block[code_offset(j, s)] >> shift) & 0x0f;
            sum = (uint16_t)(sum + lut[s * 16 + code]);
        }
        sums[j] = sum;
    }
}

static void scalar_sums(const uint8_t *packed, size_t count, size_t m, const uint8_t *lut,
                        uint16_t *sums) {
    size_t block_bytes = group_count(m) * GROUP_BYTES;
    for (size_t first = 0; first < count; first += BLOCK_VECTORS) {
        uint16_t block_sums[BLOCK_VECTORS];
        scalar_block_sums(packed + (first / BLOCK_VECTORS) * block_bytes, m, lut, block_sums);
        size_t n = count - first < BLOCK_VECTORS ? count - first : BLOCK_VECTORS;
        memcpy(sums + first, block_sums, n * sizeof(uint16_t));
    }
}

static void scalar_scan(const uint8_t *packed, size_t count, size_t m, const uint8_t *lut,
                        float scale, float bias, const uint32_t *ids, quiver_topk *heap) {
    size_t block_bytes = group_count(m) * GROUP_BYTES;
    for (size_t first = 0; first < count; first += BLOCK_VECTORS) {
        uint16_t sums[BLOCK_VECTORS];
        scalar_block_sums(packed + (first / BLOCK_VECTORS) * block_bytes, m, lut, sums);
        size_t n = count - first < BLOCK_VECTORS ? count - first : BLOCK_VECTORS;
        for (size_t j = 0; j < n; j++) {
            quiver_topk_push(heap, sum_to_distance(sums[j], scale, bias), (int64_t)ids[first + j]);
        }
    }
}

/// Offers the vectors of one block selected by `mask` (bit j: vector j), in ascending order,
/// re-checking each against the limit because earlier pushes may have tightened it.
/// Returns the limit after the pushes.
static int push_selected(uint32_t mask, const uint16_t sums[BLOCK_VECTORS], int limit,
                         float scale, float bias, const uint32_t *block_ids, quiver_topk *heap) {
    while (mask) {
        unsigned j = (unsigned)__builtin_ctz(mask);
        mask &= mask - 1;
        if (sums[j] > limit) continue;
        if (quiver_topk_push(heap, sum_to_distance(sums[j], scale, bias), (int64_t)block_ids[j])) {
            limit = sum_limit(heap, scale, bias);
        }
    }
    return limit;
}

static inline uint32_t valid_mask(size_t remaining) {
    return remaining >= BLOCK_VECTORS ? UINT32_MAX : ((uint32_t)1 << remaining) - 1;
}

// ---------------------------------------------------------------------------------------------
// AVX2
// ---------------------------------------------------------------------------------------------

#if QUIVER_X86

// Queries scanned together per pass over a block. Each needs four accumulators; with more than two
// they spill out of the 16 ymm registers and the pass gets slower per query than two at a time.
enum { AVX2_MAX_QUERIES = 2 };

#define QUIVER_INLINE_AVX2 QUIVER_TARGET_AVX2 static inline __attribute__((always_inline))

/// Turns one query's accumulators into its 32 sums: `low` holds vectors 0..15, `high` 16..31.
///
/// Byte results were summed in 16-bit lanes without unpacking: `pairs` added each byte pair as one
/// word (even byte + 256 * odd byte), `odd` the odd bytes alone; subtracting 256 * odd recovers the
/// even sums. The words wrap, but the result is exact modulo 2^16 and the true sums fit 16 bits.
QUIVER_INLINE_AVX2 void avx2_finish_sums(__m256i pairs_lo, __m256i odd_lo, __m256i pairs_hi,
                                         __m256i odd_hi, __m256i *low, __m256i *high) {
    __m256i even_lo = _mm256_sub_epi16(pairs_lo, _mm256_slli_epi16(odd_lo, 8));
    __m256i even_hi = _mm256_sub_epi16(pairs_hi, _mm256_slli_epi16(odd_hi, 8));
    // Word i of a lane is vector 2i (even) or 2i+1 (odd) of that half; the two lanes are the two
    // subspace parities. Add the lanes, putting the low half's vectors in lane 0 and the high's in 1.
    __m256i even = _mm256_add_epi16(_mm256_permute2x128_si256(even_lo, even_hi, 0x20),
                                    _mm256_permute2x128_si256(even_lo, even_hi, 0x31));
    __m256i odd = _mm256_add_epi16(_mm256_permute2x128_si256(odd_lo, odd_hi, 0x20),
                                   _mm256_permute2x128_si256(odd_lo, odd_hi, 0x31));
    __m256i first8 = _mm256_unpacklo_epi16(even, odd);  // vectors 0..7 | 16..23
    __m256i last8 = _mm256_unpackhi_epi16(even, odd);   // vectors 8..15 | 24..31
    *low = _mm256_permute2x128_si256(first8, last8, 0x20);
    *high = _mm256_permute2x128_si256(first8, last8, 0x31);
}

/// The LUT rows of group g: both subspaces' 16 bytes, or for the padding half of an odd m's last
/// group only the first, with zeros above (never reading past the m rows).
QUIVER_INLINE_AVX2 __m256i avx2_lut_rows(const uint8_t *lut, size_t g, size_t m) {
    if (2 * g + 1 < m) return _mm256_loadu_si256((const __m256i *)(lut + g * GROUP_BYTES));
    return _mm256_set_m128i(_mm_setzero_si128(), _mm_loadu_si128((const __m128i *)(lut + g * GROUP_BYTES)));
}

/// The 32 sums of one block for each of `nq` queries (a constant after inlining).
///
/// One shuffle per nibble half looks up both subspaces of a group at once: LUT row 2g in the low
/// 128-bit lane, row 2g+1 in the high lane, which is how the rows already lie in memory. The codes
/// are loaded and split into nibbles once for all the queries.
QUIVER_INLINE_AVX2 void avx2_block_sums(const uint8_t *block, size_t m, const uint8_t *const *luts,
                                        const int nq, __m256i *low, __m256i *high) {
    const __m256i nibble = _mm256_set1_epi8(0x0f);
    __m256i pairs_lo[AVX2_MAX_QUERIES], odd_lo[AVX2_MAX_QUERIES];
    __m256i pairs_hi[AVX2_MAX_QUERIES], odd_hi[AVX2_MAX_QUERIES];
    for (int q = 0; q < nq; q++) {
        pairs_lo[q] = odd_lo[q] = pairs_hi[q] = odd_hi[q] = _mm256_setzero_si256();
    }
    size_t groups = group_count(m);
    for (size_t g = 0; g < groups; g++) {
        __m256i codes = _mm256_loadu_si256((const __m256i *)(block + g * GROUP_BYTES));
        __m256i lo = _mm256_and_si256(codes, nibble);
        __m256i hi = _mm256_and_si256(_mm256_srli_epi16(codes, 4), nibble);
        for (int q = 0; q < nq; q++) {
            __m256i rows = avx2_lut_rows(luts[q], g, m);
            __m256i r_lo = _mm256_shuffle_epi8(rows, lo);
            __m256i r_hi = _mm256_shuffle_epi8(rows, hi);
            pairs_lo[q] = _mm256_add_epi16(pairs_lo[q], r_lo);
            odd_lo[q] = _mm256_add_epi16(odd_lo[q], _mm256_srli_epi16(r_lo, 8));
            pairs_hi[q] = _mm256_add_epi16(pairs_hi[q], r_hi);
            odd_hi[q] = _mm256_add_epi16(odd_hi[q], _mm256_srli_epi16(r_hi, 8));
        }
    }
    for (int q = 0; q < nq; q++) {
        avx2_finish_sums(pairs_lo[q], odd_lo[q], pairs_hi[q], odd_hi[q], &low[q], &high[q]);
    }
}

QUIVER_TARGET_AVX2 static void avx2_sums(const uint8_t *packed, size_t count, size_t m,
                                         const uint8_t *lut, uint16_t *sums) {
    size_t block_bytes = group_count(m) * GROUP_BYTES;
    for (size_t first = 0; first < count; first += BLOCK_VECTORS) {
        __m256i low, high;
        avx2_block_sums(packed + (first / BLOCK_VECTORS) * block_bytes, m, &lut, 1, &low, &high);
        if (count - first >= BLOCK_VECTORS) {
            _mm256_storeu_si256((__m256i *)(sums + first), low);
            _mm256_storeu_si256((__m256i *)(sums + first + 16), high);
        } else {
            uint16_t block_sums[BLOCK_VECTORS];
            _mm256_storeu_si256((__m256i *)block_sums, low);
            _mm256_storeu_si256((__m256i *)(block_sums + 16), high);
            memcpy(sums + first, block_sums, (count - first) * sizeof(uint16_t));
        }
    }
}

/// Bit j set when sum j <= limit (unsigned), for the 32 sums of a block.
QUIVER_INLINE_AVX2 uint32_t avx2_within_limit(__m256i low, __m256i high, int limit) {
    __m256i bound = _mm256_set1_epi16((short)(uint16_t)limit);
    __m256i ok_low = _mm256_cmpeq_epi16(_mm256_min_epu16(low, bound), low);
    __m256i ok_high = _mm256_cmpeq_epi16(_mm256_min_epu16(high, bound), high);
    // Packing interleaves 64-bit quarters as (0..7, 16..23, 8..15, 24..31); restore vector order.
    __m256i bytes = _mm256_permute4x64_epi64(_mm256_packs_epi16(ok_low, ok_high), 0xD8);
    return (uint32_t)_mm256_movemask_epi8(bytes);
}

/// Scans one list for `nq` queries at once (a constant after inlining); each query's heap sees
/// exactly the pushes of a scan on its own.
QUIVER_INLINE_AVX2 void avx2_scan_queries(const uint8_t *packed, size_t count, size_t m,
                                          const uint8_t *const *luts, const float *scales,
                                          const float *biases, const uint32_t *ids,
                                          quiver_topk *const *heaps, const int nq) {
    size_t block_bytes = group_count(m) * GROUP_BYTES;
    int limits[AVX2_MAX_QUERIES];
    for (int q = 0; q < nq; q++) limits[q] = sum_limit(heaps[q], scales[q], biases[q]);
    for (size_t first = 0; first < count; first += BLOCK_VECTORS) {
        __m256i low[AVX2_MAX_QUERIES], high[AVX2_MAX_QUERIES];
        avx2_block_sums(packed + (first / BLOCK_VECTORS) * block_bytes, m, luts, nq, low, high);
        uint32_t valid = valid_mask(count - first);
        for (int q = 0; q < nq; q++) {
            uint32_t mask = avx2_within_limit(low[q], high[q], limits[q]) & valid;
            if (!mask) continue;
            uint16_t sums[BLOCK_VECTORS];
            _mm256_storeu_si256((__m256i *)sums, low[q]);
            _mm256_storeu_si256((__m256i *)(sums + 16), high[q]);
            limits[q] = push_selected(mask, sums, limits[q], scales[q], biases[q], ids + first, heaps[q]);
        }
    }
}

typedef void (*scan_fn)(const uint8_t *, size_t, size_t, const uint8_t *const *, const float *,
                        const float *, const uint32_t *, quiver_topk *const *);

// One specialisation per batch size, so each keeps its accumulators in registers.
#define QUIVER_DEFINE_SCAN(NQ)                                                                      \
    QUIVER_TARGET_AVX2 static void avx2_scan_##NQ(                                                  \
        const uint8_t *packed, size_t count, size_t m, const uint8_t *const *luts,                  \
        const float *scales, const float *biases, const uint32_t *ids, quiver_topk *const *heaps) { \
        avx2_scan_queries(packed, count, m, luts, scales, biases, ids, heaps, NQ);                  \
    }
QUIVER_DEFINE_SCAN(1) QUIVER_DEFINE_SCAN(2)
#undef QUIVER_DEFINE_SCAN

static void avx2_scan_multi(const uint8_t *packed, size_t count, size_t m, size_t nq,
                            const uint8_t *const *luts, const float *scales, const float *biases,
                            const uint32_t *ids, quiver_topk *const *heaps) {
    static const scan_fn by_batch[AVX2_MAX_QUERIES] = {avx2_scan_1, avx2_scan_2};
    for (size_t q = 0; q < nq; q += AVX2_MAX_QUERIES) {
        size_t batch = nq - q < AVX2_MAX_QUERIES ? nq - q : AVX2_MAX_QUERIES;
        by_batch[batch - 1](packed, count, m, luts + q, scales + q, biases + q, ids, heaps + q);
    }
}

// ---------------------------------------------------------------------------------------------
// AVX-512 (F, BW, VL): the same lookups two groups at a time. A 512-bit vpshufb shuffles within
// each 128-bit lane, so one register holds the LUT rows of four subspaces (2g .. 2g+3) exactly as
// they lie in memory and meets the codes of two groups, which also lie side by side. Lanes 2 and
// 3 sum the same vectors as lanes 0 and 1, so the two 256-bit halves are added at the end and
// finished as in AVX2. The tail (an odd number of groups, or an odd m) uses masked loads that
// read zeros past the LUT's m rows and the block's end. The 32 comparison lanes go straight to a
// mask register. With 32 registers four queries share each code load without spilling.
// ---------------------------------------------------------------------------------------------

enum { AVX512_MAX_QUERIES = 4 };

#define QUIVER_INLINE_AVX512 QUIVER_TARGET_AVX512 static inline __attribute__((always_inline))

/// `bytes` (0..64) low bytes set.
QUIVER_INLINE_AVX512 __mmask64 avx512_byte_mask(size_t bytes) {
    return bytes >= 64 ? ~(__mmask64)0 : (((__mmask64)1 << bytes) - 1);
}

/// The 32 sums of one block for each of `nq` queries, vector j in word j of `sums[q]`.
QUIVER_INLINE_AVX512 void avx512_block_sums(const uint8_t *block, size_t m, const uint8_t *const *luts,
                                            const int nq, __m512i *sums) {
    const __m512i nibble = _mm512_set1_epi8(0x0f);
    __m512i pairs_lo[AVX512_MAX_QUERIES], odd_lo[AVX512_MAX_QUERIES];
    __m512i pairs_hi[AVX512_MAX_QUERIES], odd_hi[AVX512_MAX_QUERIES];
    for (int q = 0; q < nq; q++) {
        pairs_lo[q] = odd_lo[q] = pairs_hi[q] = odd_hi[q] = _mm512_setzero_si512();
    }
    size_t lut_bytes = m * 16, block_bytes = group_count(m) * GROUP_BYTES;
    for (size_t offset = 0; offset < lut_bytes; offset += 64) {
        __m512i codes;
        __mmask64 lut_mask = ~(__mmask64)0;
        int tail = offset + 64 > lut_bytes;
        if (!tail) {
            codes = _mm512_loadu_si512((const void *)(block + offset));
        } else {
            codes = _mm512_maskz_loadu_epi8(avx512_byte_mask(block_bytes - offset), block + offset);
            lut_mask = avx512_byte_mask(lut_bytes - offset);
        }
        __m512i lo = _mm512_and_si512(codes, nibble);
        __m512i hi = _mm512_and_si512(_mm512_srli_epi16(codes, 4), nibble);
        for (int q = 0; q < nq; q++) {
            __m512i rows = tail ? _mm512_maskz_loadu_epi8(lut_mask, luts[q] + offset)
                                : _mm512_loadu_si512((const void *)(luts[q] + offset));
            __m512i r_lo = _mm512_shuffle_epi8(rows, lo);
            __m512i r_hi = _mm512_shuffle_epi8(rows, hi);
            pairs_lo[q] = _mm512_add_epi16(pairs_lo[q], r_lo);
            odd_lo[q] = _mm512_add_epi16(odd_lo[q], _mm512_srli_epi16(r_lo, 8));
            pairs_hi[q] = _mm512_add_epi16(pairs_hi[q], r_hi);
            odd_hi[q] = _mm512_add_epi16(odd_hi[q], _mm512_srli_epi16(r_hi, 8));
        }
    }
    for (int q = 0; q < nq; q++) {
        // Modulo 2^16 the folded halves are the sums of all groups, as in the AVX2 accumulators.
        __m256i p_lo = _mm256_add_epi16(_mm512_castsi512_si256(pairs_lo[q]), _mm512_extracti64x4_epi64(pairs_lo[q], 1));
        __m256i o_lo = _mm256_add_epi16(_mm512_castsi512_si256(odd_lo[q]), _mm512_extracti64x4_epi64(odd_lo[q], 1));
        __m256i p_hi = _mm256_add_epi16(_mm512_castsi512_si256(pairs_hi[q]), _mm512_extracti64x4_epi64(pairs_hi[q], 1));
        __m256i o_hi = _mm256_add_epi16(_mm512_castsi512_si256(odd_hi[q]), _mm512_extracti64x4_epi64(odd_hi[q], 1));
        __m256i low, high;
        avx2_finish_sums(p_lo, o_lo, p_hi, o_hi, &low, &high);
        sums[q] = _mm512_inserti64x4(_mm512_castsi256_si512(low), high, 1);
    }
}

QUIVER_TARGET_AVX512 static void avx512_sums(const uint8_t *packed, size_t count, size_t m,
                                             const uint8_t *lut, uint16_t *sums) {
    size_t block_bytes = group_count(m) * GROUP_BYTES;
    for (size_t first = 0; first < count; first += BLOCK_VECTORS) {
        __m512i block_sums;
        avx512_block_sums(packed + (first / BLOCK_VECTORS) * block_bytes, m, &lut, 1, &block_sums);
        size_t n = count - first < BLOCK_VECTORS ? count - first : BLOCK_VECTORS;
        _mm512_mask_storeu_epi16(sums + first, (__mmask32)valid_mask(n), block_sums);
    }
}

QUIVER_INLINE_AVX512 void avx512_scan_queries(const uint8_t *packed, size_t count, size_t m,
                                              const uint8_t *const *luts, const float *scales,
                                              const float *biases, const uint32_t *ids,
                                              quiver_topk *const *heaps, const int nq) {
    size_t block_bytes = group_count(m) * GROUP_BYTES;
    int limits[AVX512_MAX_QUERIES];
    for (int q = 0; q < nq; q++) limits[q] = sum_limit(heaps[q], scales[q], biases[q]);
    for (size_t first = 0; first < count; first += BLOCK_VECTORS) {
        __m512i sums[AVX512_MAX_QUERIES];
        avx512_block_sums(packed + (first / BLOCK_VECTORS) * block_bytes, m, luts, nq, sums);
        uint32_t valid = valid_mask(count - first);
        for (int q = 0; q < nq; q++) {
            __m512i bound = _mm512_set1_epi16((short)(uint16_t)limits[q]);
            uint32_t mask = (uint32_t)_mm512_cmple_epu16_mask(sums[q], bound) & valid;
            if (!mask) continue;
            uint16_t stored[BLOCK_VECTORS];
            _mm512_storeu_si512((void *)stored, sums[q]);
            limits[q] = push_selected(mask, stored, limits[q], scales[q], biases[q], ids + first, heaps[q]);
        }
    }
}

#define QUIVER_DEFINE_SCAN(NQ)                                                                      \
    QUIVER_TARGET_AVX512 static void avx512_scan_##NQ(                                              \
        const uint8_t *packed, size_t count, size_t m, const uint8_t *const *luts,                  \
        const float *scales, const float *biases, const uint32_t *ids, quiver_topk *const *heaps) { \
        avx512_scan_queries(packed, count, m, luts, scales, biases, ids, heaps, NQ);                \
    }
QUIVER_DEFINE_SCAN(1) QUIVER_DEFINE_SCAN(2) QUIVER_DEFINE_SCAN(3) QUIVER_DEFINE_SCAN(4)
#undef QUIVER_DEFINE_SCAN

static void avx512_scan_multi(const uint8_t *packed, size_t count, size_t m, size_t nq,
                              const uint8_t *const *luts, const float *scales, const float *biases,
                              const uint32_t *ids, quiver_topk *const *heaps) {
    static const scan_fn by_batch[AVX512_MAX_QUERIES] = {avx512_scan_1, avx512_scan_2, avx512_scan_3, avx512_scan_4};
    for (size_t q = 0; q < nq; q += AVX512_MAX_QUERIES) {
        size_t batch = nq - q < AVX512_MAX_QUERIES ? nq - q : AVX512_MAX_QUERIES;
        by_batch[batch - 1](packed, count, m, luts + q, scales + q, biases + q, ids, heaps + q);
    }
}

#endif

// ---------------------------------------------------------------------------------------------
// NEON: the same lookups with 128-bit tables, one per subspace; widening adds keep it simple
// (the sums are the same modulo 2^16 as the AVX2 lane arithmetic).
// ---------------------------------------------------------------------------------------------

#if QUIVER_ARM64

static void neon_block_sums(const uint8_t *block, size_t m, const uint8_t *lut,
                            uint16_t sums[BLOCK_VECTORS]) {
    const uint8x16_t nibble = vdupq_n_u8(0x0f);
    uint16x8_t acc[4] = {vdupq_n_u16(0), vdupq_n_u16(0), vdupq_n_u16(0), vdupq_n_u16(0)};
    size_t groups = group_count(m);
    for (size_t g = 0; g < groups; g++) {
        const uint8_t *codes = block + g * GROUP_BYTES;
        const uint8_t *rows = lut + g * GROUP_BYTES;
        uint8x16_t codes_even = vld1q_u8(codes), codes_odd = vld1q_u8(codes + 16);
        // An odd m's padding subspace has no LUT row: it adds zeros.
        uint8x16_t row_even = vld1q_u8(rows), row_odd = 2 * g + 1 < m ? vld1q_u8(rows + 16) : vdupq_n_u8(0);
        uint8x16_t lo_even = vqtbl1q_u8(row_even, vandq_u8(codes_even, nibble));
        uint8x16_t lo_odd = vqtbl1q_u8(row_odd, vandq_u8(codes_odd, nibble));
        uint8x16_t hi_even = vqtbl1q_u8(row_even, vshrq_n_u8(codes_even, 4));
        uint8x16_t hi_odd = vqtbl1q_u8(row_odd, vshrq_n_u8(codes_odd, 4));
        acc[0] = vaddq_u16(acc[0], vaddl_u8(vget_low_u8(lo_even), vget_low_u8(lo_odd)));
        acc[1] = vaddq_u16(acc[1], vaddl_high_u8(lo_even, lo_odd));
        acc[2] = vaddq_u16(acc[2], vaddl_u8(vget_low_u8(hi_even), vget_low_u8(hi_odd)));
        acc[3] = vaddq_u16(acc[3], vaddl_high_u8(hi_even, hi_odd));
    }
    for (int i = 0; i < 4; i++) vst1q_u16(sums + 8 * i, acc[i]);
}

static void neon_sums(const uint8_t *packed, size_t count, size_t m, const uint8_t *lut,
                      uint16_t *sums) {
    size_t block_bytes = group_count(m) * GROUP_BYTES;
    for (size_t first = 0; first < count; first += BLOCK_VECTORS) {
        uint16_t block_sums[BLOCK_VECTORS];
        neon_block_sums(packed + (first / BLOCK_VECTORS) * block_bytes, m, lut, block_sums);
        size_t n = count - first < BLOCK_VECTORS ? count - first : BLOCK_VECTORS;
        memcpy(sums + first, block_sums, n * sizeof(uint16_t));
    }
}

static void neon_scan(const uint8_t *packed, size_t count, size_t m, const uint8_t *lut,
                      float scale, float bias, const uint32_t *ids, quiver_topk *heap) {
    size_t block_bytes = group_count(m) * GROUP_BYTES;
    int limit = sum_limit(heap, scale, bias);
    for (size_t first = 0; first < count; first += BLOCK_VECTORS) {
        uint16_t sums[BLOCK_VECTORS];
        neon_block_sums(packed + (first / BLOCK_VECTORS) * block_bytes, m, lut, sums);
        uint32_t mask = 0;
        for (unsigned j = 0; j < BLOCK_VECTORS; j++) mask |= (uint32_t)(sums[j] <= limit) << j;
        mask &= valid_mask(count - first);
        limit = push_selected(mask, sums, limit, scale, bias, ids + first, heap);
    }
}

#endif

// ---------------------------------------------------------------------------------------------
// Dispatch
// ---------------------------------------------------------------------------------------------

void quiver_fastscan_sums(quiver_isa isa, const uint8_t *packed, size_t count, size_t m,
                          const uint8_t *lut, uint16_t *sums) {
    switch (quiver_runnable_isa(isa)) {
#if QUIVER_X86
    case QUIVER_ISA_AVX512:
        avx512_sums(packed, count, m, lut, sums);
        return;
    case QUIVER_ISA_AVX2:
        avx2_sums(packed, count, m, lut, sums);
        return;
#endif
#if QUIVER_ARM64
    case QUIVER_ISA_NEON:
        neon_sums(packed, count, m, lut, sums);
        return;
#endif
    default:
        scalar_sums(packed, count, m, lut, sums);
        return;
    }
}

void quiver_fastscan_scan(quiver_isa isa, const uint8_t *packed, size_t count, size_t m,
                          const uint8_t *lut, float scale, float bias, const uint32_t *ids,
                          quiver_topk *heap) {
    switch (quiver_runnable_isa(isa)) {
#if QUIVER_X86
    case QUIVER_ISA_AVX512:
        avx512_scan_1(packed, count, m, &lut, &scale, &bias, ids, &heap);
        return;
    case QUIVER_ISA_AVX2:
        avx2_scan_1(packed, count, m, &lut, &scale, &bias, ids, &heap);
        return;
#endif
#if QUIVER_ARM64
    case QUIVER_ISA_NEON:
        neon_scan(packed, count, m, lut, scale, bias, ids, heap);
        return;
#endif
    default:
        scalar_scan(packed, count, m, lut, scale, bias, ids, heap);
        return;
    }
}

void quiver_fastscan_scan_multi(quiver_isa isa, const uint8_t *packed, size_t count, size_t m,
                                size_t nq, const uint8_t *const *luts, const float *scales,
                                const float *biases, const uint32_t *ids, quiver_topk *const *heaps) {
#if QUIVER_X86
    switch (quiver_runnable_isa(isa)) {
    case QUIVER_ISA_AVX512:
        avx512_scan_multi(packed, count, m, nq, luts, scales, biases, ids, heaps);
        return;
    case QUIVER_ISA_AVX2:
        avx2_scan_multi(packed, count, m, nq, luts, scales, biases, ids, heaps);
        return;
    default:
        break;
    }
#endif
    // Other paths gain little from sharing code loads; scan each query in turn.
    for (size_t q = 0; q < nq; q++) {
        quiver_fastscan_scan(isa, packed, count, m, luts[q], scales[q], biases[q], ids, heaps[q]);
    }
}
