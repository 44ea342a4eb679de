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
/// when `gelu` is 1.
void carma_dequantize(const int32_t *acc, int rows, int columns, const float *rowScales, const float *columnScales,
                      const int32_t *compensation, const float *bias, float *output, int gelu);

/// GELU (x·Φ(x), erf by Abramowitz–Stegun 7.1.26) in place.
void carma_gelu(float *x, size_t count);

#endif
