// Quiver's C kernels: the loops Swift cannot vectorise well on a baseline x86-64 target
// (byte shuffles, FMA, F16C, CRC32C). Every SIMD path has a scalar reference beside it and is
// chosen at run time; SwiftPM forbids unsafeFlags, so ISA-specific code uses target attributes.
#ifndef QUIVER_KERNELS_H
#define QUIVER_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// ---------------------------------------------------------------------------------------------
// Instruction sets
// ---------------------------------------------------------------------------------------------

typedef enum {
    QUIVER_ISA_SCALAR = 0,
    QUIVER_ISA_AVX2 = 1,
    QUIVER_ISA_NEON = 2,
    /// AVX-512 F+BW+VL on top of AVX2 (the AVX2 float kernels serve where 512 bits do not pay).
    QUIVER_ISA_AVX512 = 3,
} quiver_isa;

/// The fastest instruction set this CPU supports (AVX2 needs AVX2+FMA+F16C; AVX-512 also
/// F+BW+VL; NEON on arm64).
quiver_isa quiver_best_isa(void);
/// 1 when `isa` can run on this CPU (a CPU with AVX-512 also runs the AVX2 paths).
int quiver_isa_available(quiver_isa isa);
const char *quiver_isa_name(quiver_isa isa);

// ---------------------------------------------------------------------------------------------
// Top-k: the `capacity` lowest distances offered, as a bounded max-heap or, for large
// capacities, a reservoir (see quiver_topk_room); both keep exactly the same entries.
// ---------------------------------------------------------------------------------------------

typedef struct {
    float *distances;        // room slots
    int64_t *ids;            // room slots
    int32_t size;
    int32_t capacity;
    // Storage slots. room == capacity: a max-heap (O(log capacity) per entry taken). room >
    // capacity: a reservoir that appends what beats `cut` and, when full, keeps the best
    // `capacity` by selection and cuts there (O(1) amortised per entry taken).
    int32_t room;
    // Reservoir only: an entry must come before (cut, cut_tie) in (distance, tie key) order.
    float cut;
    int64_t cut_tie;
    // Dedupe (an id already held keeps the smaller of its two distances) when `index` is set:
    // an open-addressing table of index_mask + 1 slots and, per slot, its table position.
    int32_t *index;
    int32_t *positions;
    int32_t index_mask;
    // Ties in distance rank by tie_keys[id] when set (ids are then rows of a table whose
    // external ids are tie_keys), else by id.
    const int64_t *tie_keys;
} quiver_topk;

/// The capacity from which a top-k is a reservoir (measured: `quiver bench --kernels`).
#define QUIVER_TOPK_RESERVOIR_MIN 16
/// The storage slots the library's choice gives a top-k of `capacity`: `capacity` (a heap) for
/// small ones, 2·capacity (a reservoir) from QUIVER_TOPK_RESERVOIR_MIN on.
int32_t quiver_topk_room(int32_t capacity);
/// Entries of the dedupe index for `room` storage slots: a power of two of at least 2·room.
size_t quiver_topk_index_size(int32_t room);
/// An empty top-k over caller-owned storage: `distances` and `ids` of `room` (≥ capacity)
/// slots; for dedupe `dedupe_index` of quiver_topk_index_size(room) entries and `positions` of
/// `room` (both NULL otherwise); `tie_keys` as in quiver_topk, or NULL.
void quiver_topk_init(quiver_topk *heap, int32_t capacity, int32_t room, float *distances, int64_t *ids,
                      int32_t *dedupe_index, int32_t *positions, const int64_t *tie_keys);
