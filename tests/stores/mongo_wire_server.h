// A small MongoDB wire-protocol server for the mongodb: store's tests, since
// no registry we can reach packages a MongoDB server. It speaks what the
// real driver (libmongoc) sends to it over TCP: the OP_QUERY handshake and
// OP_MSG with body and document-sequence sections, and answers the commands
// the store uses -- hello/isMaster, ping, endSessions, createIndexes,
// insert, update (with upsert, $set and $unset), find (equality on _id and
// other fields, strings, int64 and null, and a $gt on a date), delete --
// with replies shaped like a MongoDB 6.0 server's, errors
// included. Not a database: documents live in memory, one thread per
// connection.
#pragma once

#include <atomic>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace sessions::testing {

class MongoWireServer {
 public:
  // Listens on 127.0.0.1:port (0: a free port).
  explicit MongoWireServer(int port = 0);
  ~MongoWireServer();
  MongoWireServer(const MongoWireServer&) = delete;
  MongoWireServer& operator=(const MongoWireServer&) = delete;

  int port() const { return port_; }
  std::string uri(const std::string& query = "") const;

  // Closes the listener and every connection (a crash, as clients see it);
  // start() listens again on the same port, with the same documents.
  void stop();
  void start();
  // While paused, requests are read but not answered (a hung server).
  void pause() { paused_ = true; }
  void resume() { paused_ = false; }

  // Documents larger than this are refused with BSONObjectTooLarge (10334).
  void set_max_document_bytes(size_t n) { max_document_bytes_ = n; }

  // What the store left: the collection's documents as canonical extended
  // JSON, and the indexes it created (their specifications, as JSON).
  std::vector<std::string> documents(const std::string& ns);
  std::vector<std::string> indexes(const std::string& ns);
  // Puts a document (given as JSON) straight into a collection.
  void put(const std::string& ns, const std::string& json);

 private:
  struct Collection {
    std::map<std::string, std::vector<uint8_t>> docs;  // _id -> BSON
    std::vector<std::string> indexes;
  };

  void accept_loop();
  void serve(int fd);
  // Answers one command document; the reply as BSON bytes.
  std::vector<uint8_t> command(const std::vector<uint8_t>& body,
                               const std::map<std::string, std::vector<std::vector<uint8_t>>>& seqs);

  int port_ = 0;
  int listen_fd_ = -1;
  std::atomic<bool> running_{false};
  std::atomic<bool> paused_{false};
  size_t max_document_bytes_ = 16 * 1024 * 1024;
  std::thread acceptor_;
  std::mutex mu_;  // guards data_ and connections_
  std::map<std::string, Collection> data_;
  std::vector<int> connections_;
  std::vector<std::thread> workers_;
};

}  // namespace sessions::testing
