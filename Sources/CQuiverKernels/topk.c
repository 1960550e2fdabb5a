#include "kernels_internal.h"

#include <math.h>

float quiver_topk_threshold(const quiver_topk *heap) {
    if (heap->size < heap->capacity) return INFINITY;
    // A zero-capacity heap can never accept anything; -inf lets scans prune every vector.
    if (heap->capacity <= 0) return -INFINITY;
    return heap->distances[0];
}

static void swap_entries(quiver_topk *heap, int32_t i, int32_t j) {
    float d = heap->distances[i];
    heap->distances[i] = heap->distances[j];
    heap->distances[j] = d;
    int64_t id = heap->ids[i];
    heap->ids[i] = heap->ids[j];
    heap->ids[j] = id;
}

// (distance, id) order; entries never hold NaN, so plain comparisons are a total order. Ranking
// ties by id makes the kept set independent of the order candidates arrive in, so a sharded
// search that merges in the same order returns exactly what one heap over everything returns.
static int entry_after(const quiver_topk *heap, int32_t i, int32_t j) {
    if (heap->distances[i] != heap->distances[j]) return heap->distances[i] > heap->distances[j];
    return heap->ids[i] > heap->ids[j];
}

static void sift_up(quiver_topk *heap, int32_t i) {
    while (i > 0) {
        int32_t parent = (i - 1) / 2;
        if (!entry_after(heap, i, parent)) break;
        swap_entries(heap, parent, i);
        i = parent;
    }
}

static void sift_down(quiver_topk *heap, int32_t i, int32_t size) {
    for (;;) {
        int32_t largest = i;
        int32_t left = 2 * i + 1, right = left + 1;
        if (left < size && entry_after(heap, left, largest)) largest = left;
        if (right < size && entry_after(heap, right, largest)) largest = right;
        if (largest == i) return;
        swap_entries(heap, i, largest);
        i = largest;
    }
}

int quiver_topk_push(quiver_topk *heap, float distance, int64_t id) {
    // Any change needs distance <= threshold: a held entry's distance is at most the threshold,
    // so improving it implies that too. This also keeps NaN out.
    if (heap->capacity <= 0 || !(distance <= quiver_topk_threshold(heap))) return 0;
    if (heap->dedupe) {
        for (int32_t i = 0; i < heap->size; i++) {
            if (heap->ids[i] != id) continue;
            if (!(distance < heap->distances[i])) return 0;
            heap->distances[i] = distance;
            sift_down(heap, i, heap->size);  // a smaller key only ever moves towards the leaves
            return 1;
        }
    }
    if (heap->size < heap->capacity) {
        heap->distances[heap->size] = distance;
        heap->ids[heap->size] = id;
        heap->size++;
        sift_up(heap, heap->size - 1);
        return 1;
    }
    // Full: enter only ahead of the worst entry in (distance, id) order.
    if (distance == heap->distances[0] && id >= heap->ids[0]) return 0;
    heap->distances[0] = distance;
    heap->ids[0] = id;
    sift_down(heap, 0, heap->size);
    return 1;
}

void quiver_topk_sort(quiver_topk *heap) {
    // Heapsort in place, no allocation. The rebuild is linear and makes sorting an already
    // sorted (no longer heap-ordered) array safe.
    int32_t n = heap->size;
    for (int32_t i = n / 2 - 1; i >= 0; i--) sift_down(heap, i, n);
    for (int32_t end = n - 1; end > 0; end--) {
        swap_entries(heap, 0, end);
        sift_down(heap, 0, end);
    }
}
