#ifndef CARMA_ENCODER_KERNELS_H
#define CARMA_ENCODER_KERNELS_H

// The sentence encoder's reduced-precision path: linear layers through oneDNN's int8 (VNNI) or
// bf16 (AVX512_BF16) matrix products, and the AVX-512 passes around them (quantising the
// activations, scaling the products back, GELU, residual + layer norm, softmax). Swift calls only
// these functions; linear.c is the only file that calls oneDNN.

#include <stddef.h>
#include <stdint.h>

/// The precisions of the fast path; fp32 stays in Swift over OpenBLAS.
enum {
    CARMA_PRECISION_BF16 = 1,
    CARMA_PRECISION_INT8 = 2,
};

/// 1 when this CPU (and the OS) can run `precision`'s kernels: AVX-512 F/BW/VL/DQ with VNNI for
/// int8, with BF16 for bf16; 0 otherwise (and on every non-x86 build).
int carma_cpu_supports(int precision);

/// One linear layer (`output = input · Wᵀ + bias`) with its weights kept in the precision the
/// kernels want: int8 with one scale per output channel, or bf16. Immutable after creation, so
/// any number of threads may run it at once, each with its own scratch.
typedef struct carma_linear carma_linear;

/// Creates a layer from PyTorch-layout fp32 weights [outputs × inputs] and bias [outputs]; NULL
/// with a message in `error` when oneDNN cannot make it.
carma_linear *carma_linear_create(int precision, int inputs, int outputs, const float *weights, const float *bias,
                                  char *error, size_t error_size);
void carma_linear_destroy(carma_linear *layer);

/// Bytes of scratch `carma_linear_forward` needs for `rows` rows.
size_t carma_linear_scratch_bytes(const carma_linear *layer, int rows);

/// A helper thread that lends one caller at a time a second core: a foreground embedding (a
/// query's, alone) splits each layer's columns with it. Owned by one encoder.
typedef struct carma_team carma_team;

/// Starts the helper (asleep until acquired); NULL when no thread could be made.
carma_team *carma_team_create(void);
void carma_team_destroy(carma_team *team);
/// 1 when the caller now holds the team (it was free), else 0. The holder passes it to
/// `carma_linear_forward` and releases it when done.
int carma_team_acquire(carma_team *team);
void carma_team_release(carma_team *team);

/// `output[rows × outputs] = input[rows × inputs] · Wᵀ + bias`, then GELU when `gelu` is 1.
/// The input is quantised per row (int8: one scale per row, so a row's result does not depend on
/// the other rows). The weights are kept as two halves of the output columns: with a `team` the
/// caller holds, its helper takes the second half while the caller runs the first (NULL: the
/// caller runs both; the result is the same to the bit). Returns 0, or -1 when oneDNN failed.
int carma_linear_forward(const carma_linear *layer, const float *input, int rows, float *output, int gelu, void *scratch,
                         carma_team *team);

/// x = LayerNorm(x + residual) · gamma + beta over rows of `width` floats (AVX-512).
void carma_add_layer_norm(float *x, const float *residual, int rows, int width, const float *gamma, const float *beta,
                          float epsilon);

/// Softmax of each row of a row-major matrix, in place (AVX-512).
void carma_softmax_rows(float *values, int rows, int columns);

/// Bytes of scratch `carma_attention_bf16` needs for a sequence of `n` tokens.
size_t carma_attention_scratch_bytes(int n, int headSize);

/// Scaled dot-product attention of one sequence, every head: Q, K and V read from `qkv`
/// [n × 3·hidden] (Q, then K, then V in each row), the result written to `context` [n × hidden].
/// Dot products in bf16, softmax in fp32. Needs AVX512_BF16 and a head size that is a multiple of 16.
void carma_attention_bf16(const float *qkv, int n, int hidden, int heads, float *context, void *scratch);

/// Sets the calling thread's niceness (Linux: per thread); 0, or -1 when refused.
int carma_set_thread_niceness(int niceness);

#endif
