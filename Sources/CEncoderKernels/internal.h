#ifndef CARMA_ENCODER_INTERNAL_H
#define CARMA_ENCODER_INTERNAL_H

// The AVX-512 passes linear.c runs around oneDNN's products (kernels.c). Called only after
// carma_cpu_supports said yes.

#include <stddef.h>
#include <stdint.h>

/// Each row of x [rows × width] to int8 with one symmetric scale per row (|max| ↦ 127), stored
/// shifted by +128 as u8 (VNNI multiplies u8 by s8); the scales go to `scales`.
void carma_quantize_rows_u8(const float *x, int rows, int width, uint8_t *out, float *scales);

/// Rows of fp32 to bf16, rounded to nearest even.
void carma_to_bf16(const float *x, size_t count, uint16_t *out);

/// output[m][n] = (acc[m][n] - compensation[n]) · rowScale[m] · columnScale[n] + bias[n], then GELU
/// when `gelu` is 1; `columns` of each row, rows `stride` apart in both `acc` and `output`.
void carma_dequantize(const int32_t *acc, int rows, int columns, int stride, const float *rowScales, const float *columnScales,
                      const int32_t *compensation, const float *bias, float *output, int gelu);

/// GELU (x·Φ(x), erf by Abramowitz–Stegun 7.1.26) in place.
void carma_gelu(float *x, size_t count);

/// A job for the team's helper (team.c): returns 0 or -1.
typedef int (*carma_job)(void *argument);

/// Hands `job` to the helper; the caller then runs its own work and calls `carma_team_finish`.
void carma_team_post(carma_team *team, carma_job job, void *argument);
/// The posted job's result: run here if the helper has not taken it yet, else waited for.
int carma_team_finish(carma_team *team);

#if defined(__x86_64__)
#include <immintrin.h>

#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq")))

// e^x as the Swift VectorMath.exp: x = n·ln2 + r, Cephes' degree-5 polynomial for e^r, then 2^n.
static inline __m512 AVX512 carma_exp512(__m512 x) {
    x = _mm512_max_ps(_mm512_min_ps(x, _mm512_set1_ps(88.3f)), _mm512_set1_ps(-87.3f));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fmadd_ps(n, _mm512_set1_ps(2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    __m512 e = _mm512_add_ps(_mm512_fmadd_ps(p, _mm512_mul_ps(r, r), r), _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(e, n);
}

#endif

#endif
