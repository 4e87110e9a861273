// Principals and CSRF tokens through the C ABI (libsessions.so).
#include <catch2/catch.hpp>

#include <algorithm>
#include <string>
#include <vector>

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

// One request on `jar`: the handler, then finish; the jar keeps the cookie.
template <typename Handler>
void request(sess_store* store, std::string* jar, Handler handler) {
  sess_request* req = nullptr;
  sess_session* s = nullptr;
  REQUIRE(sess_request_begin(jar->data(), jar->size(), &req) == SESS_OK);
  REQUIRE(sess_request_session(req, store, "sid", &s) == SESS_OK);
  handler(s);
  REQUIRE(sess_request_finish(req) == SESS_OK);
  if (sess_request_set_cookie_count(req) > 0) {
    std::string line = sess_request_set_cookie(req, 0, nullptr);
    *jar = line.substr(0, line.find(';'));
  }
  sess_request_free(req);
}

int status_of(sess_store* store, std::string* jar) {
  int status = -1;
  request(store, jar, [&](sess_session* s) { status = sess_session_status(s); });
  return status;
}

}  // namespace

TEST_CASE("C: log out everywhere on memory:, listing with metadata and handles") {
  sess_store* store = open_store("memory:");
  std::vector<std::string> jars(3);
  std::vector<std::string> handles;
  for (size_t i = 0; i < jars.size(); ++i) {
    request(store, &jars[i], [&](sess_session* s) {
      CHECK(std::string(sess_session_handle(s)).empty());  // no ID yet
      REQUIRE(sess_session_regenerate_id(s) == SESS_OK);
      REQUIRE(sess_session_set_principal(s, "user:42") == SESS_OK);
      REQUIRE(sess_session_set_metadata(s, "label", ("device " + std::to_string(i)).c_str()) ==
              SESS_OK);
      CHECK(std::string(sess_session_principal(s)) == "user:42");
    });
    request(store, &jars[i], [&](sess_session* s) {
      const char* label = nullptr;
      CHECK(sess_session_metadata(s, "label", &label) == SESS_OK);
      CHECK(std::string(label) == "device " + std::to_string(i));
      CHECK(sess_session_metadata(s, "absent", &label) == SESS_NOT_FOUND);
      CHECK(label == nullptr);
      handles.emplace_back(sess_session_handle(s));
    });
  }
  sess_session_list* list = nullptr;
  REQUIRE(sess_store_list_sessions(store, "user:42", &list) == SESS_OK);
  REQUIRE(sess_session_list_count(list) == 3);
  std::vector<std::string> listed;
  for (size_t i = 0; i < 3; ++i) {
    sess_session_info info;
    REQUIRE(sess_session_list_get(list, i, &info) == SESS_OK);
    listed.emplace_back(info.handle);
    CHECK(std::string(info.metadata_json).find("\"label\":\"device ") != std::string::npos);
    CHECK(info.created > 0);
  }
  sess_session_info past;
  CHECK(sess_session_list_get(list, 3, &past) == SESS_NOT_FOUND);
  CHECK(past.handle == nullptr);
  sess_session_list_free(list);
  std::sort(listed.begin(), listed.end());
  std::sort(handles.begin(), handles.end());
  CHECK(listed == handles);

  int64_t ended = 0;
  request(store, &jars[0], [&](sess_session* s) {
    REQUIRE(sess_store_end_sessions(store, "user:42", s, &ended) == SESS_OK);
  });
  CHECK(ended == 2);
  CHECK(status_of(store, &jars[0]) == SESS_STATUS_VALID);
  CHECK(status_of(store, &jars[1]) == SESS_STATUS_UNKNOWN_ID);
  CHECK(sess_store_end_session(store, "user:42", "nosuchhandle") == SESS_NOT_FOUND);
  CHECK(sess_store_end_sessions(store, "", nullptr, nullptr) == SESS_E_INVALID_ARGUMENT);
  CHECK(sess_store_end_sessions(store, nullptr, nullptr, nullptr) == SESS_E_INVALID_ARGUMENT);
  CHECK(sess_store_list_sessions(nullptr, "user:42", &list) == SESS_E_INVALID_ARGUMENT);
  CHECK(list == nullptr);
  sess_session_list_free(nullptr);
  sess_store_close(store);
}

