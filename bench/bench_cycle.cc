// The request-cycle benchmarks of docs/benchmarks.md, each next to its floor
// measured in the same run:
//
//  1. cookie: cycle through the C ABI -- parse the Cookie header, open the
//     cookie, read 3 values, set 1, seal, build Set-Cookie -- for a session of
//     about 200 bytes, against raw OpenSSL doing only the cryptography and
//     base64 on the same number of bytes (seal + encode, decode + open).
//  2. memory: cycle at 1 and 2 threads, in cycles per second.
//  3. setting many keys in one request: the cost per key at 2,000 and at
//     20,000 keys, which stays flat when setting n keys is linear.
//  4. a 10 KB session (a cart): its cycle on cookie: (chunked) and on
//     memory:, each with and without compression, trials interleaved.
//  5. revocation on cookie:: the cycle of a logged-in session (a principal)
//     checked against revocation stamps (revocation=memory:, stamps cached
//     per process, and with the cache off), next to the same cycle without
//     a revocation store, trials interleaved.
//
// Figures are medians of repeated trials. --quick runs a few iterations only
// (the test suite uses it to check the benchmark still works); --profile N
// URI N runs N cycles on that store and nothing else, for callgrind or perf.
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "workload.h"

namespace {

using namespace bench;

// Median nanoseconds per call of fn over `trials` trials of `iterations`.
template <typename Fn>
double ns_per_op(int trials, int iterations, Fn&& fn) {
  std::vector<double> samples;
  for (int t = 0; t < trials; ++t) {
    auto start = Clock::now();
    for (int i = 0; i < iterations; ++i) fn();
    std::chrono::duration<double, std::nano> elapsed = Clock::now() - start;
    samples.push_back(elapsed.count() / iterations);
  }
  return median(samples);
}

// The floor: what any cookie codec must do, written directly on OpenSSL with
// every shortcut: pre-keyed contexts, a counter nonce, no allocation.
struct Floor {
  EVP_CIPHER_CTX* seal_ctx = EVP_CIPHER_CTX_new();
  EVP_CIPHER_CTX* open_ctx = EVP_CIPHER_CTX_new();
  unsigned char key[32];
  unsigned char nonce[12] = {0};
  uint64_t counter = 0;
  std::vector<unsigned char> plain, sealed, encoded, decoded, opened;

  explicit Floor(size_t bytes) : plain(bytes, 'x'), sealed(bytes + 16), encoded(bytes * 2 + 64),
                                 decoded(bytes * 2 + 64), opened(bytes + 16) {
    RAND_bytes(key, sizeof key);
    EVP_EncryptInit_ex(seal_ctx, EVP_aes_256_gcm(), nullptr, key, nullptr);
    EVP_DecryptInit_ex(open_ctx, EVP_aes_256_gcm(), nullptr, key, nullptr);
  }
  ~Floor() {
    EVP_CIPHER_CTX_free(seal_ctx);
    EVP_CIPHER_CTX_free(open_ctx);
  }

  // The classic calls (EVP_*Init_ex, ctrl for the tag), as OpenSSL's own
  // examples write them; with `openssl3_calls` the cheaper OpenSSL 3 forms
  // that libsessions itself uses (Init_ex2, the tag as a parameter).
  void run(bool openssl3_calls = false) {
    int n = 0, len = int(plain.size());
    std::memcpy(nonce, &++counter, sizeof counter);
    OSSL_PARAM seal_tag[] = {
        OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, sealed.data() + len, 16),
        OSSL_PARAM_construct_end()};
    if (openssl3_calls) EVP_EncryptInit_ex2(seal_ctx, nullptr, nullptr, nonce, nullptr);
    else EVP_EncryptInit_ex(seal_ctx, nullptr, nullptr, nullptr, nonce);
    EVP_EncryptUpdate(seal_ctx, sealed.data(), &n, plain.data(), len);
    EVP_EncryptFinal_ex(seal_ctx, sealed.data() + n, &n);
    if (openssl3_calls) EVP_CIPHER_CTX_get_params(seal_ctx, seal_tag);
    else EVP_CIPHER_CTX_ctrl(seal_ctx, EVP_CTRL_GCM_GET_TAG, 16, sealed.data() + len);
    int chars = EVP_EncodeBlock(encoded.data(), sealed.data(), len + 16);