/// Empties the heap in O(size), keeping its storage.
void quiver_topk_clear(quiver_topk *heap);
/// A bound a candidate must not exceed to enter (equal distances compete by tie key): the worst
/// distance kept once a heap is full, the cut of a reservoir; +infinity before.
float quiver_topk_threshold(const quiver_topk *heap);
/// Offers (distance, id). Either kind keeps the `capacity` smallest entries in (distance, tie
/// key) order, so ties are broken by id (or external id) and the kept set does not depend on
/// the order of the offers. With dedupe, an id already held only lowers its distance. Returns
/// 1 when the entry was taken (the threshold may have moved).
int quiver_topk_push(quiver_topk *heap, float distance, int64_t id);
/// Reduces a reservoir to its best `capacity` entries (a heap holds no more already), so that
/// `size` and the first `size` slots are the kept set, in no particular order.
void quiver_topk_settle(quiver_topk *heap);
/// Sorts the held entries by (distance, tie key) ascending, in place; the heap property is lost
/// (push again only after quiver_topk_clear).
void quiver_topk_sort(quiver_topk *heap);
/// The indices of the k smallest of `values[0..n)` (no NaN), in ascending index order; among
/// values equal to the k-th smallest, the lowest indices. Returns min(k, n); `scratch` holds
/// n + 16 floats. The set is what offering every value to a heap of k would keep.
size_t quiver_smallest(const float *values, size_t n, size_t k, int32_t *indices, float *scratch);

/// Index of the smallest of `values[0..n)`, the lowest index among equal ones; NaN is never
/// chosen (0 when every value is NaN or n is 0).
int32_t quiver_argmin(const float *values, size_t n);

/// One vector's SOAR spill choice over all `n` lists, from products the assignment already has.
/// rank[c] = ‖c‖² − 2⟨x, c⟩ (L2 distance less ‖x‖²), neg_ip[c] = −⟨x, c⟩, gram[c] = ⟨c, c₁⟩ for
/// the primary list c₁ = `first`; x_norm = ‖x‖², x_dot_r1 = ⟨x, x − c₁⟩, inv_r1 = 1 / ‖x − c₁‖²
/// (0 when it is 0).
typedef struct {
    const float *rank;
    const float *neg_ip;
    const float *gram;
    int32_t first;
    float x_norm;
    float x_dot_r1;
    float lambda;
    float inv_r1;
} quiver_spill_row;

/// The list other than `first` with the smallest loss (x_norm + rank[c]) + ((λ·p)·p)·inv_r1,
/// p = (x_dot_r1 + neg_ip[c]) + gram[c] (computed exactly so, without FMA); among equal losses
/// the nearer list, then the lower. −1 when no list has a loss below +inf.
int32_t quiver_soar_spill(const quiver_spill_row *row, size_t n);

// ---------------------------------------------------------------------------------------------
// 4-bit FastScan
//
// Codes of `m` subspaces with 16 centers each are packed in blocks of 32 vectors. A block holds
// ceil(m/2) groups of 32 bytes; group g covers subspaces 2g and 2g+1:
//   bytes  0..15: byte j = code(vector j, subspace 2g)   | code(vector j+16, subspace 2g)   << 4
//   bytes 16..31: byte j = code(vector j, subspace 2g+1) | code(vector j+16, subspace 2g+1) << 4
// so one 256-bit load meets a 256-bit LUT register holding the 16-byte rows of both subspaces.
// For odd m the last group's second half is padding: zero codes, and no LUT row is read for it.
// Vectors past `count` in the last block are zero codes and are never reported.
//
// A query's LUT is m rows of 16 uint8 values (quantized distances: lower is better). A vector's
// quantized distance is the sum of its m entries, accumulated in 16-bit lanes; the caller scales
// the LUT so that the sum of the per-row maxima is at most 65535, so no sum can overflow.
// The distance pushed to the heap is  sum / scale + bias,  with the vector's row id from `ids`.
// ---------------------------------------------------------------------------------------------

/// Vectors per FastScan block.
#define QUIVER_FASTSCAN_BLOCK_VECTORS 32

