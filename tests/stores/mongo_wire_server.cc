#include "mongo_wire_server.h"

#include <arpa/inet.h>
#include <bson/bson.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <stdexcept>

namespace sessions::testing {
namespace {

constexpr int32_t kOpReply = 1, kOpQuery = 2004, kOpMsg = 2013;

int32_t le32(const uint8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);  // the wire is little-endian, as is x86-64
  return v;
}

bool read_all(int fd, uint8_t* p, size_t n) {
  while (n) {
    ssize_t got = ::recv(fd, p, n, 0);
    if (got <= 0) return false;
    p += got;
    n -= size_t(got);
  }
  return true;
}

void append32(std::vector<uint8_t>* out, int32_t v) {
  uint8_t b[4];
  std::memcpy(b, &v, 4);
  out->insert(out->end(), b, b + 4);
}

// A bson_t built for one reply; its bytes copied out.
std::vector<uint8_t> bytes_of(const bson_t* b) {
  const uint8_t* data = bson_get_data(b);
  return std::vector<uint8_t>(data, data + b->len);
}

std::vector<uint8_t> ok_reply(void (*fill)(bson_t*) = nullptr) {
  bson_t reply = BSON_INITIALIZER;
  if (fill) fill(&reply);
  BSON_APPEND_DOUBLE(&reply, "ok", 1.0);
  auto out = bytes_of(&reply);
  bson_destroy(&reply);
  return out;
}

std::vector<uint8_t> error_reply(int code, const char* name, const std::string& message) {
  bson_t reply = BSON_INITIALIZER;
  BSON_APPEND_DOUBLE(&reply, "ok", 0.0);
  BSON_APPEND_UTF8(&reply, "errmsg", message.c_str());
  BSON_APPEND_INT32(&reply, "code", code);
  BSON_APPEND_UTF8(&reply, "codeName", name);
  auto out = bytes_of(&reply);
  bson_destroy(&reply);
  return out;
}

void hello_fields(bson_t* reply) {
  BSON_APPEND_BOOL(reply, "ismaster", true);
  BSON_APPEND_BOOL(reply, "isWritablePrimary", true);
  BSON_APPEND_BOOL(reply, "helloOk", true);
  BSON_APPEND_INT32(reply, "maxBsonObjectSize", 16 * 1024 * 1024);
  BSON_APPEND_INT32(reply, "maxMessageSizeBytes", 48000000);
  BSON_APPEND_INT32(reply, "maxWriteBatchSize", 100000);
  BSON_APPEND_DATE_TIME(reply, "localTime",
                        std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count());
  BSON_APPEND_INT32(reply, "minWireVersion", 0);
  BSON_APPEND_INT32(reply, "maxWireVersion", 17);  // MongoDB 6.0
}

// The _id of a filter or document, as text (the store's keys are strings).
bool id_of(const bson_t* doc, std::string* id) {
  bson_iter_t it;
  if (!bson_iter_init_find(&it, doc, "_id") || !BSON_ITER_HOLDS_UTF8(&it)) return false;
  uint32_t len = 0;
  const char* s = bson_iter_utf8(&it, &len);
  id->assign(s, len);
  return true;
}

// Does doc match filter? Supports { _id: "x", field: "string", field: {
// $gt: <date> }, field: <int64>, field: null } (null matches a missing
// field, as in MongoDB); strings compare by their bytes and length.
bool matches(const bson_t* doc, const bson_t* filter) {
  bson_iter_t f;
  bson_iter_init(&f, filter);
  while (bson_iter_next(&f)) {
    const char* key = bson_iter_key(&f);
    bson_iter_t d;
    const bool present = bson_iter_init_find(&d, doc, key);
    if (BSON_ITER_HOLDS_DOCUMENT(&f)) {
      bson_iter_t op;
      bson_iter_recurse(&f, &op);
      while (bson_iter_next(&op)) {
        if (std::strcmp(bson_iter_key(&op), "$gt") != 0 || !BSON_ITER_HOLDS_DATE_TIME(&op))
          return false;
        if (!present || !BSON_ITER_HOLDS_DATE_TIME(&d) ||
            bson_iter_date_time(&d) <= bson_iter_date_time(&op))
          return false;
      }
    } else if (BSON_ITER_HOLDS_INT64(&f)) {
      if (!present || !BSON_ITER_HOLDS_INT64(&d) || bson_iter_int64(&d) != bson_iter_int64(&f))
        return false;
    } else if (BSON_ITER_HOLDS_NULL(&f)) {
      if (present && !BSON_ITER_HOLDS_NULL(&d)) return false;
    } else if (BSON_ITER_HOLDS_UTF8(&f)) {
      if (!present || !BSON_ITER_HOLDS_UTF8(&d)) return false;
      uint32_t want_len = 0, have_len = 0;
      const char* want = bson_iter_utf8(&f, &want_len);
      const char* have = bson_iter_utf8(&d, &have_len);
      if (want_len != have_len || std::memcmp(want, have, want_len) != 0) return false;
    } else {
      return false;
    }
  }
  return true;
}

}  // namespace

