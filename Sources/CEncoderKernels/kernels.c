// AVX-512 passes of the encoder's fast path. Each function carries its own target attribute, so the
// file builds for baseline x86-64 and the code runs only after carma_cpu_supports said yes (the
// Swift side never takes the fast path otherwise).

#include "CEncoderKernels.h"
#include "internal.h"

#include <math.h>

#if defined(__x86_64__)
#include <immintrin.h>


int carma_cpu_supports(int precision) {
    __builtin_cpu_init();
    int base = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl")
        && __builtin_cpu_supports("avx512dq");
    switch (precision) {
    case CARMA_PRECISION_INT8: return base && __builtin_cpu_supports("avx512vnni");
    case CARMA_PRECISION_BF16: return base && __builtin_cpu_supports("avx512bf16");
    default: return 0;
    }
}

static inline __mmask16 AVX512 tail(int remaining) {
    return remaining >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << remaining) - 1);
}

static inline __m512 AVX512 gelu512(__m512 x) {
    __m512 z = _mm512_mul_ps(x, _mm512_set1_ps(0.70710678118654752f));
    __m512 a = _mm512_abs_ps(z);
    // 1/d by the reciprocal estimate and one Newton step (relative error ~1e-7): a division costs
    // several times more, and GELU runs over every intermediate activation.
    __m512 d = _mm512_fmadd_ps(a, _mm512_set1_ps(0.3275911f), _mm512_set1_ps(1.0f));
    __m512 t = _mm512_rcp14_ps(d);
    t = _mm512_mul_ps(t, _mm512_fnmadd_ps(d, t, _mm512_set1_ps(2.0f)));
    __m512 p = _mm512_set1_ps(1.061405429f);
    p = _mm512_fmsub_ps(p, t, _mm512_set1_ps(1.453152027f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(1.421413741f));
    p = _mm512_fmsub_ps(p, t, _mm512_set1_ps(0.284496736f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(0.254829592f));
    __m512 e = carma_exp512(_mm512_mul_ps(_mm512_sub_ps(_mm512_setzero_ps(), a), a));
    __m512 y = _mm512_fnmadd_ps(_mm512_mul_ps(p, t), e, _mm512_set1_ps(1.0f));
    // erf is odd: put z's sign back on |erf|.
    __m512i sign = _mm512_and_si512(_mm512_castps_si512(z), _mm512_set1_epi32((int)0x80000000u));
    __m512 erf = _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(y), sign));
    return _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(0.5f), x), _mm512_add_ps(erf, _mm512_set1_ps(1.0f)));
}

void AVX512 carma_quantize_rows_u8(const float *x, int rows, int width, uint8_t *out, float *scales) {
    for (int row = 0; row < rows; row++) {
        const float *in = x + (size_t)row * width;
        uint8_t *q = out + (size_t)row * width;
        __m512 largest = _mm512_setzero_ps();
        for (int c = 0; c < width; c += 16) {
            largest = _mm512_max_ps(largest, _mm512_abs_ps(_mm512_maskz_loadu_ps(tail(width - c), in + c)));
        }
        float absmax = _mm512_reduce_max_ps(largest);
        float scale = absmax > 0 ? absmax / 127.0f : 1.0f;
        scales[row] = scale;
        __m512 inverse = _mm512_set1_ps(absmax > 0 ? 127.0f / absmax : 0.0f);
        for (int c = 0; c < width; c += 16) {
            __mmask16 m = tail(width - c);
            __m512i v = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, in + c), inverse));
            v = _mm512_min_epi32(_mm512_max_epi32(v, _mm512_set1_epi32(-127)), _mm512_set1_epi32(127));
            v = _mm512_add_epi32(v, _mm512_set1_epi32(128));
            _mm512_mask_cvtepi32_storeu_epi8(q + c, m, v);
        }
    }
}

void AVX512 carma_to_bf16(const float *x, size_t count, uint16_t *out) {
    for (size_t i = 0; i < count; i += 16) {
        __mmask16 m = tail((int)(count - i > 16 ? 16 : count - i));
        __m512i bits = _mm512_castps_si512(_mm512_maskz_loadu_ps(m, x + i));
        __m512i odd = _mm512_and_si512(_mm512_srli_epi32(bits, 16), _mm512_set1_epi32(1));
        bits = _mm512_add_epi32(bits, _mm512_add_epi32(odd, _mm512_set1_epi32(0x7FFF)));
        _mm512_mask_cvtepi32_storeu_epi16(out + i, m, _mm512_srli_epi32(bits, 16));
    }
}

