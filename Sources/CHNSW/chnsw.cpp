// The C interface of chnsw.h over hnswlib's HierarchicalNSW<float>.
//
// Why a space of our own: hnswlib's spaces compare float vectors (4 bytes a dimension). The store
// keeps int8 vectors; keeping them as int8 in the graph too makes the index a quarter of the size
// (at 1,000,000 × 384: 388 MB of vectors instead of 1.5 GB) and each comparison a quarter of the
// memory traffic. Each element is the int8 vector followed by the float inverse of its norm, so a
// distance is one integer dot product: 1 − dot · |a|⁻¹ · |b|⁻¹, the cosine distance of the vectors
// as stored.
//
// Why a search of our own: hnswlib 0.6.2 (Debian 12) has no filter in searchKnn. The bottom-layer
// beam search below is hnswlib's (searchBaseLayerST) with a caller's filter on what may enter the
// answer (every element is still a waypoint) and a budget of distance computations, so that a
// filter that few elements pass cannot make a query crawl the whole graph: the caller then scans.
//
// Why a file format of our own: hnswlib's loadIndex trusts its file (a wrong length or link is a
// wild read). Ours has a checksum and every size and link is checked before the graph is used.

#include "chnsw.h"

#include <hnswlib/hnswlib.h>

#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <unistd.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace {

using Graph = hnswlib::HierarchicalNSW<float>;
using hnswlib::tableint;

void setError(char *error, size_t size, const std::string &message) {
    if (error == nullptr || size == 0) return;
    size_t n = std::min(size - 1, message.size());
    memcpy(error, message.data(), n);
    error[n] = 0;
}

int32_t dotScalar(const int8_t *a, const int8_t *b, size_t n) {
    int32_t sum = 0;
    for (size_t i = 0; i < n; i++) sum += int32_t(a[i]) * int32_t(b[i]);
    return sum;
}

#if defined(__x86_64__)
// Compiled for AVX2 whatever the target; chosen at run time only on a CPU that has it.
__attribute__((target("avx2"))) int32_t dotAVX2(const int8_t *a, const int8_t *b, size_t n) {
    __m256i sum = _mm256_setzero_si256();
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256i x = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i *>(a + i)));
        __m256i y = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i *>(b + i)));
        sum = _mm256_add_epi32(sum, _mm256_madd_epi16(x, y));
    }
    __m128i half = _mm_add_epi32(_mm256_castsi256_si128(sum), _mm256_extracti128_si256(sum, 1));
    half = _mm_add_epi32(half, _mm_shuffle_epi32(half, 0x4e));
    half = _mm_add_epi32(half, _mm_shuffle_epi32(half, 0xb1));
    int32_t total = _mm_cvtsi128_si32(half);
    for (; i < n; i++) total += int32_t(a[i]) * int32_t(b[i]);
    return total;
}
#endif

inline float inverseNorm(const char *element, size_t dimensions) {
    float value;
    memcpy(&value, element + dimensions, sizeof(float));
    return value;
}

float distanceScalar(const void *a, const void *b, const void *parameter) {
    size_t d = *static_cast<const size_t *>(parameter);
    auto x = static_cast<const char *>(a), y = static_cast<const char *>(b);
    int32_t dot = dotScalar(reinterpret_cast<const int8_t *>(x), reinterpret_cast<const int8_t *>(y), d);
    return 1.0f - float(dot) * inverseNorm(x, d) * inverseNorm(y, d);
}

#if defined(__x86_64__)
float distanceAVX2(const void *a, const void *b, const void *parameter) {
    size_t d = *static_cast<const size_t *>(parameter);
    auto x = static_cast<const char *>(a), y = static_cast<const char *>(b);
    int32_t dot = dotAVX2(reinterpret_cast<const int8_t *>(x), reinterpret_cast<const int8_t *>(y), d);
    return 1.0f - float(dot) * inverseNorm(x, d) * inverseNorm(y, d);
}
#endif

