// Compressed records: a record frame (record.h) over the threshold may be
// stored, or sealed into a cookie, as
//
//   0x02 | one zstd frame (level 1) whose content, declared in its header,
//          is a version-1 record frame
//
// zstd because it is the fastest of Debian's general-purpose compressors at
// a better ratio than zlib on session records (docs/stores.md#compression
// has the figures). Inflating is bounded: the declared size must be within
// max_data_bytes before anything is allocated, and must be what comes out.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace sessions::internal {

constexpr unsigned char kCompressedRecord = 0x02;

enum class Compression {
  off,
  automatic,  // at or over the threshold, when it makes the record smaller
  on,         // every record, even when it grows
};

// Replaces *out with the compressed envelope of `frame`.
void compress_record(std::string_view frame, std::string* out);

enum class Inflated { plain, ok, malformed };
// `stored` starting with kCompressedRecord is inflated into *out (replaced):
// ok, or malformed when it is not one zstd frame declaring a size from 1 to
// `limit` bytes that inflates to exactly that. Anything else is plain and
// *out is untouched.
Inflated inflate_record(std::string_view stored, size_t limit, std::string* out);

}  // namespace sessions::internal
