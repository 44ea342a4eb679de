// The only file that calls oneDNN (Debian's libdnnl-dev 2.6): two matmul primitives per linear
// layer, one per half of its output columns, each with its weights reordered once into the layout
// the primitive wants. The row count is a runtime dimension, so the primitives serve every batch
// size; each half writes its columns of the whole layer's rows (a strided destination).
//
// Threads: oneDNN here runs on OpenMP, and a call would start a team as wide as the machine. The
// encoder parallelises across sequences itself, and a foreground query alone splits each layer's
// halves with the team's helper (team.c), so every call first sets this thread's OpenMP width to
// 1. Streams are per thread (a oneDNN stream must not be shared between threads); the engine is
// shared (it is thread-safe). A layer is only run after carma_linear_create returned it, so the
// engine exists by then.

#include "CEncoderKernels.h"
#include "internal.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__)
#include <oneapi/dnnl/dnnl.h>

void omp_set_num_threads(int);

/// One half of a layer's output columns: its matmul and its weights in the layout it wants.
typedef struct {
    int first;
    int columns;
    dnnl_primitive_t primitive;
    dnnl_memory_t weights;
} carma_part;

struct carma_linear {
    int precision;
    int inputs;
    int outputs;
    /// The columns in two halves (a multiple of 64 where the layer allows), so that a team can run
    /// one each; alone, a thread runs both, one after the other.
    carma_part parts[2];
    float *bias;
    /// int8: each output channel's weight scale, and 128 · the channel's sum of int8 weights (the
    /// product of the +128-shifted u8 input contains it once too many).
    float *columnScales;
    int32_t *compensation;
};

static dnnl_engine_t engine;
static dnnl_status_t engineStatus = dnnl_runtime_error;
static pthread_once_t engineOnce = PTHREAD_ONCE_INIT;
/// Each thread's stream, destroyed when the thread ends (the encoder's helper threads are short-lived).
static pthread_key_t streamKey;

static void destroyStream(void *stream) { dnnl_stream_destroy(stream); }

static void makeEngine(void) {
    engineStatus = dnnl_engine_create(&engine, dnnl_cpu, 0);
    if (engineStatus == dnnl_success && pthread_key_create(&streamKey, destroyStream) != 0) engineStatus = dnnl_runtime_error;
}

static dnnl_stream_t stream(void) {
    dnnl_stream_t stream = pthread_getspecific(streamKey);
    if (!stream) {
        if (dnnl_stream_create(&stream, engine, dnnl_stream_default_flags) != dnnl_success) return NULL;
        pthread_setspecific(streamKey, stream);
    }
    return stream;
}

static size_t align64(size_t n) { return (n + 63) & ~(size_t)63; }

void carma_linear_destroy(carma_linear *layer) {
    if (!layer) return;
    for (int p = 0; p < 2; p++) {
        if (layer->parts[p].primitive) dnnl_primitive_destroy(layer->parts[p].primitive);
        if (layer->parts[p].weights) dnnl_memory_destroy(layer->parts[p].weights);
    }
    free(layer->bias);
    free(layer->columnScales);
    free(layer->compensation);
    free(layer);
}

