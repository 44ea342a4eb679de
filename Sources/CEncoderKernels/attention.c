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

static inline uint32_t bf16Bits(float x) {
    union { float f; uint32_t u; } v = {x};
    return (v.u + 0x7FFF + ((v.u >> 16) & 1)) >> 16;
}

static inline uint32_t pair(float low, float high) { return bf16Bits(low) | (bf16Bits(high) << 16); }

size_t carma_attention_scratch_bytes(int n, int headSize) {
    size_t padded = ((size_t)n + 15) & ~(size_t)15;
    size_t pairs = (size_t)headSize / 2;
    return sizeof(uint32_t) * (padded * pairs          // K: [key block][d pair][16 keys]
                               + n * pairs             // Q: [query][d pair]
                               + (padded / 2) * headSize // V: [key pair][d]
                               + padded / 2)           // one row of P as key pairs
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
    for (int head = 0; head < heads; head++) {
        const float *qs = qkv + head * headSize, *ks = qs + hidden, *vs = qs + 2 * hidden;
        for (int j = 0; j < padded; j++) {
            for (int d = 0; d < pairs; d++) {
                k[((size_t)(j / 16) * pairs + d) * 16 + j % 16] =
                    j < n ? pair(ks[(size_t)j * rowStride + 2 * d], ks[(size_t)j * rowStride + 2 * d + 1]) : 0;
            }
        }
        // Q's pairs lie along d, so a bf16 row is already in pair layout.
        for (int i = 0; i < n; i++) {
            for (int d = 0; d < headSize; d += 16) {
                __m256bh half = _mm512_cvtneps_pbh(_mm512_loadu_ps(qs + (size_t)i * rowStride + d));
                _mm256_storeu_si256((__m256i *)((uint16_t *)(q + (size_t)i * pairs) + d), (__m256i)half);
            }
        }
        for (int jp = 0; jp < keyPairs; jp++) {
            int j = 2 * jp;
            for (int d = 0; d < headSize; d++) {
                float low = j < n ? vs[(size_t)j * rowStride + d] : 0, high = j + 1 < n ? vs[(size_t)(j + 1) * rowStride + d] : 0;
                v[(size_t)jp * headSize + d] = pair(low, high);
            }
        }
        for (int i = 0; i < n; i++) {
            const uint32_t *qi = q + (size_t)i * pairs;
            __m512 largest = _mm512_set1_ps(-INFINITY);
            for (int block = 0; block < padded / 16; block++) {
                __m512 acc = _mm512_setzero_ps();
                const uint32_t *kb = k + (size_t)block * pairs * 16;
                for (int d = 0; d < pairs; d++) {
                    acc = _mm512_dpbf16_ps(acc, (__m512bh)_mm512_set1_epi32((int)qi[d]), (__m512bh)_mm512_loadu_si512(kb + d * 16));
                }
                acc = _mm512_mul_ps(acc, _mm512_set1_ps(scale));
                int remaining = n - block * 16;
                __mmask16 m = remaining >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << remaining) - 1);
                acc = _mm512_mask_blend_ps(m, _mm512_set1_ps(-INFINITY), acc);
                largest = _mm512_max_ps(largest, acc);
                _mm512_storeu_ps(scores + block * 16, acc);
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
            for (int d0 = 0; d0 < headSize; d0 += 16) {
                __m512 acc = _mm512_setzero_ps();
                for (int jp = 0; jp < keyPairs; jp++) {
                    acc = _mm512_dpbf16_ps(acc, (__m512bh)_mm512_set1_epi32((int)p[jp]), (__m512bh)_mm512_loadu_si512(v + (size_t)jp * headSize + d0));
                }
                _mm512_storeu_ps(out + d0, acc);
            }
        }
    }
}

#else

size_t carma_attention_scratch_bytes(int n, int headSize) { return 0; }
void carma_attention_bf16(const float *qkv, int n, int hidden, int heads, float *context, void *scratch) {}

#endif
