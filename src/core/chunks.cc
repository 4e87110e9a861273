#include "chunks.h"

#include <charconv>

#include "sessions.h"

namespace sessions::internal {
namespace {

// "NAME" for piece 0, "NAME.i" after.
void append_chunk_name(std::string_view name, size_t index, std::string* out) {
  out->append(name);
  if (index > 0) out->append(".").append(std::to_string(index));
}

}  // namespace

size_t chunk_count(std::string_view name, size_t sealed_size, size_t attributes_size,
                   size_t max_chunks) {
  const size_t single = name.size() + 1 + sealed_size + attributes_size;
  if (single <= SESS_MAX_SET_COOKIE) return 1;
  // Every chunk line spends at most 3 bytes more than an unchunked one: the
  // "<n>." prefix of the first, the ".<i>" suffix of the name of the others.
  const size_t overhead = name.size() + 1 + attributes_size + 3;
  if (overhead >= SESS_MAX_SET_COOKIE) return 0;
  const size_t room = SESS_MAX_SET_COOKIE - overhead;
  const size_t n = (sealed_size + room - 1) / room;
  return n <= max_chunks ? n : 0;
}

size_t emit_chunks(std::string_view name, std::string_view sealed, std::string_view attributes,
                   size_t max_chunks, SetCookieLines* lines) {
  const size_t n = chunk_count(name, sealed.size(), attributes.size(), max_chunks);
  if (n == 0) return 0;
  const size_t piece = (sealed.size() + n - 1) / n;  // even pieces, the last one shorter
  for (size_t i = 0; i < n; ++i) {
    std::string& line = lines->add();
    append_chunk_name(name, i, &line);
    line.push_back('=');
    if (n > 1 && i == 0) line.append(std::to_string(n)).push_back('.');
    line.append(sealed.substr(i * piece, piece));
    line.append(attributes);
  }
  return n;
}

bool parse_chunk_header(std::string_view value, size_t* count, std::string_view* first_piece) {
  const size_t dot = value.substr(0, 3).find('.');
  if (dot == 0 || dot > 2 || dot == std::string_view::npos) return false;
  size_t n = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + dot, n);
  if (ec != std::errc() || end != value.data() + dot || value[0] == '0') return false;
  if (n < 2 || n > kMaxChunksLimit) return false;
  *count = n;
  *first_piece = value.substr(dot + 1);
  return true;
}

bool join_chunks(const CookieJar& jar, std::string_view name, size_t candidate, size_t count,
                 std::string_view first_piece, std::string* out) {
  out->assign(first_piece);
  std::string chunk;
  for (size_t i = 1; i < count; ++i) {
    chunk.clear();
    append_chunk_name(name, i, &chunk);
    CookieJar::Candidates values = jar.find(chunk);
    if (values.count == 0) return false;
    std::string_view piece = values.values[candidate < values.count ? candidate : 0];
    if (piece.empty()) return false;
    out->append(piece);
  }
  return !first_piece.empty();
}

}  // namespace sessions::internal
