// The C ABI through libsessions.so, as C users and FFIs call it.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <string>

#include "sessions.h"

namespace {

const std::string kSecret = "capi-secret-capi-secret-capi-secret!";

sess_store* open_store(const char* uri) {
  sess_config* config = nullptr;
  REQUIRE(sess_config_new(&config) == SESS_OK);
  REQUIRE(sess_config_add_secret(config, kSecret.data(), kSecret.size()) == SESS_OK);
  sess_store* store = nullptr;
  int rc = sess_store_open(uri, config, &store);
  sess_config_free(config);
  INFO(sess_last_error());
  REQUIRE(rc == SESS_OK);
  return store;
}

// The "name=value" part of the first Set-Cookie, as a browser would send it.
std::string cookie_of(sess_request* req) {
  REQUIRE(sess_request_set_cookie_count(req) >= 1);
  std::string line = sess_request_set_cookie(req, 0, nullptr);
  return line.substr(0, line.find(';'));
}

}  // namespace

TEST_CASE("C: version, error texts and status names") {
  CHECK(sess_version_number() == SESS_VERSION_NUMBER);
  CHECK(std::string(sess_version_string()) == SESS_VERSION_STRING);
  for (int code = SESS_OK; code <= SESS_E_CSRF; ++code)
    CHECK(std::string(sess_strerror(code)) != "unknown error");
  CHECK(std::string(sess_strerror(999)) == "unknown error");
  CHECK(std::string(sess_status_name(SESS_STATUS_TAMPERED)) == "tampered");
  CHECK(std::string(sess_status_name(-1)) == "unknown");
  sess_free(nullptr);
  sess_config_free(nullptr);
  sess_store_close(nullptr);
  sess_request_free(nullptr);
}

TEST_CASE("C: every typed value round-trips through a cookie") {
  for (const char* uri : {"cookie:", "memory:"}) {
    INFO(uri);
    sess_store* store = open_store(uri);
    sess_request* req = nullptr;
    sess_session* s = nullptr;
    REQUIRE(sess_request_begin(nullptr, 0, &req) == SESS_OK);
    REQUIRE(sess_request_session(req, store, "sid", &s) == SESS_OK);
    CHECK(sess_session_is_new(s) == 1);
    CHECK(sess_set_nil(s, "nil") == SESS_OK);
    CHECK(sess_set_bool(s, "bool", 1) == SESS_OK);
    CHECK(sess_set_int(s, "int", INT64_MIN) == SESS_OK);
    CHECK(sess_set_double(s, "double", 0.5) == SESS_OK);
    CHECK(sess_set_str(s, "str", "a\0b", 3) == SESS_OK);
    CHECK(sess_set_bytes(s, "bytes", "\xff\x00", 2) == SESS_OK);
    const char* json = R"({"list":[1,"two",{"three":3.5}],"ok":true})";
    CHECK(sess_set_json(s, "json", json, std::strlen(json)) == SESS_OK);
    CHECK(sess_session_is_modified(s) == 1);
    REQUIRE(sess_request_finish(req) == SESS_OK);
    std::string cookie = cookie_of(req);
    sess_request_free(req);

    REQUIRE(sess_request_begin(cookie.data(), cookie.size(), &req) == SESS_OK);
    REQUIRE(sess_request_session(req, store, "sid", &s) == SESS_OK);
    CHECK(sess_session_status(s) == SESS_STATUS_VALID);
    CHECK(std::string(sess_session_name(s)) == "sid");
    CHECK(std::strlen(sess_session_id(s)) == (std::string(uri) == "memory:" ? 43u : 0u));
    int type = -1, b = 0;
    int64_t i = 0;
    double d = 0;
    const char* str = nullptr;
    const void* bytes = nullptr;
    size_t len = 0;
    CHECK(sess_get_type(s, "nil", &type) == SESS_OK);
    CHECK(type == SESS_TYPE_NIL);
    CHECK(sess_get_bool(s, "bool", &b) == SESS_OK);
    CHECK(b == 1);
    CHECK(sess_get_int(s, "int", &i) == SESS_OK);
    CHECK(i == INT64_MIN);
    CHECK(sess_get_double(s, "double", &d) == SESS_OK);
    CHECK(d == 0.5);
    CHECK(sess_get_str(s, "str", &str, &len) == SESS_OK);
    CHECK(std::string(str, len) == std::string("a\0b", 3));
    CHECK(sess_get_bytes(s, "bytes", &bytes, &len) == SESS_OK);
    CHECK(std::string(static_cast<const char*>(bytes), len) == std::string("\xff\x00", 2));
    char* out = nullptr;
    CHECK(sess_get_json(s, "json", &out, &len) == SESS_OK);
    CHECK(std::string(out, len) == json);
    sess_free(out);
    CHECK(sess_get_type(s, "json", &type) == SESS_OK);
    CHECK(type == SESS_TYPE_MAP);
    CHECK(sess_count(s) == 7);
    const char* key = nullptr;
    CHECK(sess_key_at(s, 0, &key, &len) == SESS_OK);
    CHECK(std::string(key, len) == "bool");
    CHECK(sess_key_at(s, 7, &key, &len) == SESS_NOT_FOUND);
    sess_request_free(req);
    sess_store_close(store);
  }
}