TEST_CASE("C: cookie: sessions revoked through a revocation store") {
  sess_store* plain = open_store("cookie:");
  CHECK(sess_store_end_sessions(plain, "user:42", nullptr, nullptr) == SESS_E_UNSUPPORTED);
  CHECK(std::string(sess_last_error()).find("revocation=") != std::string::npos);
  sess_store_close(plain);

  sess_store* store = open_store("cookie:?revocation=memory:");
  std::string a, b;
  for (std::string* jar : {&a, &b})
    request(store, jar, [&](sess_session* s) { sess_session_set_principal(s, "user:42"); });
  sess_session_list* list = nullptr;
  CHECK(sess_store_list_sessions(store, "user:42", &list) == SESS_E_UNSUPPORTED);
  int64_t ended = 0;
  request(store, &a, [&](sess_session* s) {
    REQUIRE(sess_store_end_sessions(store, "user:42", s, &ended) == SESS_OK);
  });
  CHECK(ended == -1);
  CHECK(status_of(store, &a) == SESS_STATUS_VALID);
  CHECK(status_of(store, &b) == SESS_STATUS_REVOKED);
  CHECK(std::string(sess_status_name(SESS_STATUS_REVOKED)) == "revoked");
  sess_store_close(store);
}

TEST_CASE("C: CSRF tokens verify for their session only") {
  sess_store* store = open_store("cookie:");
  std::string jar, token;
  request(store, &jar, [&](sess_session* s) {
    const char* t = nullptr;
    size_t len = 0;
    REQUIRE(sess_csrf_token(s, &t, &len) == SESS_OK);
    token.assign(t, len);
    CHECK(len == 86);
  });
  request(store, &jar, [&](sess_session* s) {
    CHECK(sess_csrf_verify(s, token.data(), token.size()) == SESS_OK);
    CHECK(sess_csrf_verify(s, token.data(), token.size() - 1) == SESS_E_CSRF);
    CHECK(sess_csrf_verify(s, nullptr, 0) == SESS_E_CSRF);
    CHECK(sess_csrf_verify(s, "", 0) == SESS_E_CSRF);
    CHECK(sess_csrf_verify(nullptr, token.data(), token.size()) == SESS_E_INVALID_ARGUMENT);
  });
  std::string other;
  request(store, &other, [&](sess_session* s) {
    CHECK(sess_csrf_verify(s, token.data(), token.size()) == SESS_E_CSRF);
  });
  sess_store_close(store);
}

TEST_CASE("C: sess_store_check_name refuses cookie names browsers would drop, saying why") {
  sess_config* config = nullptr;
  REQUIRE(sess_config_new(&config) == SESS_OK);
  REQUIRE(sess_config_add_secret(config, kSecret.data(), kSecret.size()) == SESS_OK);
  CHECK(sess_store_check_name("cookie:", config, "sid") == SESS_OK);
  CHECK(sess_store_check_name("cookie:", config, "__Host-sid") == SESS_E_BAD_OPTION);
  CHECK(std::string(sess_last_error()).find("secure") != std::string::npos);
  CHECK(sess_store_check_name("cookie:", config, "__secure-sid") == SESS_E_BAD_OPTION);
  CHECK(sess_store_check_name("cookie:", config, "bad name") == SESS_E_BAD_OPTION);
  CHECK(sess_store_check_name("cookie:?secure=true", config, "__Host-sid") == SESS_OK);
  CHECK(sess_store_check_name("cookie:?secure=true&domain=example.com", config, "__Host-sid") ==
        SESS_E_BAD_OPTION);
  CHECK(sess_store_check_name("cookie:?secure=true&domain=example.com", config, "__Secure-sid") ==
        SESS_OK);
  CHECK(sess_store_check_name("redis://127.0.0.1:1/0", config, "sid") == SESS_OK);  // not dialled
  CHECK(sess_store_check_name("cookie:", config, nullptr) == SESS_E_INVALID_ARGUMENT);
  sess_config_free(config);
}
