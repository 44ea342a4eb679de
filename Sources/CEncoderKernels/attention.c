// Attention of one sequence with its dot products in bf16 (AVX512_BF16's VDPBF16PS, two products
// per fp32 lane), softmax in fp32. OpenBLAS's fp32 GEMMs on these small per-head matrices (n × 32
// by 32 × n, then n × n by n × 32) took a fifth of the int8 encoder's time, mostly packing; here K
// and V are packed once per head straight into the pair layout the instruction reads.

#include "CEncoderKernels.h"
#include "internal.h"

#if defined(__x86_64__)
#include <immintrin.h>
#include <math.h>

#define AVX512BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16")))

size_t carma_attention_scratch_bytes(int n, int headSize) {
    size_t padded = ((size_t)n + 15) & ~(size_t)15;
    size_t pairs = (size_t)headSize / 2;
    return sizeof(uint32_t) * (padded * pairs          // K: [key block][d pair][16 keys]
                               + n * pairs             // Q: [query][d pair]
                               + (padded / 2) * headSize // V: [key pair][d]
                               + padded / 2            // one row of P as key pairs
                               + padded * pairs)       // K in bf16 before its transposition
        + sizeof(float) * padded;                      // one row of scores
}

void AVX512BF16 carma_attention_bf16(const float *qkv, int n, int hidden, int heads, float *context, void *scratch) {
    int headSize = hidden / heads;
    int pairs = headSize / 2;
    int padded = (n + 15) & ~15;
    int keyPairs = padded / 2;
    int rowStride = 3 * hidden;
    float scale = 1.0f / sqrtf((float)headSize);
    uint32_t *k = scratch;
    uint32_t *q = k + (size_t)padded * pairs;
    uint32_t *v = q + (size_t)n * pairs;
    uint32_t *p = v + (size_t)keyPairs * headSize;
    float *scores = (float *)(p + keyPairs);
    uint32_t *staging = (uint32_t *)(scores + padded);
    for (int head = 0; head < heads; head++) {
        const float *qs = qkv + head * headSize, *ks = qs + hidden, *vs = qs + 2 * hidden;
        // K: each key's row to bf16 pairs (one conversion per 16 values), then the 16 keys of a
        // block transposed to [d pair][16 keys] with plain 32-bit moves (gathers are slow here).
        for (int j = 0; j < padded; j++) {
            uint16_t *row = (uint16_t *)(staging + (size_t)j * pairs);
            for (int d = 0; d < headSize; d += 16) {
                __m512 values = j < n ? _mm512_loadu_ps(ks + (size_t)j * rowStride + d) : _mm512_setzero_ps();
                _mm256_storeu_si256((__m256i *)(row + d), (__m256i)_mm512_cvtneps_pbh(values));
            }
        }
        for (int j = 0; j < padded; j++) {
            for (int d = 0; d < pairs; d++) k[((size_t)(j / 16) * pairs + d) * 16 + j % 16] = staging[(size_t)j * pairs + d];
        }
        // Q's pairs lie along d, so a bf16 row is already in pair layout.
        for (int i = 0; i < n; i++) {
            for (int d = 0; d < headSize; d += 16) {
                __m256bh half = _mm512_cvtneps_pbh(_mm512_loadu_ps(qs + (size_t)i * rowStride + d));
                _mm256_storeu_si256((__m256i *)((uint16_t *)(q + (size_t)i * pairs) + d), (__m256i)half);
            }
        }
        // V: rows 2·jp and 2·jp+1 interleaved value by value, 16 dimensions per permutation.
        const __m512i interleave = _mm512_set_epi16(47, 15, 46, 14, 45, 13, 44, 12, 43, 11, 42, 10, 41, 9, 40, 8,
                                                    39, 7, 38, 6, 37, 5, 36, 4, 35, 3, 34, 2, 33, 1, 32, 0);
        for (int jp = 0; jp < keyPairs; jp++) {
            int j = 2 * jp;
            for (int d = 0; d < headSize; d += 16) {
                __m512 low = j < n ? _mm512_loadu_ps(vs + (size_t)j * rowStride + d) : _mm512_setzero_ps();
                __m512 high = j + 1 < n ? _mm512_loadu_ps(vs + (size_t)(j + 1) * rowStride + d) : _mm512_setzero_ps();
                __m512i a = _mm512_castsi256_si512((__m256i)_mm512_cvtneps_pbh(low));
                __m512i b = _mm512_castsi256_si512((__m256i)_mm512_cvtneps_pbh(high));
                _mm512_storeu_si512(v + (size_t)jp * headSize + d, _mm512_permutex2var_epi16(a, interleave, b));
            }
        }
        for (int i = 0; i < n; i++) {
            const uint32_t *qi = q + (size_t)i * pairs;
            __m512 largest = _mm512_set1_ps(-INFINITY);
            // Four key blocks at a time: four independent chains of VDPBF16PS (its latency, not its
            // throughput, bounds one chain).
            int blocks = padded / 16;
            for (int block = 0; block < blocks; block += 4) {
                __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
                int count = blocks - block < 4 ? blocks - block : 4;
                for (int d = 0; d < pairs; d++) {
                    __m512bh query = (__m512bh)_mm512_set1_epi32((int)qi[d]);
                    for (int u = 0; u < count; u++) {
                        acc[u] = _mm512_dpbf16_ps(acc[u], query, (__m512bh)_mm512_loadu_si512(k + ((size_t)(block + u) * pairs + d) * 16));
                    }
                }
                for (int u = 0; u < count; u++) {
                    __m512 row = _mm512_mul_ps(acc[u], _mm512_set1_ps(scale));
                    int remaining = n - (block + u) * 16;
                    __mmask16 m = remaining >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << remaining) - 1);
                    row = _mm512_mask_blend_ps(m, _mm512_set1_ps(-INFINITY), row);
                    largest = _mm512_max_ps(largest, row);
                    _mm512_storeu_ps(scores + (block + u) * 16, row);
                }
            }
            // Softmax over the row (padding is -inf, so e^x is 0 there).
            __m512 shift = _mm512_set1_ps(_mm512_reduce_max_ps(largest));
            __m512 sum = _mm512_setzero_ps();
            for (int c = 0; c < padded; c += 16) {
                __m512 e = carma_exp512(_mm512_sub_ps(_mm512_loadu_ps(scores + c), shift));
                _mm512_storeu_ps(scores + c, e);
                sum = _mm512_add_ps(sum, e);
            }
            // P's pairs lie along j: the bf16 row is in pair layout too (padding stays 0).
            __m512 inverse = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(sum));
            for (int c = 0; c < padded; c += 16) {
                __m256bh half = _mm512_cvtneps_pbh(_mm512_mul_ps(_mm512_loadu_ps(scores + c), inverse));
                _mm256_storeu_si256((__m256i *)((uint16_t *)p + c), (__m256i)half);
            }
            // context row = P · V, 16 dimensions per accumulator.
            float *out = context + (size_t)i * hidden + head * headSize;
            // Four key pairs at a time into four partial sums, for the same reason.
            for (int d0 = 0; d0 < headSize; d0 += 16) {
                __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
                int jp = 0;
                for (; jp + 4 <= keyPairs; jp += 4) {
                    for (int u = 0; u < 4; u++) {
                        acc[u] = _mm512_dpbf16_ps(acc[u], (__m512bh)_mm512_set1_epi32((int)p[jp + u]),
                                                  (__m512bh)_mm512_loadu_si512(v + (size_t)(jp + u) * headSize + d0));
                    }
                }
                for (; jp < keyPairs; jp++) {
                    acc[0] = _mm512_dpbf16_ps(acc[0], (__m512bh)_mm512_set1_epi32((int)p[jp]), (__m512bh)_mm512_loadu_si512(v + (size_t)jp * headSize + d0));
                }
                _mm512_storeu_ps(out + d0, _mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3])));
            }
        }
    }
}

#else

size_t carma_attention_scratch_bytes(int n, int headSize) { return 0; }
void carma_attention_bf16(const float *qkv, int n, int hidden, int heads, float *context, void *scratch) {}

#endif