/// Bytes of packed codes for `count` vectors of `m` subspaces.
size_t quiver_fastscan_packed_size(size_t count, size_t m);
/// Packs `count` row-major code rows (m bytes each, values < 16) into FastScan blocks.
/// `packed` must hold quiver_fastscan_packed_size(count, m) bytes; it is fully written.
void quiver_fastscan_pack(const uint8_t *codes, size_t count, size_t m, uint8_t *packed);
/// Inverse of pack: writes `count` rows of m codes.
void quiver_fastscan_unpack(const uint8_t *packed, size_t count, size_t m, uint8_t *codes);
/// Writes the m codes (values < 16) of vector `index` into packed blocks that already have room
/// for it (a list growing one entry at a time appends a zeroed block every 32 entries).
void quiver_fastscan_set_entry(uint8_t *packed, size_t m, size_t index, const uint8_t *codes);
/// Reads the m codes of vector `index`.
void quiver_fastscan_get_entry(const uint8_t *packed, size_t m, size_t index, uint8_t *codes);
/// Writes the 16-bit quantized distance of every vector (count values) to `sums`.
void quiver_fastscan_sums(quiver_isa isa, const uint8_t *packed, size_t count, size_t m,
                          const uint8_t *lut, uint16_t *sums);
/// Scans one list: offers every vector whose distance (sum / scale + bias) can beat the heap's
/// threshold, in ascending vector order. The SIMD paths prune whole groups of vectors with a
/// 16-bit compare against the threshold before any heap work; pruning is conservative, so every
/// path leaves the heap exactly as the scalar reference does.
void quiver_fastscan_scan(quiver_isa isa, const uint8_t *packed, size_t count, size_t m,
                          const uint8_t *lut, float scale, float bias, const uint32_t *ids,
                          quiver_topk *heap);
/// Scans one list for `nq` queries, loading each block's codes once for several queries (the
/// batch-search case where many queries probe the same list). Leaves heaps[q] exactly as
/// quiver_fastscan_scan(isa, packed, count, m, luts[q], scales[q], biases[q], ids, heaps[q]) would;
/// the heaps must be distinct.
void quiver_fastscan_scan_multi(quiver_isa isa, const uint8_t *packed, size_t count, size_t m,
                                size_t nq, const uint8_t *const *luts, const float *scales,
                                const float *biases, const uint32_t *ids, quiver_topk *const *heaps);

/// The float distance table of 4-bit PQ for one query: `table[s * 16 + c]` is −⟨q_s, center_{s,c}⟩
/// when `center_norms` is NULL (inner product), else ‖q_s − center_{s,c}‖² (L2, with
/// `center_norms[s * 16 + c]` = ‖center_{s,c}‖²). `transposed` holds each subspace's codebook
/// dimension-major: `transposed[(s * dsub + j) * 16 + c]`.
void quiver_pq4_table(const float *query, const float *transposed, const float *center_norms, size_t m,
                      size_t dsub, float *table);
/// Floats of the encoder's codebook layout for `m` subspaces of `dsub` dimensions.
size_t quiver_pq4_book_size(size_t m, size_t dsub);
/// Lays out 4-bit codebooks (`transposed`, as for quiver_pq4_table) for quiver_pq4_encode:
/// subspaces in blocks of 8, `book[((block · 16 + center) · dsub + j) · 8 + lane]`, zero padding.
void quiver_pq4_encoding_book(const float *transposed, size_t m, size_t dsub, float *book);
/// Scratch floats quiver_pq4_encode needs.
size_t quiver_pq4_encode_scratch_size(size_t m, size_t dsub);
/// Encodes one residual with 4-bit PQ into `codes` (m bytes): each subspace's nearest of its 16
/// centers (first on ties) or, when `direction` (the datapoint's unit vector) is given and
/// eta > 1, score-aware assignment on ‖e‖² + (η − 1)·⟨e, x̂⟩² (e = residual − decoded): the codes
/// minimising ‖e‖² + μ·⟨e, x̂⟩² per subspace, with μ searched by `steps` steps of false position
/// for μ = 2(η − 1)·⟨e, x̂⟩; the code choice of lowest loss met is kept, the nearest centers among
/// them. `book` comes from quiver_pq4_encoding_book; `scratch` holds
/// quiver_pq4_encode_scratch_size(m, dsub) floats. Every ISA path returns the same codes as the
/// scalar reference, bit for bit.
void quiver_pq4_encode(const float *residual, const float *direction, float eta, const float *book,
                       size_t m, size_t dsub, int steps, uint8_t *codes, float *scratch);
