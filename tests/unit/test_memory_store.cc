#include <catch2/catch.hpp>

#include <atomic>
#include <thread>

#include "error.h"
#include "memory_store.h"

using namespace sessions::internal;

TEST_CASE("memory store saves, loads, erases and expires") {
  MemoryStore store(100, 4);
  std::string data;
  CHECK_FALSE(store.load("k", 0, &data));
  store.save("k", "v1", 0, 10);
  REQUIRE(store.load("k", 9, &data));
  CHECK(data == "v1");
  store.save("k", "v2", 5, 10);
  REQUIRE(store.load("k", 14, &data));
  CHECK(data == "v2");
  CHECK_FALSE(store.load("k", 15, &data));  // expired at 5 + 10
  store.save("k", "v3", 20, 10);
  store.erase("k");
  CHECK_FALSE(store.load("k", 20, &data));
  store.erase("never-saved");
}

TEST_CASE("memory store evicts the least recently used past max_sessions") {
  MemoryStore store(3, 1);
  std::string data;
  store.save("a", "1", 0, 100);
  store.save("b", "2", 0, 100);
  store.save("c", "3", 0, 100);
  REQUIRE(store.load("a", 1, &data));  // a is now the most recent
  store.save("d", "4", 1, 100);
  CHECK_FALSE(store.load("b", 1, &data));
  CHECK(store.load("a", 1, &data));
  CHECK(store.load("c", 1, &data));
  CHECK(store.load("d", 1, &data));
  CHECK(store.size() == 3);
}

TEST_CASE("memory store collects expired records without being asked") {
  MemoryStore store(1000, 1);
  for (int i = 0; i < 100; ++i) store.save("k" + std::to_string(i), "v", 0, 5);
  CHECK(store.size() == 100);
  store.save("fresh", "v", 10, 5);  // the next write after a second sweeps
  CHECK(store.size() == 1);
}

TEST_CASE("memory store move is atomic and complete") {
  MemoryStore store(100, 8);
  std::string data;
  store.save("old", "v", 0, 100);
  store.move("old", "new", "v2", 1, 100);
  CHECK_FALSE(store.load("old", 1, &data));
  REQUIRE(store.load("new", 1, &data));
  CHECK(data == "v2");
}

TEST_CASE("memory store options come from the URI") {
  OptionList options{{"max_sessions", "10"}, {"shards", "2"}, {"other", "x"}};
  auto store = MemoryStore::open("", &options);
  CHECK(options.size() == 1);  // left for the caller to refuse
  OptionList bad{{"max_sessions", "0"}};
  CHECK_THROWS_AS(MemoryStore::open("", &bad), Error);
  OptionList none;
  CHECK_THROWS_AS(MemoryStore::open("/some/path", &none), Error);
}

TEST_CASE("memory store under 8 threads keeps every thread's data", "[threads]") {
  MemoryStore store(100000, 16);
  std::atomic<int> mismatches{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      std::string data;
      for (int i = 0; i < 5000; ++i) {
        std::string key = "t" + std::to_string(t) + "-" + std::to_string(i % 200);
        std::string value = std::to_string(i);
        store.save(key, value, 0, 100);
        if (!store.load(key, 0, &data) || data != value) ++mismatches;
        store.save("shared", value, 0, 100);  // contended key
        (void)store.load("shared", 0, &data);
        if (i % 50 == 0) store.move(key, key + "m", value, 0, 100);
      }
    });
  }
  for (auto& th : threads) th.join();
  CHECK(mismatches == 0);
}
