// mongodb://host:27017,host2:27017/db?replicaSet=rs0&collection=sessions&timeout_ms=5000
//
// One document per session in a collection: { _id: key, data: BinData,
// expires_at: Date }. A TTL index on expires_at (created at open) lets the
// server delete expired documents; because its monitor runs only once a
// minute, loads also filter on expires_at. Saves are upserts. Any MongoDB
// driver URI works (replica sets, TLS, credentials): its options go to
// libmongoc, whose thread-safe client pool hands each call a client.
// MongoDB has no single-document move: regenerate_id inserts the new
// document, then deletes the old (a reader may see both, never neither).
// Every write stamps a random 64-bit `version`; concurrency=merge and cas
// update only a document whose version is still the one loaded (an old
// document without the field matches version 0), which one update makes
// atomic on the server. Each write also sets `principal` (a string, the
// record's record_principal()) in the same update, or removes it when the
// record has none; a sparse index on it (created at open with the TTL
// index) finds a principal's documents in one find, and expired ones leave
// it as the TTL monitor deletes them.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "backend.h"
#include "options.h"

typedef struct _mongoc_client_pool_t mongoc_client_pool_t;
typedef struct _mongoc_uri_t mongoc_uri_t;
struct _bson_t;

namespace sessions::internal {

class MongoStore : public Backend {
 public:
  // scheme "mongodb" or "mongodb+srv"; encoded_rest as written. Consumes
  // its options and every driver URI option from *options.
  static std::unique_ptr<MongoStore> open(std::string_view scheme, std::string_view encoded_rest,
                                          OptionList* options);
  MongoStore(mongoc_uri_t* uri, std::string database, std::string collection);
  ~MongoStore() override;

  // Creates the driver's client pool, pings the deployment and creates the
  // TTL and principal indexes.
  void start() override;

  bool load(std::string_view key, int64_t now, std::string* data) override;
  void save(std::string_view key, std::string_view data, int64_t now, int64_t ttl) override;
  void erase(std::string_view key) override;
  bool load_versioned(std::string_view key, int64_t now, std::string* data,
                      Version* version) override;
  Commit save_if(std::string_view from, std::string_view to, std::string_view data, int64_t now,
                 int64_t ttl, Version expected) override;
  bool atomic_save_if() const override { return true; }

  bool indexes_principals() const override { return true; }
  void principal_records(std::string_view principal, int64_t now, KeyedRecords* out) override;

 private:
  class Call;
  // One update_one of data, expiry, principal and version (only the version
  // when data is empty: a claim); returns how many documents matched the
  // selector.
  int64_t update(const _bson_t* selector, std::string_view data, int64_t now, int64_t ttl,
                 Version version, bool upsert);

  std::string name_;
  std::string database_, collection_;
  mongoc_uri_t* uri_ = nullptr;
  mongoc_client_pool_t* pool_ = nullptr;
};

}  // namespace sessions::internal