MongoWireServer::MongoWireServer(int port) : port_(port) { start(); }

MongoWireServer::~MongoWireServer() { stop(); }

std::string MongoWireServer::uri(const std::string& query) const {
  return "mongodb://127.0.0.1:" + std::to_string(port_) + "/test" +
         (query.empty() ? "" : "?" + query);
}

void MongoWireServer::start() {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(uint16_t(port_));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(listen_fd_, 64) != 0)
    throw std::runtime_error("mongo wire server: cannot listen");
  socklen_t len = sizeof addr;
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  running_ = true;
  acceptor_ = std::thread([this] { accept_loop(); });
}

void MongoWireServer::stop() {
  if (!running_) return;
  running_ = false;
  ::shutdown(listen_fd_, SHUT_RDWR);
  ::close(listen_fd_);
  acceptor_.join();
  std::vector<std::thread> workers;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (int fd : connections_) ::shutdown(fd, SHUT_RDWR);
    workers.swap(workers_);
  }
  for (auto& w : workers) w.join();
}

void MongoWireServer::accept_loop() {
  while (running_) {
    int fd = ::accept(listen_fd_, nullptr, nullptr);
    if (fd < 0) return;
    std::lock_guard<std::mutex> lock(mu_);
    connections_.push_back(fd);
    workers_.emplace_back([this, fd] { serve(fd); });
  }
}