/// int8 vectors with their inverse norm, compared by cosine distance.
class Int8CosineSpace : public hnswlib::SpaceInterface<float> {
public:
    explicit Int8CosineSpace(size_t dimensions) : dimensions(dimensions) {}
    size_t get_data_size() override { return dimensions + sizeof(float); }
    hnswlib::DISTFUNC<float> get_dist_func() override {
#if defined(__x86_64__)
        if (__builtin_cpu_supports("avx2")) return distanceAVX2;
#endif
        return distanceScalar;
    }
    void *get_dist_func_param() override { return &dimensions; }

private:
    size_t dimensions;
};

/// A vector as an element: the int8 values, then the float inverse of their norm (0 for a zero vector).
void encode(const int8_t *vector, size_t dimensions, char *element) {
    memcpy(element, vector, dimensions);
    int64_t squares = 0;
    for (size_t i = 0; i < dimensions; i++) squares += int64_t(vector[i]) * int64_t(vector[i]);
    float inverse = squares > 0 ? float(1.0 / std::sqrt(double(squares))) : 0.0f;
    memcpy(element + dimensions, &inverse, sizeof(float));
}

constexpr char fileMagic[8] = {'C', 'H', 'N', 'S', 'W', 'v', '0', '1'};

/// FNV-1a over the stream's 64-bit words, then its tail bytes: enough to tell a damaged file from
/// a whole one. The same whatever pieces the stream is added in.
struct Checksum {
    uint64_t value = 0xcbf29ce484222325ULL;
    unsigned char pending[8];
    size_t held = 0;

    void mix(const unsigned char *word) {
        uint64_t w;
        memcpy(&w, word, 8);
        value = (value ^ w) * 0x100000001b3ULL;
    }
    void add(const void *data, size_t size) {
        auto bytes = static_cast<const unsigned char *>(data);
        size_t i = 0;
        if (held > 0) {
            while (held < 8 && i < size) pending[held++] = bytes[i++];
            if (held < 8) return;
            mix(pending);
            held = 0;
        }
        for (; i + 8 <= size; i += 8) mix(bytes + i);
        for (; i < size; i++) pending[held++] = bytes[i];
    }
    uint64_t finish() {
        uint64_t result = value;
        for (size_t j = 0; j < held; j++) result = (result ^ pending[j]) * 0x100000001b3ULL;
        return result;
    }
};

struct FileHeader {
    char magic[8];
    uint32_t dimensions;
    uint32_t m;
    uint64_t efConstruction;
    uint64_t elements;
    uint64_t sizePerElement;
    uint64_t linksPerLevel;
    int32_t maxLevel;
    uint32_t enterPoint;
    uint64_t removed;
};
static_assert(sizeof(FileHeader) == 64, "the file header is 64 bytes (Tests/CarmaVectorsTests rely on it)");

}  // namespace

struct chnsw_index {
    std::unique_ptr<Int8CosineSpace> space;
    std::unique_ptr<Graph> graph;
    uint32_t dimensions;
    uint32_t m;
};

namespace {

chnsw_index *makeIndex(uint32_t dimensions, uint64_t capacity, uint32_t m, uint32_t efConstruction, uint64_t seed) {
    auto index = new chnsw_index();
    index->dimensions = dimensions;
    index->m = m;
    index->space = std::make_unique<Int8CosineSpace>(dimensions);
    index->graph = std::make_unique<Graph>(index->space.get(), std::max<uint64_t>(capacity, 1), m, efConstruction, seed);
    return index;
}

inline bool isRemoved(const Graph &graph, tableint id) {
    return graph.isMarkedDeleted(id);
}

}  // namespace