TEST_CASE("C: absent keys, wrong types and bad arguments") {
  sess_store* store = open_store("cookie:");
  sess_request* req = nullptr;
  sess_session* s = nullptr;
  REQUIRE(sess_request_begin("", 0, &req) == SESS_OK);
  REQUIRE(sess_request_session(req, store, "sid", &s) == SESS_OK);
  int64_t i = 7;
  CHECK(sess_get_int(s, "missing", &i) == SESS_NOT_FOUND);
  CHECK(i == 7);
  sess_set_str(s, "name", "ann", 3);
  CHECK(sess_get_int(s, "name", &i) == SESS_E_TYPE_MISMATCH);
  CHECK(std::string(sess_last_error()).find("name") != std::string::npos);
  CHECK(sess_set_str(s, "bad", "\xff\xfe", 2) == SESS_E_INVALID_ARGUMENT);
  CHECK(sess_set_str(s, "", "x", 1) == SESS_E_INVALID_ARGUMENT);
  CHECK(sess_set_str(s, "\xc3", "x", 1) == SESS_E_INVALID_ARGUMENT);
  CHECK(sess_set_str(s, nullptr, "x", 1) == SESS_E_INVALID_ARGUMENT);
  CHECK(sess_set_str(s, "k", nullptr, 5) == SESS_E_INVALID_ARGUMENT);
  CHECK(sess_set_str(s, "k", nullptr, 0) == SESS_OK);
  CHECK(sess_set_double(s, "nan", std::nan("")) == SESS_E_INVALID_ARGUMENT);
  CHECK(sess_set_json(s, "j", "{oops", 5) == SESS_E_BAD_JSON);
  // sess_get: any scalar in one call.
  {
    REQUIRE(sess_set_str(s, "one", "abc", 3) == SESS_OK);
    REQUIRE(sess_set_int(s, "two", -7) == SESS_OK);
    sess_value v;
    REQUIRE(sess_get(s, "one", &v) == SESS_OK);
    CHECK(v.type == SESS_TYPE_STRING);
    CHECK(std::string(v.data, v.len) == "abc");
    REQUIRE(sess_get(s, "two", &v) == SESS_OK);
    CHECK((v.type == SESS_TYPE_INT && v.integer == -7 && v.data == nullptr));
    CHECK(sess_get(s, "absent", &v) == SESS_NOT_FOUND);
    CHECK(sess_get(s, "two", nullptr) == SESS_E_INVALID_ARGUMENT);
  }
  // MessagePack: exact, bytes inside containers included; anything outside
  // the model is refused.
  {
    const char packed[] = "\x92\xc4\x02\x00\xff\x81\xa1k\xcb\x3f\xf8\x00\x00\x00\x00\x00\x00";
    const size_t packed_len = sizeof packed - 1;  // [bin 00ff, {"k": 1.5}]
    CHECK(sess_set_msgpack(s, "mp", packed, packed_len) == SESS_OK);
    char* out = nullptr;
    size_t out_len = 0;
    REQUIRE(sess_get_msgpack(s, "mp", &out, &out_len) == SESS_OK);
    CHECK(std::string(out, out_len) == std::string(packed, packed_len));
    sess_free(out);
    CHECK(sess_get_msgpack(s, "missing", &out, &out_len) == SESS_NOT_FOUND);
    CHECK(sess_set_msgpack(s, "mp", "\xc1", 1) == SESS_E_INVALID_ARGUMENT);          // never used
    CHECK(sess_set_msgpack(s, "mp", "\xd4\x01\x00", 3) == SESS_E_INVALID_ARGUMENT);  // ext
    CHECK(sess_set_msgpack(s, "mp", "\x81\x01\x02", 3) == SESS_E_INVALID_ARGUMENT);  // int key
    CHECK(sess_set_msgpack(s, "mp", "\x01\x02", 2) == SESS_E_INVALID_ARGUMENT);      // two values
    CHECK(sess_set_msgpack(s, "mp", "", 0) == SESS_E_INVALID_ARGUMENT);
  }
  CHECK(sess_get_int(nullptr, "k", &i) == SESS_E_INVALID_ARGUMENT);
  CHECK(sess_get_int(s, "k", nullptr) == SESS_E_INVALID_ARGUMENT);
  CHECK(sess_delete(s, "missing") == SESS_OK);
  CHECK(sess_request_session(req, store, "bad name", &s) == SESS_E_BAD_OPTION);
  CHECK(sess_request_session(nullptr, store, "sid", &s) == SESS_E_INVALID_ARGUMENT);
  CHECK(sess_request_set_cookie(req, 5, nullptr) == nullptr);
  sess_request_free(req);
  std::string huge(SESS_MAX_COOKIE_HEADER + 1, 'x');
  req = reinterpret_cast<sess_request*>(1);
  CHECK(sess_request_begin(huge.data(), huge.size(), &req) == SESS_E_HEADER_TOO_LARGE);
  CHECK(req == nullptr);
  sess_store_close(store);
}

