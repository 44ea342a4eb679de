// A small C interface over hnswlib (Debian's libhnswlib-dev, header-only C++): an HNSW graph over
// int8 vectors compared by cosine, with 64-bit labels. hnswlib is C++ templates, which Swift
// cannot import; these functions are the whole boundary, and CarmaVectors' VectorIndex is the only
// Swift file that calls them. No C++ exception crosses it: a failure returns an error code and,
// where a buffer is given, a message.
//
// Thread safety (hnswlib's own): any number of searches, gets and adds may run at once; remove,
// resize, retain and save must not run while anything else touches the same index.
#ifndef CHNSW_H
#define CHNSW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct chnsw_index chnsw_index;

/// Whether a label may be returned by a search (a caller's filter).
typedef bool (*chnsw_filter)(uint64_t label, void *context);

/// An empty index for vectors of `dimensions` int8 values. NULL with a message on failure.
chnsw_index *chnsw_create(uint32_t dimensions, uint64_t capacity, uint32_t m, uint32_t ef_construction, uint64_t seed,
                          char *error, size_t error_size);
void chnsw_free(chnsw_index *index);

/// Adds a vector under `label`, or replaces the vector of a label already there (also a removed
/// one, which it brings back). Returns 0, -1 when the index is full (resize first), -2 on another
/// failure (message in `error`).
int chnsw_add(chnsw_index *index, uint64_t label, const int8_t *vector, char *error, size_t error_size);

/// Marks `label` removed: it stays in the graph as a waypoint and is never returned. Returns 1 if
/// it was there and live, else 0.
int chnsw_remove(chnsw_index *index, uint64_t label);

/// Copies the vector of a live label into `out` (dimensions bytes). Returns 1, or 0 if absent.
int chnsw_get(const chnsw_index *index, uint64_t label, int8_t *out);

/// Removes every live label for which `keep` answers false; returns how many.
uint64_t chnsw_retain(chnsw_index *index, chnsw_filter keep, void *context);

/// Room for `capacity` elements (live and removed); returns 0, or -2 with a message.
int chnsw_resize(chnsw_index *index, uint64_t capacity, char *error, size_t error_size);

/// The `k` nearest live labels accepted by `filter` (NULL: all), nearest first: the beam search of
/// HNSW's bottom layer with `ef` candidates. Stops after `budget` distance computations (0: no
/// limit); returns 1 if it stopped there (the answer may then miss closer labels), else 0.
/// `labels` and `distances` (1 − cosine) have room for `k`; `found` is set to how many were written.
int chnsw_search(const chnsw_index *index, const int8_t *query, uint32_t k, uint32_t ef, chnsw_filter filter,
                 void *context, uint64_t budget, uint64_t *labels, float *distances, uint32_t *found,
                 uint64_t *computed);

/// The integer dot product of `query` with each of `count` rows of `width` int8 values stored one
/// after the other in `rows`, into `out` (the exact scan's arithmetic, the graph's distance kernel).
void chnsw_dots(const int8_t *query, const int8_t *rows, uint64_t count, uint32_t width, int32_t *out);

/// Elements in the graph (live and removed), removed ones, and room.
uint64_t chnsw_elements(const chnsw_index *index);
uint64_t chnsw_removed(const chnsw_index *index);
uint64_t chnsw_capacity(const chnsw_index *index);
uint32_t chnsw_dimensions(const chnsw_index *index);
/// Bytes the index holds in memory (vectors, links, label table, locks), estimated from its sizes.
uint64_t chnsw_memory_bytes(const chnsw_index *index);

/// Writes the index to `path` (through a temporary file and a rename, with a checksum). Returns 0
/// or -2 with a message.
int chnsw_save(const chnsw_index *index, const char *path, char *error, size_t error_size);

/// Reads an index written by `chnsw_save`. The file is not trusted: its checksum, every size and
/// every link are checked before the graph is used, and anything wrong is a NULL with a message,
/// never a crash. `extra_capacity` adds room for elements beyond those in the file.
chnsw_index *chnsw_load(const char *path, uint32_t dimensions, uint64_t extra_capacity, char *error,
                        size_t error_size);

#ifdef __cplusplus
}
#endif

#endif