/// Quantizes a float table of `m` rows of 16 distances to uint8: entry = round((v − min_s) · scale),
/// one scale for all rows and bias = Σ min_s, so distance ≈ sum / scale + bias. The scale keeps
/// every entry ≤ 255 and every 16-bit sum ≤ 65535. Rows m..<padded_m are zero. The AVX2 path may
/// differ from the scalar one by a rounding step on ties only.
void quiver_quantize_lut(quiver_isa isa, const float *table, size_t m, size_t padded_m, uint8_t *lut,
                         float *scale, float *bias);

// ---------------------------------------------------------------------------------------------
// Float kernels (dispatch to the best ISA internally; results may differ from the scalar
// reference by float rounding only).
// ---------------------------------------------------------------------------------------------

/// out[i * ldo + j] = <a_i, b_j> for a: na x d and b: nb x d, both row-major. Blocked (a GEMM).
void quiver_inner_products(const float *a, size_t na, const float *b, size_t nb, size_t d,
                           float *out, size_t ldo);
/// out[i] = ||a_i||^2.
void quiver_squared_norms(const float *a, size_t n, size_t d, float *out);
float quiver_dot(const float *a, const float *b, size_t d);
float quiver_l2_squared(const float *a, const float *b, size_t d);
/// <q, x> with x stored as IEEE half-precision bits.
float quiver_dot_f16(const float *q, const uint16_t *x, size_t d);
/// ||q - x||^2 with x stored as IEEE half-precision bits.
float quiver_l2_squared_f16(const float *q, const uint16_t *x, size_t d);
void quiver_f16_to_f32(const uint16_t *src, float *dst, size_t n);
/// Round to nearest even; values beyond the half range become +-infinity.
void quiver_f32_to_f16(const float *src, uint16_t *dst, size_t n);
/// Exact distances for re-ranking: `distances[i]` is −⟨q, x⟩ (inner_product) or ‖q − x‖² for the
/// stored vector x = row `rows[i]` of `vectors` (d float32 values per row, or d float16 when
/// `halves`), +infinity for a row of −1. Candidates lie scattered over the store, so rows are
/// prefetched ahead. Every re-rank (one index, a shard's candidates) goes through here, so equal
/// inputs give equal distances.
void quiver_rerank(const float *query, const void *vectors, int halves, size_t d, const int64_t *rows,
                   size_t count, int inner_product, float *distances);

// ---------------------------------------------------------------------------------------------
// Checksums
// ---------------------------------------------------------------------------------------------

/// CRC-32C (Castagnoli), the usual init/final xor: pass 0 to start, feed the result back to continue.
uint32_t quiver_crc32c(uint32_t crc, const void *data, size_t count);

// ---------------------------------------------------------------------------------------------
// Explicit-ISA variants, so tests and benchmarks can compare a SIMD path with its scalar
// reference. An ISA this CPU cannot run falls back to scalar; for CRC-32C any non-scalar ISA
// means the hardware instruction (SSE4.2) where present.
// ---------------------------------------------------------------------------------------------

void quiver_inner_products_isa(quiver_isa isa, const float *a, size_t na, const float *b, size_t nb,
                               size_t d, float *out, size_t ldo);
void quiver_f16_to_f32_isa(quiver_isa isa, const uint16_t *src, float *dst, size_t n);
void quiver_f32_to_f16_isa(quiver_isa isa, const float *src, uint16_t *dst, size_t n);
uint32_t quiver_crc32c_isa(quiver_isa isa, uint32_t crc, const void *data, size_t count);
size_t quiver_smallest_isa(quiver_isa isa, const float *values, size_t n, size_t k, int32_t *indices, float *scratch);
int32_t quiver_argmin_isa(quiver_isa isa, const float *values, size_t n);
int32_t quiver_soar_spill_isa(quiver_isa isa, const quiver_spill_row *row, size_t n);
void quiver_pq4_encode_isa(quiver_isa isa, const float *residual, const float *direction, float eta,
                           const float *book, size_t m, size_t dsub, int steps, uint8_t *codes, float *scratch);
void quiver_rerank_isa(quiver_isa isa, const float *query, const void *vectors, int halves, size_t d,
                       const int64_t *rows, size_t count, int inner_product, float *distances);

#ifdef __cplusplus
}
#endif

#endif