void AVX512 carma_dequantize(const int32_t *acc, int rows, int columns, int stride, const float *rowScales, const float *columnScales,
                             const int32_t *compensation, const float *bias, float *output, int gelu) {
    for (int row = 0; row < rows; row++) {
        const int32_t *a = acc + (size_t)row * stride;
        float *o = output + (size_t)row * stride;
        __m512 rowScale = _mm512_set1_ps(rowScales[row]);
        for (int c = 0; c < columns; c += 16) {
            __mmask16 m = tail(columns - c);
            __m512i v = _mm512_sub_epi32(_mm512_maskz_loadu_epi32(m, a + c), _mm512_maskz_loadu_epi32(m, compensation + c));
            __m512 scale = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, columnScales + c), rowScale);
            __m512 y = _mm512_fmadd_ps(_mm512_cvtepi32_ps(v), scale, _mm512_maskz_loadu_ps(m, bias + c));
            if (gelu) y = gelu512(y);
            _mm512_mask_storeu_ps(o + c, m, y);
        }
    }
}

void AVX512 carma_gelu(float *x, size_t count) {
    for (size_t i = 0; i < count; i += 16) {
        __mmask16 m = tail((int)(count - i > 16 ? 16 : count - i));
        _mm512_mask_storeu_ps(x + i, m, gelu512(_mm512_maskz_loadu_ps(m, x + i)));
    }
}

void AVX512 carma_add_layer_norm(float *x, const float *residual, int rows, int width, const float *gamma, const float *beta,
                                 float epsilon) {
    for (int row = 0; row < rows; row++) {
        float *v = x + (size_t)row * width;
        __m512 sum = _mm512_setzero_ps();
        for (int c = 0; c < width; c += 16) {
            __mmask16 m = tail(width - c);
            __m512 y = _mm512_maskz_loadu_ps(m, v + c);
            if (residual) {
                y = _mm512_add_ps(y, _mm512_maskz_loadu_ps(m, residual + (size_t)row * width + c));
                _mm512_mask_storeu_ps(v + c, m, y);
            }
            sum = _mm512_add_ps(sum, y);
        }
        __m512 mean = _mm512_set1_ps(_mm512_reduce_add_ps(sum) / (float)width);
        __m512 squares = _mm512_setzero_ps();
        for (int c = 0; c < width; c += 16) {
            __mmask16 m = tail(width - c);
            __m512 d = _mm512_maskz_sub_ps(m, _mm512_maskz_loadu_ps(m, v + c), mean);
            squares = _mm512_fmadd_ps(d, d, squares);
        }
        __m512 inverse = _mm512_set1_ps(1.0f / sqrtf(_mm512_reduce_add_ps(squares) / (float)width + epsilon));
        for (int c = 0; c < width; c += 16) {
            __mmask16 m = tail(width - c);
            __m512 d = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, v + c), mean), inverse);
            _mm512_mask_storeu_ps(v + c, m, _mm512_fmadd_ps(d, _mm512_maskz_loadu_ps(m, gamma + c), _mm512_maskz_loadu_ps(m, beta + c)));
        }
    }
}

void AVX512 carma_softmax_rows(float *values, int rows, int columns) {
    for (int row = 0; row < rows; row++) {
        float *v = values + (size_t)row * columns;
        __m512 largest = _mm512_set1_ps(-INFINITY);
        for (int c = 0; c < columns; c += 16) {
            largest = _mm512_max_ps(largest, _mm512_mask_loadu_ps(_mm512_set1_ps(-INFINITY), tail(columns - c), v + c));
        }
        __m512 shift = _mm512_set1_ps(_mm512_reduce_max_ps(largest));
        __m512 sum = _mm512_setzero_ps();
        for (int c = 0; c < columns; c += 16) {
            __mmask16 m = tail(columns - c);
            __m512 e = _mm512_maskz_mov_ps(m, carma_exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, v + c), shift)));
            _mm512_mask_storeu_ps(v + c, m, e);
            sum = _mm512_add_ps(sum, e);
        }
        __m512 inverse = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(sum));
        for (int c = 0; c < columns; c += 16) {
            __mmask16 m = tail(columns - c);
            _mm512_mask_storeu_ps(v + c, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, v + c), inverse));
        }
    }
}

#else

int carma_cpu_supports(int precision) { (void)precision; return 0; }
void carma_quantize_rows_u8(const float *x, int rows, int width, uint8_t *out, float *scales) {}
void carma_to_bf16(const float *x, size_t count, uint16_t *out) {}
void carma_dequantize(const int32_t *acc, int rows, int columns, int stride, const float *rowScales, const float *columnScales,
                      const int32_t *compensation, const float *bias, float *output, int gelu) {}
void carma_gelu(float *x, size_t count) {}
void carma_add_layer_norm(float *x, const float *residual, int rows, int width, const float *gamma, const float *beta,
                          float epsilon) {}
void carma_softmax_rows(float *values, int rows, int columns) {}

#endif