void MongoWireServer::serve(int fd) {
  std::vector<uint8_t> message;
  while (running_) {
    uint8_t header[16];
    if (!read_all(fd, header, 16)) break;
    const int32_t length = le32(header), request_id = le32(header + 4), opcode = le32(header + 12);
    if (length < 16 || length > 64 * 1024 * 1024) break;
    message.resize(size_t(length) - 16);
    if (!read_all(fd, message.data(), message.size())) break;
    while (paused_ && running_) std::this_thread::sleep_for(std::chrono::milliseconds(5));

    std::vector<uint8_t> reply_doc;
    int32_t reply_opcode = kOpMsg;
    if (opcode == kOpQuery) {  // the legacy handshake: flags, ns, skip, return, query
      const uint8_t* p = message.data() + 4;
      p += std::strlen(reinterpret_cast<const char*>(p)) + 1 + 8;
      std::vector<uint8_t> query(p, p + le32(p));
      reply_doc = command(query, {});
      reply_opcode = kOpReply;
    } else if (opcode == kOpMsg) {
      std::vector<uint8_t> body;
      std::map<std::string, std::vector<std::vector<uint8_t>>> seqs;
      const uint32_t flags = uint32_t(le32(message.data()));
      size_t pos = 4;
      const size_t end = message.size() - ((flags & 1) ? 4 : 0);  // checksum
      while (pos < end) {
        const uint8_t kind = message[pos++];
        if (kind == 0) {
          const int32_t size = le32(&message[pos]);
          body.assign(message.begin() + long(pos), message.begin() + long(pos) + size);
          pos += size_t(size);
        } else {
          const int32_t size = le32(&message[pos]);
          const size_t section_end = pos + size_t(size);
          pos += 4;
          std::string id(reinterpret_cast<const char*>(&message[pos]));
          pos += id.size() + 1;
          while (pos < section_end) {
            const int32_t doc_size = le32(&message[pos]);
            seqs[id].emplace_back(message.begin() + long(pos),
                                  message.begin() + long(pos) + doc_size);
            pos += size_t(doc_size);
          }
        }
      }
      reply_doc = command(body, seqs);
    } else {
      break;
    }

    std::vector<uint8_t> out(16);
    if (reply_opcode == kOpReply) {
      append32(&out, 0);                        // responseFlags
      out.insert(out.end(), 8, 0);              // cursorID
      append32(&out, 0);                        // startingFrom
      append32(&out, 1);                        // numberReturned
    } else {
      append32(&out, 0);  // flagBits
      out.push_back(0);   // section kind 0: the body
    }
    out.insert(out.end(), reply_doc.begin(), reply_doc.end());
    const int32_t total = int32_t(out.size());
    std::memcpy(&out[0], &total, 4);
    const int32_t id = request_id + 1000000;
    std::memcpy(&out[4], &id, 4);
    std::memcpy(&out[8], &request_id, 4);
    std::memcpy(&out[12], &reply_opcode, 4);
    if (::send(fd, out.data(), out.size(), MSG_NOSIGNAL) != ssize_t(out.size())) break;
  }
  ::close(fd);
  std::lock_guard<std::mutex> lock(mu_);
  connections_.erase(std::remove(connections_.begin(), connections_.end(), fd), connections_.end());
}