TEST_CASE("C: configuration and store errors are named") {
  sess_config* config = nullptr;
  REQUIRE(sess_config_new(&config) == SESS_OK);
  sess_store* store = nullptr;
  CHECK(sess_store_open("cookie:", config, &store) == SESS_E_BAD_SECRET);
  CHECK(std::string(sess_last_error()).find("secret") != std::string::npos);
  CHECK(sess_config_add_secret(config, "short", 5) == SESS_E_BAD_SECRET);
  REQUIRE(sess_config_add_secret(config, kSecret.data(), kSecret.size()) == SESS_OK);
  CHECK(sess_config_set(config, "nope", "1") == SESS_E_BAD_OPTION);
  CHECK(sess_config_set(config, "max_age", "soon") == SESS_E_BAD_OPTION);
  CHECK(sess_config_set(config, "path", "/a\r\nX: y") == SESS_E_BAD_OPTION);
  CHECK(sess_config_set(config, "idle_timeout", "30m") == SESS_OK);
  CHECK(sess_store_open("bogus:", config, &store) == SESS_E_BAD_URI);
  CHECK(sess_store_open("memory:?shards=0", config, &store) == SESS_E_BAD_OPTION);
  CHECK(sess_store_open(nullptr, config, &store) == SESS_E_INVALID_ARGUMENT);
  CHECK(store == nullptr);
  CHECK(sess_store_check("bogus:", config) == SESS_E_BAD_URI);
  CHECK(sess_store_check("redis://127.0.0.1:1/0", config) == SESS_OK);  // nothing dialled
  CHECK(sess_store_check(nullptr, config) == SESS_E_INVALID_ARGUMENT);
  CHECK(sess_store_open("memory:", config, &store) == SESS_OK);
  sess_store_close(store);
  sess_config_free(config);
}

