// sessions::internal::decode_record on arbitrary bytes: the record frame (record.h)
// that server-side stores hold and the cookie store seals.
//
// Part 1, the frame (after its identity header, inflated first when compressed). A record that decodes is re-encoded byte for byte as it
// came (values are kept packed and written back verbatim); every key and
// value reads (or fails with the documented Errc::internal), and re-encoding
// after reading the flashes, and again after setting and erasing a value,
// decodes to the same times, values and flashes.
//
// Part 2, a session on it. The same bytes are what a server-side store hands
// back (memory:, with idle and absolute timeouts so that the record's times
// feed the expiry arithmetic) and what the cookie store finds sealed in a
// cookie: the request cycle must give a valid, expired or malformed session,
// never another status or error, and a Set-Cookie line without control
// characters.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "base64url.h"
#include "compression.h"
#include "fuzz_common.h"
#include "request.h"
#include "session.h"
#include "store.h"

using fuzz::escape;
using fuzz::RecordView;
using fuzz::read_record;
using fuzz::same;
using sessions::internal::Errc;
using sessions::internal::SessionRecord;
using sessions::internal::Value;

namespace {

void check_frame(std::string_view data) {
  SessionRecord record;
  if (!sessions::internal::decode_record(data, &record)) return;

  // An identity header (principal, CSRF secret, metadata) comes back as it
  // was; the record after it is checked as any other.
  std::string header;
  sessions::internal::encode_identity(record.identity, &header);
  FUZZ_CHECK(data.substr(0, header.size()) == header,
             "re-encoding the identity header changed its bytes: " + escape(data));
  FUZZ_CHECK(record.identity.empty() || !sessions::internal::record_principal(data).compare(
                                            record.identity.principal),
             "record_principal disagrees with the decoded principal");
  data.remove_prefix(header.size());

  // A compressed record (0x02 | zstd frame) decodes to the frame inside it,
  // which is what re-encoding gives back.
  std::string inflated;
  const auto inflate = sessions::internal::inflate_record(
      data, sessions::internal::kDefaultMaxInflated, &inflated);
  FUZZ_CHECK(inflate != sessions::internal::Inflated::malformed,
             "a record decoded although its compression envelope is malformed");
  const std::string_view frame = inflate == sessions::internal::Inflated::ok ? inflated : data;
  const RecordView first = read_record(record, /*with_flashes=*/false);
  std::string encoded;
  sessions::internal::encode_record(record, &encoded);
  FUZZ_CHECK(encoded == frame, "re-encoding an untouched record changed its bytes: " +
                                   escape(frame) + " became " + escape(encoded));

  // Reading the flashes decodes them; the record is then written from them.
  const RecordView with_flashes = read_record(record, /*with_flashes=*/true);
  FUZZ_CHECK(same(first, with_flashes, /*compare_flashes=*/false),
             "reading the flashes changed the values");
  sessions::internal::encode_record(record, &encoded);
  SessionRecord again;
  FUZZ_CHECK(sessions::internal::decode_record(encoded, &again),
             "a re-encoded record does not decode: " + escape(encoded));
  const RecordView second = read_record(again, /*with_flashes=*/true);
  if (with_flashes.flashes) {
    FUZZ_CHECK(same(with_flashes, second, /*compare_flashes=*/true),
               "a re-encoded record decodes to other values: " + escape(encoded));
  } else {
    // Flashes that do not unpack are written back as they were.
    FUZZ_CHECK(same(with_flashes, second, /*compare_flashes=*/false) && !second.flashes,
               "a re-encoded record decodes to other values: " + escape(encoded));
  }

  // A change: one value set (replacing the first key, if any) and the last
  // erased; the rest must come back as they were.
  const std::string replaced = first.values.empty() ? "fuzz" : first.values.front().first;
  const Value marker(sessions::internal::Array{Value(int64_t{-1}), Value("set"), Value(sessions::internal::Bytes{"\x00\xff"})});
  again.values.set(replaced, marker);
  std::string erased;
  if (first.values.size() > 1) {
    erased = first.values.back().first;
    FUZZ_CHECK(again.values.erase(erased), "erase of a listed key found nothing: " + escape(erased));
  }
  sessions::internal::encode_record(again, &encoded);
  SessionRecord changed;
  FUZZ_CHECK(sessions::internal::decode_record(encoded, &changed),
             "a changed record does not decode: " + escape(encoded));
  const RecordView third = read_record(changed, /*with_flashes=*/true);
  FUZZ_CHECK(third.created == first.created && third.last_seen == first.last_seen &&
                 third.max_age == first.max_age,
             "a changed record lost its times");
  if (!second.keys_ok) return;  // keys() fails, so the list cannot be compared
  FUZZ_CHECK(third.keys_ok, "keys() fails after a change");
  size_t expected = second.values.size() + (first.values.empty() ? 1 : 0) - (erased.empty() ? 0 : 1);
  FUZZ_CHECK(third.values.size() == expected, "a changed record has " +
                                                  std::to_string(third.values.size()) +
                                                  " values, not " + std::to_string(expected));
  for (const auto& [key, value] : third.values) {
    FUZZ_CHECK(key != erased, "an erased key came back: " + escape(key));
    if (key == replaced) {
      FUZZ_CHECK(value && same(*value, marker), "a set value did not come back: " + escape(key));
      continue;
    }
    bool found = false;
    for (const auto& [old_key, old_value] : second.values) {
      if (old_key != key) continue;
      found = true;
      FUZZ_CHECK(old_value.has_value() == value.has_value() && (!value || same(*value, *old_value)),
                 "an untouched value changed: " + escape(key));
    }
    FUZZ_CHECK(found, "a key appeared from nowhere: " + escape(key));
  }
  if (second.flashes)
    FUZZ_CHECK(third.flashes && same(*second.flashes, *third.flashes), "the flashes changed");
}

// ---- Part 2 -------------------------------------------------------------------

struct Stores {
  std::shared_ptr<sessions::internal::Store> memory, cookie;
  std::string raw_id, id_key, id_cookie;
};

const Stores& stores() {
  static const Stores* s = [] {
    auto* out = new Stores;
    sessions::internal::Config config;
    config.secrets = {fuzz::kSecret};
    config.set("idle_timeout", "1h");
    config.set("absolute_timeout", "30d");
    out->memory = sessions::internal::Store::open("memory:", config);
    out->cookie = sessions::internal::Store::open("cookie:", config);
    for (auto* store : {&out->memory, &out->cookie}) (*store)->set_clock([] { return fuzz::kNow; });
    // One fixed session ID: the record is saved under it, and its sealed
    // cookie (an authentic ID cookie) is what the request presents.
    out->raw_id.assign(sessions::internal::Session::kIdSize, '\x5a');
    sessions::internal::base64url_encode(out->raw_id, &out->id_key);
    out->memory->codec().encode("s", out->raw_id, fuzz::kNow, 0, &out->id_cookie);
    return out;
  }();
  return *s;
}

// What a handler does with the session; any Error but internal (a stored
// value that does not unpack) is a finding.
void use_session(sessions::internal::Session& s) {
  fuzz::internal_error_is_false([&] {
    for (const auto& key : s.keys()) {
      const Value* v = s.get(key);
      FUZZ_CHECK(v != nullptr, "a listed key is not found: " + escape(key));
    }
  });
  fuzz::internal_error_is_false([&] { s.take_flashes("_flash"); });
  s.touch();
  s.set("fuzz", Value(int64_t{1}));
}

void check_line(const std::string& line, const char* name) {
  FUZZ_CHECK(fuzz::has_prefix(line, std::string(name) + "="), "Set-Cookie for another name: " + escape(line));
  for (unsigned char c : line)
    FUZZ_CHECK(c >= 0x20 && c < 0x7f, "Set-Cookie holds a control or non-ASCII byte: " + escape(line));
}

void check_session(const std::shared_ptr<sessions::internal::Store>& store, const char* name,
                   const std::string& cookie_value, bool cookie_store) {
  sessions::internal::Request request(std::string(name) + "=" + cookie_value);
  sessions::internal::Session& s = request.session(store, name);
  const int status = s.status();
  FUZZ_CHECK(status == SESS_STATUS_VALID || status == SESS_STATUS_EXPIRED ||
                 status == SESS_STATUS_MALFORMED,
             "a stored record gave status " + std::to_string(status));
  if (status != SESS_STATUS_VALID) FUZZ_CHECK(s.count() == 0, "an invalid session holds values");
  use_session(s);
  std::string message;
  const Errc rc = request.finish(&message);
  // Only the cookie store has a size limit that a record can reach here.
  FUZZ_CHECK(rc == Errc::ok || (cookie_store && rc == Errc::cookie_too_large),
             "finish failed (" + std::to_string(int(rc)) + "): " + message);
  for (size_t i = 0; i < request.set_cookie_count(); ++i) check_line(request.set_cookie(i), name);
  // A new session (the record did not load) was saved under a new ID: drop
  // it, so the store does not grow with the run.
  if (!cookie_store && !s.id_text().empty()) store->backend()->erase(s.id_text());
}

void check_sessions(std::string_view data) {
  const Stores& s = stores();
  s.memory->backend()->save(s.id_key, data, fuzz::kNow, 3600);
  check_session(s.memory, "s", s.id_cookie, false);
  s.memory->backend()->erase(s.id_key);

  std::string sealed;
  s.cookie->codec().encode("c", data, fuzz::kNow, 0, &sealed);
  check_session(s.cookie, "c", sealed, true);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  check_frame(bytes);
  check_sessions(bytes);
  return 0;
}