std::vector<uint8_t> MongoWireServer::command(
    const std::vector<uint8_t>& body_bytes,
    const std::map<std::string, std::vector<std::vector<uint8_t>>>& seqs) {
  bson_t body;
  if (!bson_init_static(&body, body_bytes.data(), body_bytes.size()))
    return error_reply(2, "BadValue", "invalid BSON");
  bson_iter_t it;
  if (!bson_iter_init(&it, &body) || !bson_iter_next(&it))
    return error_reply(2, "BadValue", "empty command");
  const std::string name = bson_iter_key(&it);
  std::string coll = BSON_ITER_HOLDS_UTF8(&it) ? bson_iter_utf8(&it, nullptr) : "";
  bson_iter_t db_it;
  std::string db = bson_iter_init_find(&db_it, &body, "$db") ? bson_iter_utf8(&db_it, nullptr) : "admin";
  const std::string ns = db + "." + coll;

  // The documents of a write, from the body's array or a document sequence.
  auto items = [&](const char* field) {
    std::vector<std::vector<uint8_t>> out;
    auto seq = seqs.find(field);
    if (seq != seqs.end()) return seq->second;
    bson_iter_t arr, elem;
    if (bson_iter_init_find(&arr, &body, field) && BSON_ITER_HOLDS_ARRAY(&arr)) {
      bson_iter_recurse(&arr, &elem);
      while (bson_iter_next(&elem)) {
        uint32_t len = 0;
        const uint8_t* data = nullptr;
        bson_iter_document(&elem, &len, &data);
        out.emplace_back(data, data + len);
      }
    }
    return out;
  };

  if (name == "hello" || name == "isMaster" || name == "ismaster") return ok_reply(hello_fields);
  if (name == "ping" || name == "endSessions" || name == "buildInfo") return ok_reply();

  std::lock_guard<std::mutex> lock(mu_);
  if (name == "createIndexes") {
    for (const auto& spec : items("indexes")) {
      bson_t b;
      bson_init_static(&b, spec.data(), spec.size());
      char* json = bson_as_canonical_extended_json(&b, nullptr);
      data_[ns].indexes.emplace_back(json);
      bson_free(json);
    }
    return ok_reply();
  }
  if (name == "insert" || name == "update") {
    int n = 0, modified = 0;
    const bool insert = name == "insert";
    for (const auto& item : items(insert ? "documents" : "updates")) {
      if (item.size() > max_document_bytes_)
        return error_reply(10334, "BSONObjectTooLarge", "object to insert too large");
      bson_t b;
      bson_init_static(&b, item.data(), item.size());
      bson_t q, u;
      std::string id;
      if (insert) {
        if (!id_of(&b, &id)) return error_reply(2, "BadValue", "documents need a string _id");
        data_[ns].docs[id] = item;
        ++n;
        continue;
      }
      bson_iter_t f;
      uint32_t len = 0;
      const uint8_t* data = nullptr;
      if (!bson_iter_init_find(&f, &b, "q")) return error_reply(9, "FailedToParse", "no q");
      bson_iter_document(&f, &len, &data);
      bson_init_static(&q, data, len);
      if (!bson_iter_init_find(&f, &b, "u")) return error_reply(9, "FailedToParse", "no u");
      bson_iter_document(&f, &len, &data);
      bson_init_static(&u, data, len);
      bool upsert = bson_iter_init_find(&f, &b, "upsert") && bson_iter_as_bool(&f);
      if (!id_of(&q, &id)) return error_reply(2, "BadValue", "updates select by a string _id");
      // { $set: {...}, $unset: {...} }: $set required, $unset optional.
      bson_iter_t set, unset, op;
      bson_iter_init(&op, &u);
      while (bson_iter_next(&op))
        if (std::strcmp(bson_iter_key(&op), "$set") != 0 &&
            std::strcmp(bson_iter_key(&op), "$unset") != 0)
          return error_reply(9, "FailedToParse", "only $set and $unset updates are supported");
      if (!bson_iter_init_find(&set, &u, "$set") || !BSON_ITER_HOLDS_DOCUMENT(&set))
        return error_reply(9, "FailedToParse", "only $set updates are supported");
      const bool unsetting = bson_iter_init_find(&unset, &u, "$unset");
      if (unsetting && !BSON_ITER_HOLDS_DOCUMENT(&unset))
        return error_reply(9, "FailedToParse", "$unset takes a document");
      auto& docs = data_[ns].docs;
      auto found = docs.find(id);
      if (found != docs.end()) {
        bson_t current;
        bson_init_static(&current, found->second.data(), found->second.size());
        if (!matches(&current, &q)) {
          // MongoDB would insert a second document with this _id and refuse it.
          if (upsert) return error_reply(11000, "DuplicateKey", "E11000 duplicate key error");
          continue;
        }
      }
      if (found == docs.end() && !upsert) continue;
      // The new document: _id, the old fields in neither $set nor $unset,
      // then $set's fields.
      bson_t updated = BSON_INITIALIZER;
      BSON_APPEND_UTF8(&updated, "_id", id.c_str());
      bson_iter_t fields;
      bson_iter_recurse(&set, &fields);
      if (found != docs.end()) {
        bson_t old;
        bson_init_static(&old, found->second.data(), found->second.size());
        bson_iter_t o;
        bson_iter_init(&o, &old);
        while (bson_iter_next(&o)) {
          bson_iter_t probe, unset_probe;
          bson_iter_recurse(&set, &probe);
          const bool unset_field = unsetting && bson_iter_recurse(&unset, &unset_probe) &&
                                   bson_iter_find(&unset_probe, bson_iter_key(&o));
          if (std::strcmp(bson_iter_key(&o), "_id") != 0 &&
              !bson_iter_find(&probe, bson_iter_key(&o)) && !unset_field)
            bson_append_iter(&updated, nullptr, 0, &o);
        }
        ++modified;
      }
      while (bson_iter_next(&fields)) bson_append_iter(&updated, nullptr, 0, &fields);
      docs[id] = bytes_of(&updated);
      bson_destroy(&updated);
      ++n;
    }
    bson_t reply = BSON_INITIALIZER;
    BSON_APPEND_INT32(&reply, "n", n);
    if (!insert) BSON_APPEND_INT32(&reply, "nModified", modified);
    BSON_APPEND_DOUBLE(&reply, "ok", 1.0);
    auto out = bytes_of(&reply);
    bson_destroy(&reply);
    return out;
  }
  if (name == "find") {
    bson_iter_t f;
    bson_t filter = BSON_INITIALIZER;
    if (bson_iter_init_find(&f, &body, "filter") && BSON_ITER_HOLDS_DOCUMENT(&f)) {
      uint32_t len = 0;
      const uint8_t* data = nullptr;
      bson_iter_document(&f, &len, &data);
      bson_init_static(&filter, data, len);
    }
    bson_t reply = BSON_INITIALIZER, cursor, batch;
    BSON_APPEND_DOCUMENT_BEGIN(&reply, "cursor", &cursor);
    BSON_APPEND_ARRAY_BEGIN(&cursor, "firstBatch", &batch);
    int index = 0;
    for (const auto& [id, bytes] : data_[ns].docs) {
      bson_t doc;
      bson_init_static(&doc, bytes.data(), bytes.size());
      if (!matches(&doc, &filter)) continue;
      const std::string key = std::to_string(index++);
      BSON_APPEND_DOCUMENT(&batch, key.c_str(), &doc);
    }
    bson_append_array_end(&cursor, &batch);
    BSON_APPEND_INT64(&cursor, "id", 0);
    BSON_APPEND_UTF8(&cursor, "ns", ns.c_str());
    bson_append_document_end(&reply, &cursor);
    BSON_APPEND_DOUBLE(&reply, "ok", 1.0);
    auto out = bytes_of(&reply);
    bson_destroy(&reply);
    return out;
  }
  if (name == "delete") {
    int n = 0;
    for (const auto& item : items("deletes")) {
      bson_t b, q;
      bson_init_static(&b, item.data(), item.size());
      bson_iter_t f;
      uint32_t len = 0;
      const uint8_t* data = nullptr;
      if (!bson_iter_init_find(&f, &b, "q")) return error_reply(9, "FailedToParse", "no q");
      bson_iter_document(&f, &len, &data);
      bson_init_static(&q, data, len);
      std::string id;
      if (!id_of(&q, &id)) return error_reply(2, "BadValue", "deletes select by a string _id");
      n += int(data_[ns].docs.erase(id));
    }
    bson_t reply = BSON_INITIALIZER;
    BSON_APPEND_INT32(&reply, "n", n);
    BSON_APPEND_DOUBLE(&reply, "ok", 1.0);
    auto out = bytes_of(&reply);
    bson_destroy(&reply);
    return out;
  }
  return error_reply(59, "CommandNotFound", "no such command: '" + name + "'");
}

std::vector<std::string> MongoWireServer::documents(const std::string& ns) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> out;
  for (const auto& [id, bytes] : data_[ns].docs) {
    bson_t doc;
    bson_init_static(&doc, bytes.data(), bytes.size());
    char* json = bson_as_canonical_extended_json(&doc, nullptr);
    out.emplace_back(json);
    bson_free(json);
  }
  return out;
}

std::vector<std::string> MongoWireServer::indexes(const std::string& ns) {
  std::lock_guard<std::mutex> lock(mu_);
  return data_[ns].indexes;
}

void MongoWireServer::put(const std::string& ns, const std::string& json) {
  bson_error_t error;
  bson_t* doc = bson_new_from_json(reinterpret_cast<const uint8_t*>(json.data()),
                                   ssize_t(json.size()), &error);
  if (!doc) throw std::runtime_error(error.message);
  std::string id;
  id_of(doc, &id);
  std::lock_guard<std::mutex> lock(mu_);
  data_[ns].docs[id] = bytes_of(doc);
  bson_destroy(doc);
}

}  // namespace sessions::testing
