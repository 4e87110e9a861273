// An arbitrary Cookie: header through the whole C ABI request cycle
// (capi/sessions_c.cc is compiled in), on three stores opened once with the
// harnesses' secret: cookie: (aes-gcm), cookie:?codec=hmac-sha256 and memory:,
// under the cookie names gcm, hmac and mem.
//
// Every occurrence of "@MEM@" in the header is first replaced by the cookie
// value of a memory: session made for this input (values of every type, two
// flashes): a server-side session cannot be a seed, its ID lives only in the
// process. Seeds for the cookie stores carry sealed values (make_seeds).
//
// Invariants: the header is refused only when over SESS_MAX_COOKIE_HEADER;
// each session loads (hostile cookies give a status, never an error); a
// session that is not valid is new and empty; keys are listed in strictly
// increasing byte order and every value reads as JSON and MessagePack (and
// setting it back from that MessagePack gives the same bytes); flashes read
// once; setting a key and finishing succeeds and emits one Set-Cookie line
// per session, printable ASCII, for its name. Then the round trip: those
// Set-Cookie values, sent back, load valid sessions holding exactly the
// values the first request left, without the flashes it read.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "fuzz_common.h"
#include "sessions.h"

using fuzz::escape;

namespace {

struct Target {
  const char* name;
  const char* uri;
  sess_store* store = nullptr;
};

Target targets[] = {
    {fuzz::kGcmCookie, "cookie:"},
    {fuzz::kHmacCookie, "cookie:?codec=hmac-sha256"},
    {fuzz::kMemCookie, "memory:"},
};
Target& memory_target() { return targets[2]; }

std::string last_error() { return sess_last_error(); }

void open_stores() {
  for (Target& t : targets) {
    sess_config* config = nullptr;
    if (sess_config_new(&config) != SESS_OK ||
        sess_config_add_secret(config, fuzz::kSecret.data(), fuzz::kSecret.size()) != SESS_OK ||
        sess_store_open(t.uri, config, &t.store) != SESS_OK) {
      std::fprintf(stderr, "cannot open %s: %s\n", t.uri, sess_last_error());
      std::abort();
    }
    sess_config_free(config);
  }
}

// "name=value" of a Set-Cookie line, and its name.
std::string_view cookie_pair(std::string_view line) { return line.substr(0, line.find(';')); }
std::string_view cookie_name(std::string_view line) { return line.substr(0, line.find('=')); }

std::string take_string(char* p, size_t len) {
  std::string out(p, len);
  sess_free(p);
  return out;
}

// A memory: session with values of every type and flashes; its cookie value.
std::string make_memory_session() {
  sess_request* req = nullptr;
  sess_session* s = nullptr;
  FUZZ_CHECK(sess_request_begin(nullptr, 0, &req) == SESS_OK, last_error());
  FUZZ_CHECK(sess_request_session(req, memory_target().store, fuzz::kMemCookie, &s) == SESS_OK, last_error());
  const char json[] = R"({"cart":[{"sku":"A-1","qty":2}],"n":null,"t":true,"pi":3.25})";
  bool ok = sess_set_nil(s, "nil") == SESS_OK && sess_set_bool(s, "bool", 1) == SESS_OK &&
            sess_set_int(s, "int", -9007199254740993) == SESS_OK &&
            sess_set_double(s, "double", 0.1) == SESS_OK &&
            sess_set_str(s, "str", "caf\xc3\xa9", 5) == SESS_OK &&
            sess_set_bytes(s, "bytes", "\x00\x01\xff", 3) == SESS_OK &&
            sess_set_json(s, "json", json, sizeof json - 1) == SESS_OK &&
            sess_add_flash_str(s, nullptr, "saved", 5) == SESS_OK &&
            sess_add_flash_json(s, "warn", "[1,\"two\"]", 9) == SESS_OK;
  FUZZ_CHECK(ok, "cannot fill a memory: session: " + last_error());
  FUZZ_CHECK(sess_request_finish(req) == SESS_OK, last_error());
  FUZZ_CHECK(sess_request_set_cookie_count(req) == 1, "a new memory: session emitted no Set-Cookie");
  std::string value(cookie_pair(sess_request_set_cookie(req, 0, nullptr)));
  value.erase(0, std::strlen(fuzz::kMemCookie) + 1);
  sess_request_free(req);
  return value;
}

// Destroys whatever session `cookie` (a "name=value" list) loads in memory:.
void destroy_memory_session(const std::string& cookie) {
  sess_request* req = nullptr;
  sess_session* s = nullptr;
  FUZZ_CHECK(sess_request_begin(cookie.data(), cookie.size(), &req) == SESS_OK, last_error());
  FUZZ_CHECK(sess_request_session(req, memory_target().store, fuzz::kMemCookie, &s) == SESS_OK, last_error());
  FUZZ_CHECK(sess_session_destroy(s) == SESS_OK, last_error());
  FUZZ_CHECK(sess_request_finish(req) == SESS_OK, last_error());
  sess_request_free(req);
}

// What a session held when the first request finished: its keys (in order)
// and each value's MessagePack.
using Contents = std::vector<std::pair<std::string, std::string>>;

constexpr const char* kSetKey = "fuzz.counter";
constexpr int64_t kSetValue = 4242;

// Reads every key and value, the flashes, and sets kSetKey.
Contents use_session(sess_session* s, const char* name) {
  const std::string where = std::string(" (session ") + name + ")";
  const int status = sess_session_status(s);
  FUZZ_CHECK(status >= SESS_STATUS_NEW && status <= SESS_STATUS_UNKNOWN_ID,
             "status " + std::to_string(status) + where);
  FUZZ_CHECK(sess_session_is_new(s) == (status != SESS_STATUS_VALID), "is_new disagrees with the status" + where);
  FUZZ_CHECK(!sess_session_is_modified(s), "modified before any change" + where);
  const size_t count = sess_count(s);
  if (status != SESS_STATUS_VALID) FUZZ_CHECK(count == 0, "a session that is not valid holds values" + where);

  Contents contents;
  for (size_t i = 0; i < count; ++i) {
    const char* key = nullptr;
    size_t len = 0;
    FUZZ_CHECK(sess_key_at(s, i, &key, &len) == SESS_OK, "sess_key_at: " + last_error() + where);
    const std::string k(key, len);
    FUZZ_CHECK(len >= 1 && len <= 255 && std::strlen(key) == len, "a key of bad length: " + escape(k) + where);
    if (!contents.empty()) FUZZ_CHECK(contents.back().first < k, "keys not in strictly increasing order" + where);
    int type = -1;
    FUZZ_CHECK(sess_get_type(s, key, &type) == SESS_OK && type >= SESS_TYPE_NIL && type <= SESS_TYPE_MAP,
               "sess_get_type(" + escape(k) + "): " + last_error() + where);
    sess_value v;
    FUZZ_CHECK(sess_get(s, key, &v) == SESS_OK && v.type == type, "sess_get(" + escape(k) + ")" + where);
    char* out = nullptr;
    FUZZ_CHECK(sess_get_json(s, key, &out, &len) == SESS_OK, "sess_get_json(" + escape(k) + "): " + last_error() + where);
    const std::string json = take_string(out, len);
    FUZZ_CHECK(!json.empty(), "empty JSON for " + escape(k) + where);
    FUZZ_CHECK(sess_get_msgpack(s, key, &out, &len) == SESS_OK,
               "sess_get_msgpack(" + escape(k) + "): " + last_error() + where);
    const std::string msgpack = take_string(out, len);
    FUZZ_CHECK(sess_set_msgpack(s, key, msgpack.data(), msgpack.size()) == SESS_OK,
               "sess_set_msgpack refuses what sess_get_msgpack gave for " + escape(k) + ": " + last_error() + where);
    FUZZ_CHECK(sess_get_msgpack(s, key, &out, &len) == SESS_OK && take_string(out, len) == msgpack,
               "a value set from its own MessagePack reads back differently: " + escape(k) + where);
    contents.emplace_back(k, msgpack);
  }
  const char* ignored = nullptr;
  FUZZ_CHECK(sess_key_at(s, count, &ignored, nullptr) == SESS_NOT_FOUND, "sess_key_at past the end" + where);

  char* out = nullptr;
  size_t len = 0;
  FUZZ_CHECK(sess_flashes_json(s, nullptr, &out, &len) == SESS_OK, "sess_flashes_json: " + last_error() + where);
  const std::string flashes = take_string(out, len);
  FUZZ_CHECK(fuzz::has_prefix(flashes, "[") && flashes.back() == ']', "flashes not a JSON array: " + escape(flashes) + where);
  if (status != SESS_STATUS_VALID) FUZZ_CHECK(flashes == "[]", "a new session has flashes" + where);
  FUZZ_CHECK(sess_flashes_json(s, nullptr, &out, &len) == SESS_OK && take_string(out, len) == "[]",
             "flashes read twice" + where);

  FUZZ_CHECK(sess_set_int(s, kSetKey, kSetValue) == SESS_OK, "sess_set_int: " + last_error() + where);
  FUZZ_CHECK(sess_session_is_modified(s), "not modified after a set" + where);
  FUZZ_CHECK(sess_get_msgpack(s, kSetKey, &out, &len) == SESS_OK, "reading back a set value" + where);
  const std::string packed_value = take_string(out, len);
  // The expected contents after the set, still in byte order.
  bool placed = false;
  for (auto it = contents.begin(); it != contents.end(); ++it) {
    if (it->first == kSetKey) { it->second = packed_value; placed = true; break; }
    if (it->first > kSetKey) { contents.insert(it, {kSetKey, packed_value}); placed = true; break; }
  }
  if (!placed) contents.emplace_back(kSetKey, packed_value);
  return contents;
}

void check_set_cookie(std::string_view line) {
  FUZZ_CHECK(line.size() <= SESS_MAX_SET_COOKIE, "a Set-Cookie over the limit");
  for (unsigned char c : line)
    FUZZ_CHECK(c >= 0x20 && c < 0x7f, "Set-Cookie holds a control or non-ASCII byte: " + escape(line));
  FUZZ_CHECK(line.find("; Path=/") != std::string_view::npos, "Set-Cookie without its Path: " + escape(line));
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  open_stores();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string header(reinterpret_cast<const char*>(data), size);
  std::string memory_cookie;
  for (size_t at = header.find(fuzz::kMemPlaceholder); at != std::string::npos;
       at = header.find(fuzz::kMemPlaceholder, at + memory_cookie.size())) {
    if (memory_cookie.empty()) memory_cookie = make_memory_session();
    header.replace(at, fuzz::kMemPlaceholder.size(), memory_cookie);
  }

  // ---- The request.
  sess_request* req = nullptr;
  const int begun = sess_request_begin(header.data(), header.size(), &req);
  if (header.size() > SESS_MAX_COOKIE_HEADER) {
    FUZZ_CHECK(begun == SESS_E_HEADER_TOO_LARGE && req == nullptr, "an oversized header was taken");
    if (!memory_cookie.empty()) destroy_memory_session(std::string(fuzz::kMemCookie) + "=" + memory_cookie);
    return 0;
  }
  FUZZ_CHECK(begun == SESS_OK, "sess_request_begin: " + last_error());

  std::vector<Contents> expected;
  for (Target& t : targets) {
    sess_session* s = nullptr;
    const int rc = sess_request_session(req, t.store, t.name, &s);
    FUZZ_CHECK(rc == SESS_OK && s != nullptr, std::string("sess_request_session(") + t.name + ") gave " +
                                                  std::to_string(rc) + ": " + last_error());
    FUZZ_CHECK(std::strcmp(sess_session_name(s), t.name) == 0, "the session has another name");
    expected.push_back(use_session(s, t.name));
  }
  const int finished = sess_request_finish(req);
  FUZZ_CHECK(finished == SESS_OK || finished == SESS_E_COOKIE_TOO_LARGE,
             "sess_request_finish gave " + std::to_string(finished) + ": " + last_error());

  // ---- The round trip: the Set-Cookie values, sent back.
  // One line per session under its own name, and for cookie: sessions the
  // chunks past 4 KB (NAME.i) and the deletions of chunks the header carried
  // that a session no longer uses.
  const size_t lines = sess_request_set_cookie_count(req);
  size_t session_lines = 0;
  std::string next_header;
  std::vector<size_t> returned;  // index into targets
  for (size_t i = 0; i < lines; ++i) {
    size_t len = 0;
    const char* line = sess_request_set_cookie(req, i, &len);
    FUZZ_CHECK(line != nullptr && std::strlen(line) == len, "sess_request_set_cookie");
    check_set_cookie(std::string_view(line, len));
    const std::string_view name = cookie_name(line);
    const bool deletion = std::string_view(line, len).find("; Max-Age=0;") != std::string_view::npos;
    size_t target = 3;
    bool chunk = false;
    for (size_t t = 0; t < 3; ++t) {
      const std::string_view own = targets[t].name;
      if (name == own) target = t;
      if (name.size() > own.size() + 1 && name.substr(0, own.size()) == own && name[own.size()] == '.' &&
          name.find_first_not_of("0123456789", own.size() + 1) == std::string_view::npos) {
        target = t;
        chunk = true;
      }
    }
    FUZZ_CHECK(target < 3, "a Set-Cookie for an unknown name: " + escape(line));
    FUZZ_CHECK(!chunk || &targets[target] != &memory_target(), "chunks of a memory: session: " + escape(line));
    FUZZ_CHECK(!deletion || chunk, "a session's own cookie deleted though nothing destroyed it: " + escape(line));
    if (deletion) continue;
    if (!next_header.empty()) next_header += "; ";
    next_header += cookie_pair(line);
    if (chunk) continue;
    ++session_lines;
    returned.push_back(target);
  }
  if (finished == SESS_OK)
    FUZZ_CHECK(session_lines == 3, std::to_string(session_lines) + " session cookies for 3 changed sessions");
  FUZZ_CHECK(sess_request_set_cookie(req, lines, nullptr) == nullptr, "sess_request_set_cookie past the end");
  sess_request_free(req);

  FUZZ_CHECK(sess_request_begin(next_header.data(), next_header.size(), &req) == SESS_OK, last_error());
  for (size_t t : returned) {
    const std::string where = std::string(" (round trip, session ") + targets[t].name + ")";
    sess_session* s = nullptr;
    FUZZ_CHECK(sess_request_session(req, targets[t].store, targets[t].name, &s) == SESS_OK, last_error() + where);
    FUZZ_CHECK(sess_session_status(s) == SESS_STATUS_VALID,
               std::string("status ") + sess_status_name(sess_session_status(s)) + where);
    const Contents& want = expected[t];
    FUZZ_CHECK(sess_count(s) == want.size(), std::to_string(sess_count(s)) + " values, not " +
                                                 std::to_string(want.size()) + where);
    for (size_t i = 0; i < want.size(); ++i) {
      const char* key = nullptr;
      size_t len = 0;
      FUZZ_CHECK(sess_key_at(s, i, &key, &len) == SESS_OK && std::string(key, len) == want[i].first,
                 "key " + std::to_string(i) + " is not " + escape(want[i].first) + where);
      char* out = nullptr;
      FUZZ_CHECK(sess_get_msgpack(s, key, &out, &len) == SESS_OK && take_string(out, len) == want[i].second,
                 "the value of " + escape(want[i].first) + " changed" + where);
    }
    char* out = nullptr;
    size_t len = 0;
    FUZZ_CHECK(sess_flashes_json(s, nullptr, &out, &len) == SESS_OK && take_string(out, len) == "[]",
               "flashes read in the first request came back" + where);
    FUZZ_CHECK(sess_session_destroy(s) == SESS_OK, last_error() + where);
  }
  FUZZ_CHECK(sess_request_finish(req) == SESS_OK, "finishing the round trip: " + last_error());
  sess_request_free(req);

  // The memory: session this input started with, if the request did not
  // load it (and so the round trip did not destroy it).
  if (!memory_cookie.empty()) destroy_memory_session(std::string(fuzz::kMemCookie) + "=" + memory_cookie);
  return 0;
}