/// The matmul of one part and its weights (`packed`: the whole layer's, PyTorch layout, in the
/// kernel's precision), reordered into the layout the primitive wants. 0, or -1 with a message.
static int makePart(carma_linear *layer, carma_part *part, const void *packed, char *error, size_t error_size) {
    int int8 = layer->precision == CARMA_PRECISION_INT8;
    dnnl_data_type_t sourceType = int8 ? dnnl_u8 : dnnl_bf16;
    dnnl_data_type_t weightType = int8 ? dnnl_s8 : dnnl_bf16;
    dnnl_data_type_t destinationType = int8 ? dnnl_s32 : dnnl_f32;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_memory_t source = NULL;
    dnnl_primitive_t reorder = NULL;
    dnnl_primitive_desc_t reorderPD = NULL;
    dnnl_status_t s;
    const char *what = "descriptors";
    dnnl_memory_desc_t srcMD, weightsAny, weightsUser, dstMD, biasMD;
    dnnl_dims_t srcDims = {DNNL_RUNTIME_DIM_VAL, layer->inputs}, weightDims = {layer->inputs, part->columns};
    // The destination is the whole layer's rows; this part writes its own columns of them.
    dnnl_dims_t dstDims = {DNNL_RUNTIME_DIM_VAL, part->columns}, dstStrides = {layer->outputs, 1}, biasDims = {1, part->columns};
    if ((s = dnnl_memory_desc_init_by_tag(&srcMD, 2, srcDims, sourceType, dnnl_ab)) != dnnl_success) goto fail;
    if ((s = dnnl_memory_desc_init_by_tag(&weightsAny, 2, weightDims, weightType, dnnl_format_tag_any)) != dnnl_success) goto fail;
    // PyTorch keeps W as [outputs × inputs]: the matmul's [inputs × outputs] B, column-major.
    if ((s = dnnl_memory_desc_init_by_tag(&weightsUser, 2, weightDims, weightType, dnnl_ba)) != dnnl_success) goto fail;
    if ((s = dnnl_memory_desc_init_by_strides(&dstMD, 2, dstDims, destinationType, dstStrides)) != dnnl_success) goto fail;
    if ((s = dnnl_memory_desc_init_by_tag(&biasMD, 2, biasDims, dnnl_f32, dnnl_ab)) != dnnl_success) goto fail;
    dnnl_matmul_desc_t md;
    what = "matmul";
    if ((s = dnnl_matmul_desc_init(&md, &srcMD, &weightsAny, int8 ? NULL : &biasMD, &dstMD)) != dnnl_success) goto fail;
    if ((s = dnnl_primitive_desc_create(&pd, &md, NULL, engine, NULL)) != dnnl_success) goto fail;
    if ((s = dnnl_primitive_create(&part->primitive, pd)) != dnnl_success) goto fail;
    what = "weights reorder";
    const dnnl_memory_desc_t *wanted = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    const char *rows = (const char *)packed + (size_t)part->first * layer->inputs * (int8 ? 1 : 2);
    if ((s = dnnl_memory_create(&source, &weightsUser, engine, (void *)rows)) != dnnl_success) goto fail;
    if ((s = dnnl_memory_create(&part->weights, wanted, engine, DNNL_MEMORY_ALLOCATE)) != dnnl_success) goto fail;
    if ((s = dnnl_reorder_primitive_desc_create(&reorderPD, &weightsUser, engine, wanted, engine, NULL)) != dnnl_success) goto fail;
    if ((s = dnnl_primitive_create(&reorder, reorderPD)) != dnnl_success) goto fail;
    dnnl_stream_t st = stream();
    if (!st) {
        s = dnnl_runtime_error;
        goto fail;
    }
    dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, source}, {DNNL_ARG_TO, part->weights}};
    if ((s = dnnl_primitive_execute(reorder, st, 2, args)) != dnnl_success) goto fail;
    if ((s = dnnl_stream_wait(st)) != dnnl_success) goto fail;
    s = dnnl_success;
fail:
    if (s != dnnl_success) snprintf(error, error_size, "oneDNN %s failed (status %d)", what, (int)s);
    if (reorder) dnnl_primitive_destroy(reorder);
    if (reorderPD) dnnl_primitive_desc_destroy(reorderPD);
    if (source) dnnl_memory_destroy(source);
    if (pd) dnnl_primitive_desc_destroy(pd);
    return s == dnnl_success ? 0 : -1;
}

