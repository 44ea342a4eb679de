#ifndef CARMA_ISAL_SHIM_H
#define CARMA_ISAL_SHIM_H

/* Only the CRC part of ISA-L is used; the erasure-code header joins when stripes do. */
#include <isa-l/crc.h>

#endif
