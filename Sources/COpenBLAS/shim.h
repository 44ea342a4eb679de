#ifndef CARMA_OPENBLAS_SHIM_H
#define CARMA_OPENBLAS_SHIM_H

/* Debian's libopenblas-dev: the CBLAS interface (single-precision GEMM) and the thread-count call. */
#include <cblas.h>

#endif