carma_linear *carma_linear_create(int precision, int inputs, int outputs, const float *weights, const float *bias,
                                  char *error, size_t error_size) {
    omp_set_num_threads(1);
    pthread_once(&engineOnce, makeEngine);
    if (engineStatus != dnnl_success) {
        snprintf(error, error_size, "oneDNN has no CPU engine (status %d)", (int)engineStatus);
        return NULL;
    }
    if (outputs < 2) {
        snprintf(error, error_size, "a layer of %d outputs cannot be split", outputs);
        return NULL;
    }
    carma_linear *layer = calloc(1, sizeof *layer);
    if (!layer) {
        snprintf(error, error_size, "out of memory");
        return NULL;
    }
    layer->precision = precision;
    layer->inputs = inputs;
    layer->outputs = outputs;
    int half = outputs >= 128 ? (outputs / 2 + 32) / 64 * 64 : outputs / 2;
    layer->parts[0] = (carma_part){.first = 0, .columns = half};
    layer->parts[1] = (carma_part){.first = half, .columns = outputs - half};
    int int8 = precision == CARMA_PRECISION_INT8;
    size_t count = (size_t)inputs * outputs;
    void *packed = malloc(int8 ? count : count * 2);
    layer->bias = malloc(sizeof(float) * outputs);
    if (int8) {
        layer->columnScales = malloc(sizeof(float) * outputs);
        layer->compensation = malloc(sizeof(int32_t) * outputs);
    }
    if (!packed || !layer->bias || (int8 && (!layer->columnScales || !layer->compensation))) {
        snprintf(error, error_size, "out of memory");
        goto fail;
    }
    memcpy(layer->bias, bias, sizeof(float) * outputs);
    // The weights in the precision the kernel takes, then reordered into its layout, part by part.
    if (int8) {
        for (int n = 0; n < outputs; n++) {
            const float *w = weights + (size_t)n * inputs;
            float absmax = 0;
            for (int k = 0; k < inputs; k++) absmax = fmaxf(absmax, fabsf(w[k]));
            float scale = absmax > 0 ? absmax / 127.0f : 1.0f;
            int32_t sum = 0;
            for (int k = 0; k < inputs; k++) {
                long q = lrintf(w[k] / scale);
                q = q > 127 ? 127 : q < -127 ? -127 : q;
                ((int8_t *)packed)[(size_t)n * inputs + k] = (int8_t)q;
                sum += (int32_t)q;
            }
            layer->columnScales[n] = scale;
            layer->compensation[n] = 128 * sum;
        }
    } else {
        carma_to_bf16(weights, count, packed);
    }
    for (int p = 0; p < 2; p++) {
        if (makePart(layer, &layer->parts[p], packed, error, error_size) != 0) goto fail;
    }
    free(packed);
    return layer;

fail:
    free(packed);
    carma_linear_destroy(layer);
    return NULL;
}

size_t carma_linear_scratch_bytes(const carma_linear *layer, int rows) {
    size_t r = (size_t)rows;
    if (layer->precision == CARMA_PRECISION_INT8) {
        return align64(r * layer->inputs) + align64(r * sizeof(float)) + align64(r * layer->outputs * sizeof(int32_t));
    }
    return align64(r * layer->inputs * 2);
}

/// One part's share of a forward pass, on whichever thread runs it.
typedef struct {
    const carma_linear *layer;
    const carma_part *part;
    const void *source;
    const float *rowScales;
    int32_t *products;
    float *output;
    int rows;
    int gelu;
} carma_part_run;

