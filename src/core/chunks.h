// A sealed cookie value too long for one cookie, split across several:
//
//   NAME=<n>.<piece 0>   NAME.1=<piece 1>   ...   NAME.<n-1>=<piece n-1>
//
// The pieces joined are one sealed value, authenticated as a whole by the
// codec: a piece swapped, dropped, repeated, reordered or taken from another
// session fails the tag (tampered) or the base64url decoder (malformed), never
// a partial session. The count is not authenticated and need not be: a wrong
// one only joins the wrong pieces. An unchunked value has no prefix, so
// cookies written before chunking existed still open ('.' is not base64url).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "cookie.h"

namespace sessions::internal {

// The most chunks a session may use (max_chunks); 16 full chunks are as much
// as the Cookie header the library reads (SESS_MAX_COOKIE_HEADER, 64 KiB).
constexpr size_t kMaxChunksLimit = 16;
// The default: 3 chunks keep the Cookie header under about 12 KiB, within
// the 16 KiB that Node, IIS and load balancers accept with room for other
// cookies. See docs/stores.md#big-sessions for the arithmetic.
constexpr size_t kDefaultMaxChunks = 3;

// Bit i set when the request carried a cookie NAME.i (CookieJar::find).
using ChunkMask = uint32_t;

// Appends to *lines the Set-Cookie values that carry `sealed` under `name`,
// each with `attributes` ("; Path=/; ...") and within SESS_MAX_SET_COOKIE
// bytes, the NAME cookie first. Returns the number of chunks, or 0 (nothing
// appended) when more than max_chunks would be needed.
size_t emit_chunks(std::string_view name, std::string_view sealed, std::string_view attributes,
                   size_t max_chunks, SetCookieLines* lines);

// The number of pieces needed, 0 when over max_chunks. Exposed for tests.
size_t chunk_count(std::string_view name, size_t sealed_size, size_t attributes_size,
                   size_t max_chunks);

// For a value read under NAME: true when it is a chunk header "<n>." with
// 2 <= n <= kMaxChunksLimit; *count and *first_piece are then set.
bool parse_chunk_header(std::string_view value, size_t* count, std::string_view* first_piece);

// Joins the pieces of a chunked value into *out (replaced). Uses the
// candidate-th value of each NAME.i when the browser sent several (one per
// path), else the first. False when a piece is missing or empty.
bool join_chunks(const CookieJar& jar, std::string_view name, size_t candidate, size_t count,
                 std::string_view first_piece, std::string* out);

}  // namespace sessions::internal
