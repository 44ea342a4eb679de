// The only file that calls oneDNN (Debian's libdnnl-dev 2.6): one matmul primitive per linear
// layer, its weights reordered once into the layout the primitive wants. The row count is a
// runtime dimension, so one primitive serves every batch size.
//
// Threads: oneDNN here runs on OpenMP, and a call would start a team as wide as the machine. The
// encoder parallelises across sequences itself (and keeps a foreground query on its own thread),
// so every call first sets this thread's OpenMP width to 1. Streams are per thread (a oneDNN
// stream must not be shared between threads); the engine is shared (it is thread-safe). A layer is
// only run after carma_linear_create returned it, so the engine exists by then.

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

struct carma_linear {
    int precision;
    int inputs;
    int outputs;
    dnnl_primitive_t primitive;
    dnnl_memory_t weights;
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
    if (layer->primitive) dnnl_primitive_destroy(layer->primitive);
    if (layer->weights) dnnl_memory_destroy(layer->weights);
    free(layer->bias);
    free(layer->columnScales);
    free(layer->compensation);
    free(layer);
}

#define FAIL(what, status)                                                                                   \
    do {                                                                                                     \
        snprintf(error, error_size, "oneDNN %s failed (status %d)", what, (int)(status));                    \
        goto fail;                                                                                           \
    } while (0)

carma_linear *carma_linear_create(int precision, int inputs, int outputs, const float *weights, const float *bias,
                                  char *error, size_t error_size) {
    omp_set_num_threads(1);
    pthread_once(&engineOnce, makeEngine);
    if (engineStatus != dnnl_success) {
        snprintf(error, error_size, "oneDNN has no CPU engine (status %d)", (int)engineStatus);
        return NULL;
    }
    carma_linear *layer = calloc(1, sizeof *layer);
    dnnl_primitive_desc_t pd = NULL;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_memory_t source = NULL;
    dnnl_primitive_t reorder = NULL;
    dnnl_primitive_desc_t reorderPD = NULL;
    void *packed = NULL;
    dnnl_status_t s;
    if (!layer) {
        snprintf(error, error_size, "out of memory");
        return NULL;
    }
    layer->precision = precision;
    layer->inputs = inputs;
    layer->outputs = outputs;
    layer->bias = malloc(sizeof(float) * outputs);
    if (!layer->bias) FAIL("allocation", dnnl_out_of_memory);
    memcpy(layer->bias, bias, sizeof(float) * outputs);

    int int8 = precision == CARMA_PRECISION_INT8;
    dnnl_data_type_t sourceType = int8 ? dnnl_u8 : dnnl_bf16;
    dnnl_data_type_t weightType = int8 ? dnnl_s8 : dnnl_bf16;
    dnnl_data_type_t destinationType = int8 ? dnnl_s32 : dnnl_f32;
    dnnl_memory_desc_t srcMD, weightsAny, weightsUser, dstMD, biasMD;
    dnnl_dims_t srcDims = {DNNL_RUNTIME_DIM_VAL, inputs}, weightDims = {inputs, outputs}, dstDims = {DNNL_RUNTIME_DIM_VAL, outputs},
                biasDims = {1, outputs};
    if ((s = dnnl_memory_desc_init_by_tag(&srcMD, 2, srcDims, sourceType, dnnl_ab)) != dnnl_success) FAIL("source descriptor", s);
    if ((s = dnnl_memory_desc_init_by_tag(&weightsAny, 2, weightDims, weightType, dnnl_format_tag_any)) != dnnl_success) FAIL("weights descriptor", s);
    // PyTorch keeps W as [outputs × inputs]: the matmul's [inputs × outputs] B, column-major.
    if ((s = dnnl_memory_desc_init_by_tag(&weightsUser, 2, weightDims, weightType, dnnl_ba)) != dnnl_success) FAIL("weights descriptor", s);
    if ((s = dnnl_memory_desc_init_by_tag(&dstMD, 2, dstDims, destinationType, dnnl_ab)) != dnnl_success) FAIL("destination descriptor", s);
    if ((s = dnnl_memory_desc_init_by_tag(&biasMD, 2, biasDims, dnnl_f32, dnnl_ab)) != dnnl_success) FAIL("bias descriptor", s);
    dnnl_matmul_desc_t md;
    if ((s = dnnl_matmul_desc_init(&md, &srcMD, &weightsAny, int8 ? NULL : &biasMD, &dstMD)) != dnnl_success) FAIL("matmul descriptor", s);
    if ((s = dnnl_primitive_attr_create(&attr)) != dnnl_success) FAIL("attributes", s);
    if ((s = dnnl_primitive_desc_create(&pd, &md, attr, engine, NULL)) != dnnl_success) FAIL("matmul", s);
    if ((s = dnnl_primitive_create(&layer->primitive, pd)) != dnnl_success) FAIL("matmul primitive", s);

    // The weights in the precision the kernel takes, then reordered into its layout.
    size_t count = (size_t)inputs * outputs;
    packed = malloc(int8 ? count : count * 2);
    if (!packed) FAIL("allocation", dnnl_out_of_memory);
    if (int8) {
        layer->columnScales = malloc(sizeof(float) * outputs);
        layer->compensation = malloc(sizeof(int32_t) * outputs);
        if (!layer->columnScales || !layer->compensation) FAIL("allocation", dnnl_out_of_memory);
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
    const dnnl_memory_desc_t *wanted = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    if ((s = dnnl_memory_create(&source, &weightsUser, engine, packed)) != dnnl_success) FAIL("weights memory", s);
    if ((s = dnnl_memory_create(&layer->weights, wanted, engine, DNNL_MEMORY_ALLOCATE)) != dnnl_success) FAIL("weights memory", s);
    if ((s = dnnl_reorder_primitive_desc_create(&reorderPD, &weightsUser, engine, wanted, engine, NULL)) != dnnl_success) FAIL("weights reorder", s);
    if ((s = dnnl_primitive_create(&reorder, reorderPD)) != dnnl_success) FAIL("weights reorder", s);
    dnnl_stream_t st = stream();
    if (!st) FAIL("stream", dnnl_runtime_error);
    dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, source}, {DNNL_ARG_TO, layer->weights}};
    if ((s = dnnl_primitive_execute(reorder, st, 2, args)) != dnnl_success) FAIL("weights reorder", s);
    if ((s = dnnl_stream_wait(st)) != dnnl_success) FAIL("weights reorder", s);

    dnnl_primitive_destroy(reorder);
    dnnl_primitive_desc_destroy(reorderPD);
    dnnl_memory_destroy(source);
    free(packed);
    dnnl_primitive_desc_destroy(pd);
    dnnl_primitive_attr_destroy(attr);
    return layer;

