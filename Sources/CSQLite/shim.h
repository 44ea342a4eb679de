#ifndef CARMA_SQLITE_SHIM_H
#define CARMA_SQLITE_SHIM_H

#include <sqlite3.h>

/*
 * SQLITE_TRANSIENT is a macro that casts -1 to a function pointer, which Swift cannot import.
 * Binding text and blobs with it makes SQLite copy the bytes before the call returns.
 */
static inline sqlite3_destructor_type carma_sqlite_transient(void) {
    return SQLITE_TRANSIENT;
}

#endif
