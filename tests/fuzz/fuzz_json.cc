// sessions::internal::from_json on arbitrary text (sess_set_json, sess_add_flash_json).
//
// Bad input is Errc::bad_json and nothing else. Accepted input is a value of
// the model (UTF-8 strings and keys, at most kMaxDepth containers) that
// survives to_json -> from_json unchanged, whose JSON text is stable, and
// that MessagePack carries exactly (to_msgpack -> from_msgpack).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_common.h"

using fuzz::describe;
using fuzz::same;
using sessions::internal::Errc;
using sessions::internal::Value;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  Value v;
  try {
    v = sessions::internal::from_json(text);
  } catch (const sessions::internal::Error& e) {
    FUZZ_CHECK(e.code() == Errc::bad_json,
               std::string("from_json threw code ") + std::to_string(int(e.code())) + ": " + e.what());
    return 0;
  }
  FUZZ_CHECK(fuzz::all_utf8(v), "from_json gave a string that is not UTF-8: " + describe(v));
  FUZZ_CHECK(fuzz::depth(v) <= sessions::internal::kMaxDepth,
             "from_json accepted " + std::to_string(fuzz::depth(v)) + " nested containers");
  FUZZ_CHECK(fuzz::json_exact(v), "from_json gave a value JSON cannot carry: " + describe(v));

  const std::string json = sessions::internal::to_json(v);
  Value again;
  try {
    again = sessions::internal::from_json(json);
  } catch (const sessions::internal::Error& e) {
    FUZZ_CHECK(false, "to_json wrote text that from_json refuses (" + std::string(e.what()) +
                          "): " + fuzz::escape(json));
  }
  FUZZ_CHECK(same(v, again), "to_json/from_json changed the value: " + fuzz::escape(json) +
                                 " came back as " + describe(again));
  FUZZ_CHECK(sessions::internal::to_json(again) == json, "to_json is not stable: " + fuzz::escape(json));

  const std::string packed = sessions::internal::to_msgpack(v);
  Value unpacked;
  FUZZ_CHECK(sessions::internal::from_msgpack(packed, &unpacked),
             "from_msgpack refuses to_msgpack of a JSON value: " + fuzz::escape(json));
  FUZZ_CHECK(same(v, unpacked), "MessagePack changed a JSON value: " + fuzz::escape(json) +
                                    " came back as " + describe(unpacked));
  return 0;
}
