#include "compression.h"

#include <zstd.h>

#include "error.h"

namespace sessions::internal {
namespace {

constexpr int kLevel = 1;  // the speed end: sessions are compressed on the request path

// One context each per thread, reused: creating one costs more than
// compressing a session.
struct Contexts {
  ZSTD_CCtx* compress = ZSTD_createCCtx();
  ZSTD_DCtx* decompress = ZSTD_createDCtx();
  ~Contexts() {
    ZSTD_freeCCtx(compress);
    ZSTD_freeDCtx(decompress);
  }
};

Contexts& contexts() {
  thread_local Contexts c;
  if (!c.compress || !c.decompress) fail(Errc::no_memory, "zstd context allocation failed");
  return c;
}

}  // namespace

void compress_record(std::string_view frame, std::string* out) {
  out->resize(1 + ZSTD_compressBound(frame.size()));
  (*out)[0] = char(kCompressedRecord);
  const size_t n = ZSTD_compressCCtx(contexts().compress, out->data() + 1, out->size() - 1,
                                     frame.data(), frame.size(), kLevel);
  if (ZSTD_isError(n)) fail(Errc::internal, std::string("zstd: ") + ZSTD_getErrorName(n));
  out->resize(1 + n);
}

Inflated inflate_record(std::string_view stored, size_t limit, std::string* out) {
  if (stored.empty() || static_cast<unsigned char>(stored[0]) != kCompressedRecord)
    return Inflated::plain;
  const std::string_view frame = stored.substr(1);
  const unsigned long long declared = ZSTD_getFrameContentSize(frame.data(), frame.size());
  if (declared == ZSTD_CONTENTSIZE_UNKNOWN || declared == ZSTD_CONTENTSIZE_ERROR ||
      declared == 0 || declared > limit)
    return Inflated::malformed;
  // One frame and nothing after it.
  if (ZSTD_findFrameCompressedSize(frame.data(), frame.size()) != frame.size())
    return Inflated::malformed;
  out->resize(size_t(declared));
  const size_t n = ZSTD_decompressDCtx(contexts().decompress, out->data(), out->size(),
                                       frame.data(), frame.size());
  if (ZSTD_isError(n) || n != declared) return Inflated::malformed;
  return Inflated::ok;
}

}  // namespace sessions::internal