TEST_CASE("C: flashes, destroy and the finished state") {
  sess_store* store = open_store("memory:");
  sess_request* req = nullptr;
  sess_session* s = nullptr;
  REQUIRE(sess_request_begin("", 0, &req) == SESS_OK);
  REQUIRE(sess_request_session(req, store, "sid", &s) == SESS_OK);
  CHECK(sess_add_flash_str(s, nullptr, "saved", 5) == SESS_OK);
  CHECK(sess_add_flash_json(s, nullptr, "{\"n\":1}", 7) == SESS_OK);
  CHECK(sess_add_flash_str(s, "error", "oops", 4) == SESS_OK);
  REQUIRE(sess_request_finish(req) == SESS_OK);
  CHECK(sess_set_int(s, "late", 1) == SESS_E_STATE);
  CHECK(sess_request_finish(req) == SESS_E_STATE);
  std::string cookie = cookie_of(req);
  sess_request_free(req);

  REQUIRE(sess_request_begin(cookie.data(), cookie.size(), &req) == SESS_OK);
  REQUIRE(sess_request_session(req, store, "sid", &s) == SESS_OK);
  char* out = nullptr;
  size_t len = 0;
  REQUIRE(sess_flashes_json(s, nullptr, &out, &len) == SESS_OK);
  CHECK(std::string(out, len) == R"(["saved",{"n":1}])");
  sess_free(out);
  REQUIRE(sess_flashes_json(s, nullptr, &out, &len) == SESS_OK);
  CHECK(std::string(out, len) == "[]");
  sess_free(out);
  CHECK(sess_session_destroy(s) == SESS_OK);
  REQUIRE(sess_request_finish(req) == SESS_OK);
  CHECK(std::string(sess_request_set_cookie(req, 0, nullptr)).find("Max-Age=0") != std::string::npos);
  sess_request_free(req);

  REQUIRE(sess_request_begin(cookie.data(), cookie.size(), &req) == SESS_OK);
  REQUIRE(sess_request_session(req, store, "sid", &s) == SESS_OK);
  CHECK(sess_session_status(s) == SESS_STATUS_UNKNOWN_ID);
  sess_request_free(req);
  sess_store_close(store);
}

TEST_CASE("C: a store outlives its close while requests use it") {
  sess_store* store = open_store("memory:");
  sess_request* req = nullptr;
  sess_session* s = nullptr;
  REQUIRE(sess_request_begin("", 0, &req) == SESS_OK);
  REQUIRE(sess_request_session(req, store, "sid", &s) == SESS_OK);
  sess_store_close(store);
  CHECK(sess_set_int(s, "n", 1) == SESS_OK);
  CHECK(sess_request_finish(req) == SESS_OK);
  sess_request_free(req);
}

