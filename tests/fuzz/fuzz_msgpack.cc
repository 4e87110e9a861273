// sessions::internal::from_msgpack on arbitrary bytes (sess_set_msgpack, and every
// stored value and flash list of a record).
//
// An accepted document is a value of the model (UTF-8 strings and keys, at
// most kMaxDepth containers) that survives to_msgpack -> from_msgpack
// unchanged, with a stable encoding; when JSON can carry it exactly (no
// bytes, finite doubles) it survives to_json -> from_json too. The allocation
// limit (-malloc_limit_mb) makes a header that asks for more memory than the
// input could fill a finding.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_common.h"

using fuzz::describe;
using fuzz::same;
using sessions::internal::Value;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  Value v;
  if (!sessions::internal::from_msgpack(bytes, &v)) return 0;
  FUZZ_CHECK(size > 0, "from_msgpack accepted no bytes at all");
  FUZZ_CHECK(fuzz::all_utf8(v), "from_msgpack gave a string that is not UTF-8: " + describe(v));
  FUZZ_CHECK(fuzz::depth(v) <= sessions::internal::kMaxDepth,
             "from_msgpack accepted " + std::to_string(fuzz::depth(v)) + " nested containers");

  const std::string packed = sessions::internal::to_msgpack(v);
  Value again;
  FUZZ_CHECK(sessions::internal::from_msgpack(packed, &again),
             "from_msgpack refuses what to_msgpack wrote: " + fuzz::escape(packed));
  FUZZ_CHECK(same(v, again), "to_msgpack/from_msgpack changed the value " + describe(v) +
                                 " into " + describe(again));
  FUZZ_CHECK(sessions::internal::to_msgpack(again) == packed, "to_msgpack is not stable for " + describe(v));

  // sess_get_json never fails: to_json must not throw, whatever the value.
  const std::string json = sessions::internal::to_json(v);
  if (fuzz::json_exact(v)) {
    Value from_json;
    try {
      from_json = sessions::internal::from_json(json);
    } catch (const sessions::internal::Error& e) {
      FUZZ_CHECK(false, "from_json refuses to_json of a MessagePack value (" + std::string(e.what()) +
                            "): " + fuzz::escape(json));
    }
    FUZZ_CHECK(same(v, from_json), "JSON changed a MessagePack value: " + fuzz::escape(json) +
                                       " came back as " + describe(from_json));
  }
  return 0;
}