extern "C" {

chnsw_index *chnsw_create(uint32_t dimensions, uint64_t capacity, uint32_t m, uint32_t ef_construction, uint64_t seed,
                          char *error, size_t error_size) {
    if (dimensions == 0 || m < 2 || m > 256) {
        setError(error, error_size, "dimensions must be positive and m between 2 and 256");
        return nullptr;
    }
    try {
        return makeIndex(dimensions, capacity, m, ef_construction, seed);
    } catch (const std::exception &failure) {
        setError(error, error_size, failure.what());
        return nullptr;
    }
}

void chnsw_free(chnsw_index *index) { delete index; }

int chnsw_add(chnsw_index *index, uint64_t label, const int8_t *vector, char *error, size_t error_size) {
    Graph &graph = *index->graph;
    std::vector<char> element(index->dimensions + sizeof(float));
    encode(vector, index->dimensions, element.data());
    {
        std::unique_lock<std::mutex> lock(graph.cur_element_count_guard_);
        if (graph.label_lookup_.find(label) == graph.label_lookup_.end() && graph.cur_element_count >= graph.max_elements_) {
            return -1;
        }
    }
    try {
        graph.addPoint(element.data(), label);
        return 0;
    } catch (const std::exception &failure) {
        setError(error, error_size, failure.what());
        return -2;
    }
}

int chnsw_remove(chnsw_index *index, uint64_t label) {
    Graph &graph = *index->graph;
    auto found = graph.label_lookup_.find(label);
    if (found == graph.label_lookup_.end() || isRemoved(graph, found->second)) return 0;
    graph.markDeletedInternal(found->second);
    return 1;
}

int chnsw_get(const chnsw_index *index, uint64_t label, int8_t *out) {
    const Graph &graph = *index->graph;
    auto found = graph.label_lookup_.find(label);
    if (found == graph.label_lookup_.end() || isRemoved(graph, found->second)) return 0;
    memcpy(out, graph.getDataByInternalId(found->second), index->dimensions);
    return 1;
}

uint64_t chnsw_retain(chnsw_index *index, chnsw_filter keep, void *context) {
    Graph &graph = *index->graph;
    uint64_t removed = 0;
    for (tableint id = 0; id < graph.cur_element_count; id++) {
        if (isRemoved(graph, id)) continue;
        if (!keep(graph.getExternalLabel(id), context)) {
            graph.markDeletedInternal(id);
            removed++;
        }
    }
    return removed;
}

int chnsw_resize(chnsw_index *index, uint64_t capacity, char *error, size_t error_size) {
    try {
        if (capacity > index->graph->max_elements_) index->graph->resizeIndex(capacity);
        return 0;
    } catch (const std::exception &failure) {
        setError(error, error_size, failure.what());
        return -2;
    }
}

int chnsw_search(const chnsw_index *index, const int8_t *query, uint32_t k, uint32_t ef, chnsw_filter filter,
                 void *context, uint64_t budget, uint64_t *labels, float *distances, uint32_t *found,
                 uint64_t *computed) {
    const Graph &graph = *index->graph;
    *found = 0;
    if (computed) *computed = 0;
    if (graph.cur_element_count == 0 || k == 0) return 0;
    std::vector<char> element(index->dimensions + sizeof(float));
    encode(query, index->dimensions, element.data());
    const void *q = element.data();
    auto distance = graph.fstdistfunc_;
    const void *parameter = graph.dist_func_param_;
    uint64_t computations = 0;

    // Upper layers: greedy descent to the bottom layer's entry point (as searchKnn does).
    tableint current = graph.enterpoint_node_;
    float currentDistance = distance(q, graph.getDataByInternalId(current), parameter);
    computations++;
    for (int level = graph.maxlevel_; level > 0; level--) {
        bool changed = true;
        while (changed) {
            changed = false;
            auto list = graph.get_linklist(current, level);
            int size = graph.getListCount(list);
            auto neighbours = reinterpret_cast<tableint *>(list + 1);
            for (int i = 0; i < size; i++) {
                float d = distance(q, graph.getDataByInternalId(neighbours[i]), parameter);
                computations++;
                if (d < currentDistance) {
                    currentDistance = d;
                    current = neighbours[i];
                    changed = true;
                }
            }
        }
    }

    // Bottom layer: beam search; only live, accepted elements enter the answer.
    size_t width = std::max<size_t>(ef, k);
    using Pair = std::pair<float, tableint>;
    std::priority_queue<Pair> answer;  // farthest on top
    std::priority_queue<Pair, std::vector<Pair>, std::greater<Pair>> frontier;  // nearest on top
    hnswlib::VisitedList *visitedList = graph.visited_list_pool_->getFreeVisitedList();
    hnswlib::vl_type *visited = visitedList->mass;
    hnswlib::vl_type tag = visitedList->curV;
    auto accepted = [&](tableint id) {
        return !isRemoved(graph, id) && (filter == nullptr || filter(graph.getExternalLabel(id), context));
    };
    frontier.emplace(currentDistance, current);
    if (accepted(current)) answer.emplace(currentDistance, current);
    visited[current] = tag;
    bool exhausted = false;
    while (!frontier.empty()) {
        Pair nearest = frontier.top();
        if (answer.size() >= width && nearest.first > answer.top().first) break;
        frontier.pop();
        auto list = graph.get_linklist0(nearest.second);
        int size = graph.getListCount(list);
        auto neighbours = reinterpret_cast<tableint *>(list + 1);
        for (int i = 0; i < size; i++) {
            tableint candidate = neighbours[i];
#if defined(__x86_64__)
            if (i + 1 < size) _mm_prefetch(graph.getDataByInternalId(neighbours[i + 1]), _MM_HINT_T0);
#endif
            if (visited[candidate] == tag) continue;
            visited[candidate] = tag;
            float d = distance(q, graph.getDataByInternalId(candidate), parameter);
            computations++;
            if (answer.size() < width || d < answer.top().first) {
                frontier.emplace(d, candidate);
                if (accepted(candidate)) {
                    answer.emplace(d, candidate);
                    if (answer.size() > width) answer.pop();
                }
            }
        }
        if (budget > 0 && computations >= budget) {
            exhausted = !frontier.empty();
            break;
        }
    }
    graph.visited_list_pool_->releaseVisitedList(visitedList);
    while (answer.size() > k) answer.pop();
    uint32_t n = uint32_t(answer.size());
    for (uint32_t i = n; i > 0; i--) {
        labels[i - 1] = graph.getExternalLabel(answer.top().second);
        distances[i - 1] = answer.top().first;
        answer.pop();
    }
    *found = n;
    if (computed) *computed = computations;
    return exhausted ? 1 : 0;
}

uint64_t chnsw_elements(const chnsw_index *index) { return index->graph->cur_element_count; }
uint64_t chnsw_removed(const chnsw_index *index) { return index->graph->num_deleted_; }
uint64_t chnsw_capacity(const chnsw_index *index) { return index->graph->max_elements_; }
uint32_t chnsw_dimensions(const chnsw_index *index) { return index->dimensions; }

void chnsw_dots(const int8_t *query, const int8_t *rows, uint64_t count, uint32_t width, int32_t *out) {
#if defined(__x86_64__)
    if (__builtin_cpu_supports("avx2")) {
        for (uint64_t row = 0; row < count; row++) out[row] = dotAVX2(query, rows + row * width, width);
        return;
    }
#endif
    for (uint64_t row = 0; row < count; row++) out[row] = dotScalar(query, rows + row * width, width);
}

uint64_t chnsw_memory_bytes(const chnsw_index *index) {
    const Graph &graph = *index->graph;
    uint64_t bytes = uint64_t(graph.max_elements_) * graph.size_data_per_element_;  // bottom layer
    bytes += uint64_t(graph.max_elements_) * (sizeof(void *) + sizeof(int) + sizeof(std::mutex));
    bytes += uint64_t(hnswlib::HierarchicalNSW<float>::max_update_element_locks) * sizeof(std::mutex);
    for (tableint id = 0; id < graph.cur_element_count; id++) {
        if (graph.element_levels_[id] > 0) bytes += graph.size_links_per_element_ * graph.element_levels_[id] + 1;
    }
    // The label table: a node of (label, id) and a bucket pointer per label, roughly.
    bytes += uint64_t(graph.label_lookup_.size()) * 32 + uint64_t(graph.label_lookup_.bucket_count()) * sizeof(void *);
    bytes += uint64_t(graph.max_elements_) * sizeof(hnswlib::vl_type);  // one visited list
    return bytes;
}

int chnsw_save(const chnsw_index *index, const char *path, char *error, size_t error_size) {
    const Graph &graph = *index->graph;
    // A name of its own, so that two saves of the same path (a build and a shutdown) never share one.
    static std::atomic<uint64_t> saves{0};
    std::string temporary = std::string(path) + ".tmp." + std::to_string(getpid()) + "." + std::to_string(saves.fetch_add(1));
    FILE *file = fopen(temporary.c_str(), "wb");
    if (file == nullptr) {
        setError(error, error_size, "cannot create " + temporary + ": " + strerror(errno));
        return -2;
    }
    Checksum checksum;
    bool ok = true;
    auto put = [&](const void *data, size_t size) {
        if (!ok || size == 0) return;
        checksum.add(data, size);
        ok = fwrite(data, 1, size, file) == size;
    };
    FileHeader header{};
    memcpy(header.magic, fileMagic, 8);
    header.dimensions = index->dimensions;
    header.m = index->m;
    header.efConstruction = graph.ef_construction_;
    header.elements = graph.cur_element_count;
    header.sizePerElement = graph.size_data_per_element_;
    header.linksPerLevel = graph.size_links_per_element_;
    header.maxLevel = graph.maxlevel_;
    header.enterPoint = graph.enterpoint_node_;
    header.removed = graph.num_deleted_;
    put(&header, sizeof header);
    put(graph.data_level0_memory_, graph.cur_element_count * graph.size_data_per_element_);
    for (tableint id = 0; id < graph.cur_element_count; id++) {
        int32_t level = graph.element_levels_[id];
        put(&level, sizeof level);
        if (level > 0) put(graph.linkLists_[id], graph.size_links_per_element_ * level);
    }
    uint64_t sum = checksum.finish();
    if (ok) ok = fwrite(&sum, 1, sizeof sum, file) == sizeof sum;
    if (ok) ok = fflush(file) == 0 && fsync(fileno(file)) == 0;
    if (fclose(file) != 0) ok = false;
    if (!ok || rename(temporary.c_str(), path) != 0) {
        setError(error, error_size, "cannot write " + std::string(path) + ": " + strerror(errno));
        unlink(temporary.c_str());
        return -2;
    }
    return 0;
}

chnsw_index *chnsw_load(const char *path, uint32_t dimensions, uint64_t extra_capacity, char *error, size_t error_size) {
    FILE *file = fopen(path, "rb");
    if (file == nullptr) {
        setError(error, error_size, std::string("cannot open ") + path + ": " + strerror(errno));
        return nullptr;
    }
    std::unique_ptr<FILE, int (*)(FILE *)> closer(file, fclose);
    fseeko(file, 0, SEEK_END);
    uint64_t fileSize = uint64_t(ftello(file));
    fseeko(file, 0, SEEK_SET);
    Checksum checksum;
    auto take = [&](void *data, size_t size) {
        if (size == 0) return true;
        if (fread(data, 1, size, file) != size) return false;
        checksum.add(data, size);
        return true;
    };
    auto fail = [&](const std::string &why) -> chnsw_index * {
        setError(error, error_size, std::string(path) + ": " + why);
        return nullptr;
    };
    FileHeader header{};
    if (!take(&header, sizeof header) || memcmp(header.magic, fileMagic, 8) != 0) return fail("not a vector index file");
    if (header.dimensions != dimensions) return fail("vectors of another size");
    if (header.m < 2 || header.m > 256) return fail("implausible M");
    // The layout the graph will have for this M and these dimensions; the file's must be the same.
    size_t linksLevel0 = header.m * 2 * sizeof(tableint) + sizeof(hnswlib::linklistsizeint);
    size_t perElement = linksLevel0 + dimensions + sizeof(float) + sizeof(hnswlib::labeltype);
    size_t linksPerLevel = header.m * sizeof(tableint) + sizeof(hnswlib::linklistsizeint);
    if (header.sizePerElement != perElement || header.linksPerLevel != linksPerLevel) return fail("layout does not match");
    // Each element takes at least its bottom-layer bytes and its level: the file's size bounds the count.
    if (header.elements > (fileSize - sizeof header) / (perElement + sizeof(int32_t))) return fail("truncated");
    if (header.elements > 0xffffffffULL) return fail("too many elements");
    if (header.elements > 0 && (header.maxLevel < 0 || header.maxLevel > 64 || header.enterPoint >= header.elements)) {
        return fail("bad entry point");
    }
    chnsw_index *made = nullptr;
    try {
        made = makeIndex(dimensions, header.elements + extra_capacity, header.m, uint32_t(std::min<uint64_t>(header.efConstruction, 1u << 20)), 100);
    } catch (const std::exception &failure) {
        return fail(failure.what());
    }
    std::unique_ptr<chnsw_index> index(made);
    Graph &graph = *index->graph;
    size_t n = size_t(header.elements);
    if (!take(graph.data_level0_memory_, n * perElement)) return fail("truncated");
    // Levels and upper-layer links. Until cur_element_count is set, the destructor frees nothing of
    // linkLists_, so what is allocated here is counted as it goes.
    for (size_t id = 0; id < n; id++) graph.linkLists_[id] = nullptr;
    auto freeLinks = [&](size_t upTo) {
        for (size_t id = 0; id < upTo; id++) free(graph.linkLists_[id]);
    };
    for (size_t id = 0; id < n; id++) {
        int32_t level;
        if (!take(&level, sizeof level) || level < 0 || level > header.maxLevel) {
            freeLinks(id);
            return fail("bad level");
        }
        graph.element_levels_[id] = level;
        if (level > 0) {
            size_t bytes = linksPerLevel * size_t(level);
            graph.linkLists_[id] = static_cast<char *>(malloc(bytes + 1));
            if (graph.linkLists_[id] == nullptr || !take(graph.linkLists_[id], bytes)) {
                freeLinks(id + 1);
                return fail("truncated");
            }
        }
    }
    uint64_t stored = 0;
    uint64_t computedSum = checksum.finish();
    bool trailing = fread(&stored, 1, sizeof stored, file) == sizeof stored && fgetc(file) == EOF;
    graph.cur_element_count = n;  // from here the destructor frees the link lists
    if (!trailing || stored != computedSum) return fail("checksum does not match");
    if (n > 0 && graph.element_levels_[header.enterPoint] != header.maxLevel) return fail("bad entry point");

    // Every link: a count within the layer's limit and neighbours that exist on that layer.
    uint64_t removed = 0;
    for (tableint id = 0; id < n; id++) {
        auto list = graph.get_linklist0(id);
        size_t size = graph.getListCount(list);
        if (size > graph.maxM0_) return fail("bad link count");
        auto neighbours = reinterpret_cast<tableint *>(list + 1);
        for (size_t i = 0; i < size; i++) {
            if (neighbours[i] >= n) return fail("bad link");
        }
        for (int level = 1; level <= graph.element_levels_[id]; level++) {
            auto upper = graph.get_linklist(id, level);
            size_t count = graph.getListCount(upper);
            if (count > graph.maxM_) return fail("bad link count");
            auto links = reinterpret_cast<tableint *>(upper + 1);
            for (size_t i = 0; i < count; i++) {
                if (links[i] >= n || graph.element_levels_[links[i]] < level) return fail("bad link");
            }
        }
        if (isRemoved(graph, id)) removed++;
        if (!graph.label_lookup_.emplace(graph.getExternalLabel(id), id).second) return fail("a label twice");
    }
    graph.num_deleted_ = removed;
    graph.maxlevel_ = n > 0 ? header.maxLevel : -1;
    graph.enterpoint_node_ = n > 0 ? header.enterPoint : tableint(-1);
    // The norms are recomputed rather than trusted: a wrong one would skew every distance to it.
    for (tableint id = 0; id < n; id++) {
        char *element = graph.getDataByInternalId(id);
        encode(reinterpret_cast<const int8_t *>(element), dimensions, element);
    }
    return index.release();
}

}  // extern "C"