TEST_CASE("C: a recycled request starts clean") {
  // sess_request_free keeps the request (and its Session objects) for reuse
  // on this thread; nothing of the old request may show in the next one.
  sess_store* store = open_store("memory:");
  sess_request* req = nullptr;
  sess_session* s = nullptr;
  REQUIRE(sess_request_begin("", 0, &req) == SESS_OK);
  REQUIRE(sess_request_session(req, store, "sid", &s) == SESS_OK);
  sess_set_str(s, "secret", "ann's data", 10);
  sess_add_flash_str(s, nullptr, "hi", 2);
  sess_session_set_option(s, "max_age", "90d");
  sess_session_set_option(s, "path", "/private");
  REQUIRE(sess_request_finish(req) == SESS_OK);
  std::string first_id = sess_session_id(s);
  CHECK(first_id.size() == 43);
  sess_request_free(req);

  for (const char* header : {"", "other=1"}) {
    REQUIRE(sess_request_begin(header, std::strlen(header), &req) == SESS_OK);
    CHECK(sess_request_set_cookie_count(req) == 0);
    REQUIRE(sess_request_session(req, store, "sid", &s) == SESS_OK);
    CHECK(sess_session_status(s) == SESS_STATUS_NEW);
    CHECK(sess_session_is_modified(s) == 0);
    CHECK(sess_count(s) == 0);
    CHECK(std::string(sess_session_id(s)).empty());
    char* flashes = nullptr;
    REQUIRE(sess_flashes_json(s, nullptr, &flashes, nullptr) == SESS_OK);
    CHECK(std::string(flashes) == "[]");
    sess_free(flashes);
    CHECK(sess_set_int(s, "n", 1) == SESS_OK);
    REQUIRE(sess_request_finish(req) == SESS_OK);
    REQUIRE(sess_request_set_cookie_count(req) == 1);
    std::string line = sess_request_set_cookie(req, 0, nullptr);
    CHECK(line.find("Max-Age=2592000") != std::string::npos);  // not the old 90d
    CHECK(line.find("Path=/;") != std::string::npos);          // not the old path
    CHECK(std::string(sess_session_id(s)) != first_id);
    sess_request_free(req);
  }
  sess_store_close(store);
}

TEST_CASE("C: every failure leaves out-pointers NULL, argument checks included") {
  void* const junk = reinterpret_cast<void*>(uintptr_t(0x1234));
  sess_config* config = static_cast<sess_config*>(junk);
  CHECK(sess_config_new(nullptr) == SESS_E_INVALID_ARGUMENT);
  sess_store* store = static_cast<sess_store*>(junk);
  CHECK(sess_store_open(nullptr, nullptr, &store) == SESS_E_INVALID_ARGUMENT);
  CHECK(store == nullptr);
  REQUIRE(sess_config_new(&config) == SESS_OK);
  REQUIRE(sess_config_add_secret(config, kSecret.data(), kSecret.size()) == SESS_OK);
  store = static_cast<sess_store*>(junk);
  CHECK(sess_store_open("nope:", config, &store) == SESS_E_BAD_URI);
  CHECK(store == nullptr);
  sess_config_free(config);

  sess_request* req = static_cast<sess_request*>(junk);
  CHECK(sess_request_begin(nullptr, 5, &req) == SESS_E_INVALID_ARGUMENT);
  CHECK(req == nullptr);
  std::string huge(SESS_MAX_COOKIE_HEADER + 1, 'a');
  req = static_cast<sess_request*>(junk);
  CHECK(sess_request_begin(huge.data(), huge.size(), &req) == SESS_E_HEADER_TOO_LARGE);
  CHECK(req == nullptr);

  sess_store* memory = open_store("memory:");
  REQUIRE(sess_request_begin("", 0, &req) == SESS_OK);
  sess_session* s = static_cast<sess_session*>(junk);
  CHECK(sess_request_session(nullptr, memory, "sid", &s) == SESS_E_INVALID_ARGUMENT);
  CHECK(s == nullptr);
  s = static_cast<sess_session*>(junk);
  CHECK(sess_request_session(req, memory, "bad name", &s) == SESS_E_BAD_OPTION);
  CHECK(s == nullptr);
  REQUIRE(sess_request_session(req, memory, "sid", &s) == SESS_OK);
  REQUIRE(sess_set_int(s, "n", 1) == SESS_OK);

  const char* text = "x";
  size_t len = 99;
  CHECK(sess_get_str(s, "missing", &text, &len) == SESS_NOT_FOUND);
  CHECK((text == nullptr && len == 0));
  text = "x", len = 99;
  CHECK(sess_get_str(s, "n", &text, &len) == SESS_E_TYPE_MISMATCH);
  CHECK((text == nullptr && len == 0));
  text = "x", len = 99;
  CHECK(sess_get_str(nullptr, "n", &text, &len) == SESS_E_INVALID_ARGUMENT);
  CHECK((text == nullptr && len == 0));
  const void* bytes = junk;
  len = 99;
  CHECK(sess_get_bytes(s, nullptr, &bytes, &len) == SESS_E_INVALID_ARGUMENT);
  CHECK((bytes == nullptr && len == 0));
  char* owned = static_cast<char*>(junk);
  len = 99;
  CHECK(sess_get_json(s, "missing", &owned, &len) == SESS_NOT_FOUND);
  CHECK((owned == nullptr && len == 0));
  owned = static_cast<char*>(junk), len = 99;
  CHECK(sess_get_msgpack(nullptr, "n", &owned, &len) == SESS_E_INVALID_ARGUMENT);
  CHECK((owned == nullptr && len == 0));
  owned = static_cast<char*>(junk), len = 99;
  CHECK(sess_flashes_json(nullptr, nullptr, &owned, &len) == SESS_E_INVALID_ARGUMENT);
  CHECK((owned == nullptr && len == 0));
  text = "x", len = 99;
  CHECK(sess_key_at(s, 5, &text, &len) == SESS_NOT_FOUND);
  CHECK((text == nullptr && len == 0));
  sess_value value;
  value.data = "x";
  value.type = SESS_TYPE_MAP;
  CHECK(sess_get(s, "missing", &value) == SESS_NOT_FOUND);
  CHECK((value.data == nullptr && value.len == 0 && value.type == SESS_TYPE_NIL));
  len = 99;
  CHECK(sess_request_set_cookie(req, 7, &len) == nullptr);
  CHECK(len == 0);
  sess_request_free(req);
  sess_store_close(memory);
}