static int runPart(void *argument) {
    const carma_part_run *run = argument;
    const carma_linear *layer = run->layer;
    const carma_part *part = run->part;
    omp_set_num_threads(1);
    dnnl_stream_t st = stream();
    if (!st) return -1;
    int int8 = layer->precision == CARMA_PRECISION_INT8;
    dnnl_memory_desc_t srcMD, dstMD;
    dnnl_dims_t srcDims = {run->rows, layer->inputs}, dstDims = {run->rows, part->columns}, dstStrides = {layer->outputs, 1};
    dnnl_memory_t src = NULL, dst = NULL, bias = NULL;
    int result = -1;
    void *destination = int8 ? (void *)(run->products + part->first) : (void *)(run->output + part->first);
    if (dnnl_memory_desc_init_by_tag(&srcMD, 2, srcDims, int8 ? dnnl_u8 : dnnl_bf16, dnnl_ab) != dnnl_success) goto done;
    if (dnnl_memory_desc_init_by_strides(&dstMD, 2, dstDims, int8 ? dnnl_s32 : dnnl_f32, dstStrides) != dnnl_success) goto done;
    if (dnnl_memory_create(&src, &srcMD, engine, (void *)run->source) != dnnl_success) goto done;
    if (dnnl_memory_create(&dst, &dstMD, engine, destination) != dnnl_success) goto done;
    dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, part->weights}, {DNNL_ARG_DST, dst}};
    int argc = 3;
    if (!int8) {
        dnnl_memory_desc_t biasMD;
        dnnl_dims_t biasDims = {1, part->columns};
        if (dnnl_memory_desc_init_by_tag(&biasMD, 2, biasDims, dnnl_f32, dnnl_ab) != dnnl_success) goto done;
        if (dnnl_memory_create(&bias, &biasMD, engine, layer->bias + part->first) != dnnl_success) goto done;
        args[argc++] = (dnnl_exec_arg_t){DNNL_ARG_BIAS, bias};
    }
    if (dnnl_primitive_execute(part->primitive, st, argc, args) != dnnl_success) goto done;
    if (dnnl_stream_wait(st) != dnnl_success) goto done;
    if (int8) {
        carma_dequantize(run->products + part->first, run->rows, part->columns, layer->outputs, run->rowScales,
                         layer->columnScales + part->first, layer->compensation + part->first, layer->bias + part->first,
                         run->output + part->first, run->gelu);
    } else if (run->gelu) {
        for (int row = 0; row < run->rows; row++) carma_gelu(run->output + (size_t)row * layer->outputs + part->first, part->columns);
    }
    result = 0;
done:
    if (src) dnnl_memory_destroy(src);
    if (dst) dnnl_memory_destroy(dst);
    if (bias) dnnl_memory_destroy(bias);
    return result;
}

int carma_linear_forward(const carma_linear *layer, const float *input, int rows, float *output, int gelu, void *scratch,
                         carma_team *team) {
    if (rows <= 0) return 0;
    int int8 = layer->precision == CARMA_PRECISION_INT8;
    size_t r = (size_t)rows;
    char *base = scratch;
    float *rowScales = (float *)(base + align64(r * layer->inputs));
    int32_t *products = (int32_t *)(base + align64(r * layer->inputs) + align64(r * sizeof(float)));
    if (int8) {
        carma_quantize_rows_u8(input, rows, layer->inputs, (uint8_t *)base, rowScales);
    } else {
        carma_to_bf16(input, r * layer->inputs, (uint16_t *)base);
    }
    carma_part_run runs[2];
    for (int p = 0; p < 2; p++) {
        runs[p] = (carma_part_run){.layer = layer, .part = &layer->parts[p], .source = base, .rowScales = rowScales,
                                   .products = products, .output = output, .rows = rows, .gelu = gelu};
    }
    if (team) {
        carma_team_post(team, runPart, &runs[1]);
        int first = runPart(&runs[0]);
        int second = carma_team_finish(team);
        return first == 0 && second == 0 ? 0 : -1;
    }
    return runPart(&runs[0]) == 0 && runPart(&runs[1]) == 0 ? 0 : -1;
}

#else

carma_linear *carma_linear_create(int precision, int inputs, int outputs, const float *weights, const float *bias,
                                  char *error, size_t error_size) {
    snprintf(error, error_size, "the fast path needs x86-64 with AVX-512");
    return NULL;
}
void carma_linear_destroy(carma_linear *layer) {}
size_t carma_linear_scratch_bytes(const carma_linear *layer, int rows) { return 0; }
int carma_linear_forward(const carma_linear *layer, const float *input, int rows, float *output, int gelu, void *scratch,
                         carma_team *team) { return -1; }

#endif