fail:
    if (reorder) dnnl_primitive_destroy(reorder);
    if (reorderPD) dnnl_primitive_desc_destroy(reorderPD);
    if (source) dnnl_memory_destroy(source);
    free(packed);
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (attr) dnnl_primitive_attr_destroy(attr);
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

int carma_linear_forward(const carma_linear *layer, const float *input, int rows, float *output, int gelu, void *scratch) {
    if (rows <= 0) return 0;
    omp_set_num_threads(1);
    dnnl_stream_t st = stream();
    if (!st) return -1;
    int int8 = layer->precision == CARMA_PRECISION_INT8;
    size_t r = (size_t)rows;
    char *base = scratch;
    void *source = base;
    float *rowScales = (float *)(base + align64(r * layer->inputs));
    int32_t *products = (int32_t *)(base + align64(r * layer->inputs) + align64(r * sizeof(float)));
    if (int8) {
        carma_quantize_rows_u8(input, rows, layer->inputs, source, rowScales);
    } else {
        carma_to_bf16(input, r * layer->inputs, source);
    }
    dnnl_memory_desc_t srcMD, dstMD;
    dnnl_dims_t srcDims = {rows, layer->inputs}, dstDims = {rows, layer->outputs};
    dnnl_memory_t src = NULL, dst = NULL, bias = NULL;
    int result = -1;
    if (dnnl_memory_desc_init_by_tag(&srcMD, 2, srcDims, int8 ? dnnl_u8 : dnnl_bf16, dnnl_ab) != dnnl_success) goto done;
    if (dnnl_memory_desc_init_by_tag(&dstMD, 2, dstDims, int8 ? dnnl_s32 : dnnl_f32, dnnl_ab) != dnnl_success) goto done;
    if (dnnl_memory_create(&src, &srcMD, engine, source) != dnnl_success) goto done;
    if (dnnl_memory_create(&dst, &dstMD, engine, int8 ? (void *)products : (void *)output) != dnnl_success) goto done;
    dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, layer->weights}, {DNNL_ARG_DST, dst}};
    int argc = 3;
    if (!int8) {
        dnnl_memory_desc_t biasMD;
        dnnl_dims_t biasDims = {1, layer->outputs};
        if (dnnl_memory_desc_init_by_tag(&biasMD, 2, biasDims, dnnl_f32, dnnl_ab) != dnnl_success) goto done;
        if (dnnl_memory_create(&bias, &biasMD, engine, layer->bias) != dnnl_success) goto done;
        args[argc++] = (dnnl_exec_arg_t){DNNL_ARG_BIAS, bias};
    }
    if (dnnl_primitive_execute(layer->primitive, st, argc, args) != dnnl_success) goto done;
    if (dnnl_stream_wait(st) != dnnl_success) goto done;
    if (int8) {
        carma_dequantize(products, rows, layer->outputs, rowScales, layer->columnScales, layer->compensation, layer->bias, output, gelu);
    } else if (gelu) {
        carma_gelu(output, r * layer->outputs);
    }
    result = 0;
done:
    if (src) dnnl_memory_destroy(src);
    if (dst) dnnl_memory_destroy(dst);
    if (bias) dnnl_memory_destroy(bias);
    return result;
}

#else

carma_linear *carma_linear_create(int precision, int inputs, int outputs, const float *weights, const float *bias,
                                  char *error, size_t error_size) {
    snprintf(error, error_size, "the fast path needs x86-64 with AVX-512");
    return NULL;
}
void carma_linear_destroy(carma_linear *layer) {}
size_t carma_linear_scratch_bytes(const carma_linear *layer, int rows) { return 0; }
int carma_linear_forward(const carma_linear *layer, const float *input, int rows, float *output, int gelu, void *scratch) { return -1; }

#endif