TEST_CASE("C: hostile MessagePack and JSON are refused with the documented codes") {
  sess_store* store = open_store("memory:");
  sess_request* req = nullptr;
  sess_session* s = nullptr;
  REQUIRE(sess_request_begin("", 0, &req) == SESS_OK);
  REQUIRE(sess_request_session(req, store, "sid", &s) == SESS_OK);
  // An array32 of 2^32-1 elements in five bytes: refused, nothing allocated.
  CHECK(sess_set_msgpack(s, "k", "\xdd\xff\xff\xff\xff", 5) == SESS_E_INVALID_ARGUMENT);
  CHECK(sess_set_msgpack(s, "k", "\xdf\x00\xff\xff\xff", 5) == SESS_E_INVALID_ARGUMENT);
  CHECK(sess_set_json(s, "k", "[1,2]\0{x", 8) == SESS_E_BAD_JSON);
  CHECK(sess_set_json(s, "k", "18446744073709551616", 20) == SESS_E_BAD_JSON);
  CHECK(sess_set_json(s, "k", "-9223372036854775809", 20) == SESS_E_BAD_JSON);
  std::string nested_24 = std::string(24, '[') + std::string(24, ']');
  std::string nested_25 = std::string(25, '[') + std::string(25, ']');
  CHECK(sess_set_json(s, "k", nested_24.data(), nested_24.size()) == SESS_OK);
  CHECK(sess_set_json(s, "k", nested_25.data(), nested_25.size()) == SESS_E_BAD_JSON);
  CHECK(sess_add_flash_json(s, nullptr, nested_25.data(), nested_25.size()) == SESS_E_BAD_JSON);
  std::string packed_25 = std::string(24, '\x91') + "\x90";
  CHECK(sess_set_msgpack(s, "k", packed_25.data(), packed_25.size()) == SESS_E_INVALID_ARGUMENT);
  CHECK(sess_count(s) == 1);
  sess_request_free(req);
  sess_store_close(store);
}