    EVP_DecodeBlock(decoded.data(), encoded.data(), chars);
    OSSL_PARAM open_tag[] = {
        OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, decoded.data() + len, 16),
        OSSL_PARAM_construct_end()};
    if (openssl3_calls) EVP_DecryptInit_ex2(open_ctx, nullptr, nullptr, nonce, nullptr);
    else EVP_DecryptInit_ex(open_ctx, nullptr, nullptr, nullptr, nonce);
    EVP_DecryptUpdate(open_ctx, opened.data(), &n, decoded.data(), len);
    if (openssl3_calls) EVP_CIPHER_CTX_set_params(open_ctx, open_tag);
    else EVP_CIPHER_CTX_ctrl(open_ctx, EVP_CTRL_GCM_SET_TAG, 16, decoded.data() + len);
    if (EVP_DecryptFinal_ex(open_ctx, opened.data() + n, &n) != 1) {
      std::fprintf(stderr, "floor: tag mismatch\n");
      std::exit(1);
    }
  }
};

}  // namespace

int main(int argc, char** argv) {
  bool quick = argc > 1 && std::strcmp(argv[1], "--quick") == 0;
  if (argc > 3 && std::strcmp(argv[1], "--profile") == 0) {
    sess_store* store = open_store(argv[2]);
    size_t record_bytes = 0;
    std::string header = make_session(store, &record_bytes);
    for (long i = 0, n = std::atol(argv[3]); i < n; ++i) cycle(store, header, i);
    sess_store_close(store);
    return 0;
  }
  const int trials = quick ? 1 : 15;
  const int iterations = quick ? 100 : 50000;

  sess_store* cookie_store = open_store("cookie:");
  size_t record_bytes = 0;
  std::string header = make_session(cookie_store, &record_bytes);
  Floor floor(record_bytes + 12);  // the record and its two timestamps

  // Warm up both, then interleave their trials so they see the same machine.
  int64_t n = 0;
  ns_per_op(1, iterations / 10 + 1, [&] { cycle(cookie_store, header, n++); });
  ns_per_op(1, iterations / 10 + 1, [&] { floor.run(); });
  std::vector<double> cycle_ns, floor_ns, floor3_ns;
  for (int t = 0; t < trials; ++t) {
    cycle_ns.push_back(ns_per_op(1, iterations, [&] { cycle(cookie_store, header, n++); }));
    floor_ns.push_back(ns_per_op(1, iterations, [&] { floor.run(); }));
    floor3_ns.push_back(ns_per_op(1, iterations, [&] { floor.run(true); }));
  }
  double cycle_median = median(cycle_ns), floor_median = median(floor_ns);
  double floor3_median = median(floor3_ns);
  double ratio = cycle_median / floor_median;

  std::printf("libsessions %s benchmark (medians of %d trials)\n\n", sess_version_string(), trials);
  std::printf("cookie: store, full cycle, %zu-byte session record, %zu-byte Cookie header\n",
              record_bytes, header.size());
  std::printf("  libsessions cycle (C ABI)        %8.0f ns/op\n", cycle_median);
  std::printf("  floor: OpenSSL GCM + base64 x2   %8.0f ns/op\n", floor_median);
  std::printf("  ratio                            %8.2fx   (target <= 2.00x: %s)\n", ratio,
              ratio <= 2.0 ? "met" : "NOT met");
  std::printf("  floor with OpenSSL 3 call forms  %8.0f ns/op   (ratio %.2fx; for reference)\n\n",
              floor3_median, cycle_median / floor3_median);

  sess_store* memory_store = open_store("memory:?max_sessions=100000");
  double seconds = quick ? 0.05 : 1.0;
  int mem_trials = quick ? 1 : 7;
  double one = cycle_throughput(memory_store, 1, seconds, mem_trials);
  double two = cycle_throughput(memory_store, 2, seconds, mem_trials);
  std::printf("memory: store, full cycle (load by cookie, read 3, set 1, save, Set-Cookie)\n");
  std::printf("  1 thread                         %10.0f cycles/s\n", one);
  std::printf("  2 threads                        %10.0f cycles/s   (target >= 1,000,000: %s)\n",
              two, two >= 1e6 ? "met" : "NOT met");
  std::printf("  scaling 2 vs 1 thread            %10.2fx\n", two / one);

  // Setting n keys: flat per-key cost means O(n) (it was O(n^2) before 0.2).
  auto ns_per_key = [&](int keys) {
    std::vector<double> samples;
    std::vector<std::string> names;
    for (int i = 0; i < keys; ++i) names.push_back("key" + std::to_string(i));
    for (int t = 0; t < (quick ? 1 : 5); ++t) {
      sess_request* req = nullptr;
      sess_session* s = nullptr;
      sess_request_begin("", 0, &req);
      sess_request_session(req, memory_store, "many", &s);
      auto start = Clock::now();
      for (int i = 0; i < keys; ++i) sess_set_int(s, names[size_t(i)].c_str(), i);
      std::chrono::duration<double, std::nano> elapsed = Clock::now() - start;
      samples.push_back(elapsed.count() / keys);
      sess_request_free(req);
    }
    return median(samples);
  };
  const double small = ns_per_key(2000), large = ns_per_key(quick ? 4000 : 20000);
  std::printf("\nsetting n keys in one request (memory:, sess_set_int)\n");
  std::printf("  2,000 keys                       %8.0f ns/key\n", small);
  std::printf("  20,000 keys                      %8.0f ns/key   (ratio %.2fx; 1.0 = linear, 10 = quadratic)\n",
              large, large / small);

  // A 10 KB cart, with and without compression.
  struct Big {
    const char* label = nullptr;
    const char* uri = nullptr;
    sess_store* store = nullptr;
    std::string header;
    std::vector<double> ns;
  };
  Big big[4];
  const char* const configs[4][2] = {
      {"cookie: compress=off (4 chunks)", "cookie:?compress=off&max_chunks=4"},
      {"cookie: compress=on", "cookie:?compress=on"},
      {"memory: compress=off", "memory:?compress=off"},
      {"memory: compress=auto", "memory:?compress=auto"},
  };
  for (int i = 0; i < 4; ++i) {
    big[i].label = configs[i][0];
    big[i].uri = configs[i][1];
  }
  for (Big& b : big) {
    b.store = open_store(b.uri);
    b.header = make_big_session(b.store, 10000);
    ns_per_op(1, iterations / 100 + 1, [&] { cycle(b.store, b.header, n++); });
  }
  for (int t = 0; t < trials; ++t)
    for (Big& b : big)
      b.ns.push_back(ns_per_op(1, iterations / 20 + 1, [&] { cycle(b.store, b.header, n++); }));
  std::printf("\n10 KB session (a cart of JSON items), full cycle\n");
  for (Big& b : big) {
    std::printf("  %-32s %8.0f ns/op   %5zu-byte Cookie header\n", b.label, median(b.ns),
                b.header.size());
    sess_store_close(b.store);
  }

  // Revocation on vs off: the same logged-in session, trials interleaved.
  Big revocation[3];
  const char* const revocation_configs[3][2] = {
      {"revocation off", "cookie:"},
      {"revocation=memory: (cached 5 s)", "cookie:?revocation=memory:"},
      {"revocation=memory: cache off", "cookie:?revocation=memory:&revocation_cache=0"},
  };
  for (int i = 0; i < 3; ++i) {
    Big& b = revocation[i];
    b.label = revocation_configs[i][0];
    b.store = open_store(revocation_configs[i][1]);
    size_t unused = 0;
    b.header = make_session(b.store, &unused, "user:123456");
    ns_per_op(1, iterations / 10 + 1, [&] { cycle(b.store, b.header, n++); });
  }
  for (int t = 0; t < trials; ++t)
    for (Big& b : revocation)
      b.ns.push_back(ns_per_op(1, iterations, [&] { cycle(b.store, b.header, n++); }));
  std::printf("\ncookie: cycle of a logged-in session (a principal), revocation on vs off\n");
  const double off = median(revocation[0].ns);
  for (Big& b : revocation) {
    const double ns = median(b.ns);
    std::printf("  %-32s %8.0f ns/op   %5.1f%% vs off%s\n", b.label, ns, 100.0 * (ns / off - 1),
                &b == &revocation[1] ? (ns <= off * 1.10 ? "   (target <= +10%: met)"
                                                         : "   (target <= +10%: NOT met)")
                                     : "");
    sess_store_close(b.store);
  }

  sess_store_close(cookie_store);
  sess_store_close(memory_store);
  return 0;
}
