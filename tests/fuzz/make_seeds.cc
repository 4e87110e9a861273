// Writes the seed corpora of the fuzz harnesses: valid inputs of each, so
// that the fuzzer starts from what the library really reads.
//
//   make_seeds DIR      writes DIR/<harness>/<seed> for every harness
//
// Cookies are sealed with the harnesses' fixed secrets (fuzz_common.h) and
// a max age of 0 or one that outlives fuzz::kNow, so they open in the
// harnesses for good. AES-GCM nonces are random: each run writes other bytes
// for the same seeds. scripts/fuzz.sh --remake-seeds runs it on
// tests/fuzz/corpus.
#include <sys/stat.h>

#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "base64url.h"
#include "codec.h"
#include "fuzz_common.h"
#include "compression.h"
#include "record.h"
#include "value.h"

using sessions::internal::Array;
using sessions::internal::Bytes;
using sessions::internal::Codec;
using sessions::internal::CodecMode;
using sessions::internal::Map;
using sessions::internal::SessionRecord;
using sessions::internal::Value;

namespace {

std::string root;
size_t written = 0;

void make_dir(const std::string& path) {
  if (::mkdir(path.c_str(), 0755) != 0 && errno != EEXIST) {
    std::perror(path.c_str());
    std::exit(1);
  }
}

void write(const std::string& harness, const std::string& name, const std::string& bytes) {
  make_dir(root + "/" + harness);
  const std::string path = root + "/" + harness + "/" + name;
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f || std::fwrite(bytes.data(), 1, bytes.size(), f) != bytes.size() || std::fclose(f) != 0) {
    std::perror(path.c_str());
    std::exit(1);
  }
  ++written;
}

// ---- Values and records ---------------------------------------------------

Value nested(int containers) {
  Value v(int64_t{7});
  for (int i = 0; i < containers; ++i) v = (i % 2) ? Value(Map{{"k", v}}) : Value(Array{v});
  return v;
}

Map every_type() {
  return Map{
      {"nil", Value()},
      {"true", Value(true)},
      {"false", Value(false)},
      {"zero", Value(int64_t{0})},
      {"small", Value(int64_t{-32})},
      {"int8", Value(int64_t{-100})},
      {"uint16", Value(int64_t{4242})},
      {"int64_max", Value(std::numeric_limits<int64_t>::max())},
      {"int64_min", Value(std::numeric_limits<int64_t>::min())},
      {"double", Value(3.25)},
      {"negative_zero", Value(-0.0)},
      {"tiny", Value(5e-324)},
      {"empty_string", Value("")},
      {"utf8", Value("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x8d\xaa")},
      {"bytes", Value(Bytes{std::string("\x00\x01\x80\xff", 4)})},
      {"empty_array", Value(Array{})},
      {"empty_map", Value(Map{})},
      {"cart", Value(Array{Value(Map{{"sku", Value("A-1001")}, {"qty", Value(int64_t{2})}}),
                           Value(Map{{"sku", Value("B-7")}, {"qty", Value(int64_t{1})},
                                     {"gift", Value(true)}})})},
      {"mixed", Value(Array{Value(), Value(1.5), Value("s"), Value(Bytes{"b"}), Value(Array{Value(false)})})},
  };
}

struct RecordSpec {
  std::string name;
  int64_t created = fuzz::kNow - 86400;
  int64_t last_seen = fuzz::kNow - 60;
  std::optional<int64_t> max_age;
  Map values;
  Map flashes;
};

RecordSpec spec(const char* name) {
  RecordSpec r;
  r.name = name;
  return r;
}

std::vector<RecordSpec> records() {
  std::vector<RecordSpec> out;
  out.push_back(spec("empty"));
  {
    RecordSpec r = spec("user");
    r.values = {{"user_id", Value(int64_t{42})}, {"username", Value("ann")}};
    out.push_back(r);
  }
  {
    RecordSpec r = spec("every-type");
    r.values = every_type();
    out.push_back(r);
  }
  {
    RecordSpec r = spec("flashes");
    r.values = {{"count", Value(int64_t{3})}};
    r.flashes = {{"_flash", Value(Array{Value("Saved."), Value("Welcome back")})},
                 {"error", Value(Array{Value(Map{{"field", Value("email")}, {"code", Value(int64_t{17})}})})}};
    out.push_back(r);
  }
  {
    RecordSpec r = spec("remember-me");
    r.max_age = 90 * 86400;
    r.values = {{"user_id", Value(int64_t{7})}};
    out.push_back(r);
  }
  {
    RecordSpec r = spec("browser-session");
    r.max_age = 0;
    r.values = {{"csrf", Value(Bytes{std::string(32, '\x11')})}};
    out.push_back(r);
  }
  {
    RecordSpec r = spec("many-keys");  // past the 16 entries that are scanned pairwise
    for (int i = 0; i < 20; ++i) r.values.emplace("key" + std::to_string(100 + i), Value(int64_t{i}));
    out.push_back(r);
  }
  {
    RecordSpec r = spec("deep");
    r.values = {{"deep", nested(sessions::internal::kMaxDepth)}, {"shallow", nested(3)}};
    out.push_back(r);
  }
  {
    RecordSpec r = spec("flashes-only");
    r.flashes = {{"_flash", Value(Array{Value("a"), Value("b"), Value("c")})}};
    out.push_back(r);
  }
  {
    RecordSpec r = spec("integer-widths");  // each side of every MessagePack integer form
    const int64_t edges[] = {127, 128, 255, 256, 65535, 65536, 4294967295, 4294967296,
                             -32, -33, -128, -129, -32768, -32769, -2147483648LL, -2147483649LL};
    for (int64_t e : edges) r.values.emplace("i" + std::to_string(e), Value(e));
    out.push_back(r);
  }
  {
    RecordSpec r = spec("string-widths");  // fixstr/str8/str16 and bin8/bin16 boundaries
    for (size_t n : {31, 32, 255, 256}) r.values.emplace("s" + std::to_string(n), Value(std::string(n, 's')));
    for (size_t n : {255, 256}) r.values.emplace("b" + std::to_string(n), Value(Bytes{std::string(n, 'b')}));
    out.push_back(r);
  }
  {
    RecordSpec r = spec("idle-and-old");  // past fuzz_record's idle (1h) and absolute (30d) timeouts
    r.created = fuzz::kNow - 40 * 86400;
    r.last_seen = fuzz::kNow - 2 * 3600;
    r.values = {{"user_id", Value(int64_t{9})}};
    out.push_back(r);
  }
  {
    RecordSpec r = spec("clock-skew");  // saved by a server whose clock is ahead
    r.created = r.last_seen = fuzz::kNow + 3600;
    r.values = {{"n", Value(int64_t{1})}};
    out.push_back(r);
  }
  {
    RecordSpec r = spec("epoch-and-longest-max-age");
    r.created = r.last_seen = 0;
    r.max_age = int64_t(400) * 365 * 86400;
    out.push_back(r);
  }
  {
    RecordSpec r = spec("long-values");
    r.values = {{std::string(255, 'k'), Value(std::string(600, 'v'))},
                {"blob", Value(Bytes{std::string(300, '\xab')})},
                {"\xc3\xa9t\xc3\xa9", Value("unicode key")}};
    out.push_back(r);
  }
  return out;
}

std::string encode(const RecordSpec& spec) {
  SessionRecord r;
  r.created = spec.created;
  r.last_seen = spec.last_seen;
  r.max_age = spec.max_age;
  for (const auto& [key, value] : spec.values) r.values.set(key, value);
  for (const auto& [kind, list] : spec.flashes) r.flashes()[kind] = list;
  std::string out;
  sessions::internal::encode_record(r, &out);
  return out;
}

std::string seal(const Codec& codec, const std::string& name, const std::string& payload, int64_t at,
                 int64_t max_age) {
  std::string out;
  codec.encode(name, payload, at, max_age, &out);
  return out;
}

// ---- Per harness ------------------------------------------------------------

void record_seeds() {
  for (const auto& r : records()) {
    write("fuzz_record", r.name, encode(r));
    std::string compressed;
    sessions::internal::compress_record(encode(r), &compressed);
    write("fuzz_record", r.name + "-zstd", compressed);
    // With an identity header: a principal, a CSRF secret, metadata.
    sessions::internal::Identity identity;
    identity.principal = "user:42";
    identity.auth_us = fuzz::kNow * 1000000;
    identity.csrf_secret.assign(sessions::internal::Identity::kCsrfSecretSize, '\x5a');
    identity.metadata = {{"ip", "192.0.2.1"}, {"user_agent", "Mozilla/5.0"}};
    std::string with_identity;
    sessions::internal::encode_identity(identity, &with_identity);
    write("fuzz_record", r.name + "-identity", with_identity + encode(r));
    write("fuzz_record", r.name + "-identity-zstd", with_identity + compressed);
  }
}

void codec_seeds() {
  const std::string& name = fuzz::kCodecCookieName;
  const std::string user = encode(records()[1]);
  const std::string all = encode(records()[2]);
  const std::string flashes = encode(records()[3]);
  const std::string id(32, '\x5a');
  for (auto mode : {CodecMode::aes_gcm, CodecMode::hmac_sha256}) {
    const std::string m = mode == CodecMode::aes_gcm ? "gcm-" : "hmac-";
    const Codec current(mode, {fuzz::kSecret});
    const Codec old(mode, {fuzz::kOldSecret});
    const Codec foreign(mode, {fuzz::kForeignSecret});
    write("fuzz_codec_open", m + "empty-record", seal(current, name, encode(records()[0]), fuzz::kNow, 0));
    write("fuzz_codec_open", m + "user", seal(current, name, user, fuzz::kNow - 10, 30 * 86400));
    write("fuzz_codec_open", m + "every-type", seal(current, name, all, fuzz::kNow - 10, 0));
    write("fuzz_codec_open", m + "flashes", seal(current, name, flashes, fuzz::kNow, 3600));
    write("fuzz_codec_open", m + "session-id", seal(current, name, id, fuzz::kNow - 30, 86400));
    write("fuzz_codec_open", m + "rotated-key", seal(old, name, user, fuzz::kNow - 10, 0));
    write("fuzz_codec_open", m + "unknown-key", seal(foreign, name, user, fuzz::kNow - 10, 0));
    write("fuzz_codec_open", m + "expired", seal(current, name, user, fuzz::kNow - 7200, 3600));
    write("fuzz_codec_open", m + "other-name", seal(current, "other", user, fuzz::kNow, 0));
    std::string tampered = seal(current, name, user, fuzz::kNow, 0);
    tampered[tampered.size() / 2] = tampered[tampered.size() / 2] == 'A' ? 'B' : 'A';
    write("fuzz_codec_open", m + "tampered", tampered);
  }
  write("fuzz_codec_open", "not-base64", "not base64!");
  write("fuzz_codec_open", "short", "AQID");
  write("fuzz_codec_open", "empty", "");
}

void cookie_header_seeds() {
  const Codec gcm(CodecMode::aes_gcm, {fuzz::kSecret});
  const Codec hmac(CodecMode::hmac_sha256, {fuzz::kSecret});
  const auto specs = records();
  const std::string g = fuzz::kGcmCookie, h = fuzz::kHmacCookie, m = fuzz::kMemCookie;
  const std::string& mem = fuzz::kMemPlaceholder;
  // Sealed with max age 0: they open whatever the clock says.
  auto sg = [&](size_t i) { return seal(gcm, g, encode(specs[i]), fuzz::kNow, 0); };
  auto sh = [&](size_t i) { return seal(hmac, h, encode(specs[i]), fuzz::kNow, 0); };
  const char* out = "fuzz_cookie_header";
  write(out, "empty", "");
  write(out, "gcm-user", g + "=" + sg(1));
  write(out, "hmac-user", h + "=" + sh(1));
  write(out, "mem", m + "=" + mem);
  write(out, "all-three", g + "=" + sg(2) + "; " + h + "=" + sh(3) + "; " + m + "=" + mem);
  write(out, "gcm-every-type", g + "=" + sg(2));
  write(out, "hmac-flashes", h + "=" + sh(3));
  write(out, "gcm-remember-me", g + "=" + sg(4));
  write(out, "hmac-browser-session", h + "=" + sh(5));
  write(out, "gcm-many-keys", g + "=" + sg(6));
  write(out, "hmac-deep", h + "=" + sh(7));
  write(out, "quoted-and-spaced", "  " + g + " = \"" + sg(1) + "\" ;" + h + "=\"" + sh(1) + "\"");
  write(out, "second-candidate", g + "=garbage; " + g + "=" + sg(1) + "; " + m + "=x; " + m + "=" + mem);
  write(out, "among-others", "theme=dark; _ga=GA1.2.3.4; " + g + "=" + sg(0) + "; lang=en-GB; " + m + "=" + mem);
  write(out, "moved-to-another-name", h + "=" + sg(1) + "; " + g + "=" + sh(1) + "; " + g + "=" + mem);
  write(out, "no-values", g + "; " + h + "=; =" + m + ";;");
  // Chunked (chunks.h): NAME=3.<piece>, NAME.1, NAME.2, in and out of order.
  const std::string whole = sg(6);
  const size_t third = whole.size() / 3;
  const std::string p0 = whole.substr(0, third), p1 = whole.substr(third, third),
                    p2 = whole.substr(2 * third);
  write(out, "gcm-chunked", g + "=3." + p0 + "; " + g + ".1=" + p1 + "; " + g + ".2=" + p2);
  write(out, "gcm-chunked-shuffled", g + ".2=" + p2 + "; " + g + "=3." + p0 + "; " + g + ".1=" + p1 +
                                         "; " + g + ".7=stale");
  std::string compressed;
  sessions::internal::compress_record(encode(specs[2]), &compressed);
  write(out, "gcm-compressed", g + "=" + seal(gcm, g, compressed, fuzz::kNow, 0));
}

void json_seeds() {
  const char* docs[][2] = {
      {"null", "null"},
      {"true", "true"},
      {"int", "-42"},
      {"int64-max", "9223372036854775807"},
      {"int64-min", "-9223372036854775808"},
      {"double", "3.25e-7"},
      {"negative-zero", "-0.0"},
      {"big-double", "1.7976931348623157e308"},
      {"string", "\"caf\\u00e9 \\ud83c\\udf6a \\\"quoted\\\" \\\\ \\/ \\b\\f\\n\\r\\t\""},
      {"utf8-string", "\"caf\xc3\xa9 \xe2\x82\xac\""},
      {"empty-containers", "[[],{},\"\",[{}]]"},
      {"cart", "[{\"sku\":\"A-1001\",\"qty\":2},{\"sku\":\"B-7\",\"qty\":1,\"gift\":true}]"},
      {"object", "{\"user_id\":42,\"name\":\"ann\",\"roles\":[\"admin\",\"dev\"],\"meta\":{\"a\":null,\"b\":1.5}}"},
      {"repeated-key", "{\"a\":1,\"a\":2}"},
      {"whitespace", " \t\r\n[ 1 , 2 ]\n "},
      {"unicode-keys", "{\"\\u00e9\":1,\"\xe2\x82\xac\":2,\"\":3}"},
  };
  for (const auto& d : docs) write("fuzz_json", d[0], d[1]);
  std::string deep_array(sessions::internal::kMaxDepth, '['), deep_map;
  deep_array += std::string(sessions::internal::kMaxDepth, ']');
  for (int i = 0; i < sessions::internal::kMaxDepth; ++i) deep_map += "{\"k\":";
  deep_map += "1" + std::string(sessions::internal::kMaxDepth, '}');
  write("fuzz_json", "deep-arrays", deep_array);
  write("fuzz_json", "deep-maps", deep_map);
  write("fuzz_json", "every-type", sessions::internal::to_json(Value(every_type())));
}

void msgpack_seeds() {
  const Map all = every_type();
  for (const auto& [key, value] : all) write("fuzz_msgpack", "value-" + key, sessions::internal::to_msgpack(value));
  write("fuzz_msgpack", "every-type", sessions::internal::to_msgpack(Value(all)));
  write("fuzz_msgpack", "deep", sessions::internal::to_msgpack(nested(sessions::internal::kMaxDepth)));
  // Forms msgpack-c never writes for these values, which readers must take.
  const std::pair<const char*, std::string> forms[] = {
      {"uint8", std::string("\xcc\x05", 2)},
      {"uint64", std::string("\xcf\x00\x00\x00\x00\x00\x00\x00\x05", 9)},
      {"int16", std::string("\xd1\xff\xfe", 3)},
      {"float32", std::string("\xca\x40\x49\x0f\xdb", 5)},
      {"str8", std::string("\xd9\x03" "abc", 5)},
      {"str16", std::string("\xda\x00\x03" "abc", 6)},
      {"str32", std::string("\xdb\x00\x00\x00\x03" "abc", 8)},
      {"bin16", std::string("\xc5\x00\x02\x00\xff", 5)},
      {"bin32", std::string("\xc6\x00\x00\x00\x02\x00\xff", 7)},
      {"array16", std::string("\xdc\x00\x02\xc0\xc3", 5)},
      {"array32", std::string("\xdd\x00\x00\x00\x02\xc0\xc2", 7)},
      {"map16", std::string("\xde\x00\x01\xa1k\x01", 6)},
      {"map32", std::string("\xdf\x00\x00\x00\x01\xa1k\x01", 8)},
  };
  for (const auto& [name, bytes] : forms) write("fuzz_msgpack", std::string("form-") + name, bytes);
}

void store_uri_seeds() {
  const std::string secret = "secret:" + std::string(40, 's');
  const char* uris[][2] = {
      {"cookie", "cookie:"},
      {"cookie-options", "cookie:?codec=hmac-sha256&max_age=7d&secure=true&same_site=none&partitioned=on"},
      {"memory", "memory:?max_sessions=100000&shards=64&idle_timeout=30m&absolute_timeout=1d"},
      {"file", "file:///var/lib/app/sessions?fsync=true&gc_interval=5m&hash_keys=true"},
      {"redis", "redis://127.0.0.1:6379/0?prefix=session:&pool=16&timeout_ms=1000&connect_timeout_ms=500"},
      {"redis-credentials", "redis://app:pa%40ss%3Aword@cache.example.com:6380/3"},
      {"redis-ipv6", "redis://[::1]:6379?db=2"},
      {"redis-unix", "redis+unix:///run/redis/redis.sock?db=1&user=app&password=secret"},
      {"redis-sentinel", "redis+sentinel://:data@s1:26379,s2,[::1]:26380/mymaster/2?sentinel_user=u&"
                         "sentinel_password=p&min_replicas=1&replica_timeout_ms=200"},
      {"redis-cluster", "redis+cluster://app:pw@h1:7000,h2:7001,h3?pool=4&timeout_ms=5000&min_replicas=1"},
      {"memcached", "memcached://h1:11211,h2:11211,[::1]?prefix=session:&pool=16&timeout_ms=250"},
      {"sqlite", "sqlite:///var/lib/app/sessions.db?table=sessions&busy_timeout_ms=5000&synchronous=normal&gc_interval=1m"},
      {"postgresql", "postgresql://app@db.example.com:5432/app?table=sessions&pool=16&sslmode=disable&connect_timeout_ms=1000"},
      {"postgres-multihost", "postgres://u:p@h1:5432,h2:5433/db?target_session_attrs=read-write"},
      {"mongodb", "mongodb://mongo.example.com:27017/app?collection=sessions&timeout_ms=500&replicaSet=rs0"},
      {"mongodb-srv", "mongodb+srv://cluster0.example.com/app?collection=s"},
  };
  for (const auto& u : uris) write("fuzz_store_uri", u[0], u[1]);
  write("fuzz_store_uri", "config-options",
        "memory:\nidle_timeout=30m\nabsolute_timeout=7d\nmax_data_bytes=65536\nhash_keys=yes\n"
        "path=/app\ndomain=example.com\nhttp_only=false\nsame_site=strict");
  write("fuzz_store_uri", "config-overrides-uri", "redis://localhost?pool=4\npool=32\nprefix=app:\ndb=5");
  write("fuzz_store_uri", "rotated-secrets", "cookie:\n" + secret + "\nsecret:" + std::string(32, 'o'));
  write("fuzz_store_uri", "short-secret", "cookie:\nsecret:short");
  write("fuzz_store_uri", "backend-option-elsewhere", "cookie:?max_sessions=5");
  write("fuzz_store_uri", "unknown-scheme", "gopher://example.com");
}

void cookie_options_seeds() {
  const char* inputs[][2] = {
      {"defaults", "session"},
      {"everything", "session\npath=/app\ndomain=example.com\nmax_age=7d\nsecure=true\nhttp_only=false\n"
                     "same_site=strict\npartitioned=true"},
      {"delete", "sid\nmax_age=-1\ndomain=.example.org"},
      {"browser-session", "sid\nmax_age=0\nsame_site=unset"},
      {"same-site-none", "id\nsame_site=None\nsecure=yes"},
      {"host-prefix", "__Host-id\npath=/\nsecure=on\nhttp_only=1"},
      {"longest-max-age", "x\nmax_age=146000d"},
      {"units", "x\nmax_age=90\nmax_age=15m\nmax_age=12h"},
      {"refused-path", "s\npath=no-slash\npath=/a;b"},
      {"refused-domain", "s\ndomain=exa mple.com"},
      {"none-without-secure", "s\nsame_site=none"},
      {"unknown-option", "s\ncodec=aes-gcm\nLax"},
      {"longest-in-seconds", "x\nmax_age=12614400000"},
      {"longest-deletion", "x\nmax_age=-12614400000"},
      {"path-characters", "x\npath=/a/b/c-d_e.f~g%20h:@!$&'()*+,="},
      {"empty-domain", "x\ndomain=example.com\ndomain="},
      {"all-off", "x\nsecure=false\nhttp_only=no\npartitioned=0\nsame_site=lax"},
      {"override-order", "x\nsecure=on\nsame_site=none\nsecure=off"},
  };
  for (const auto& in : inputs) write("fuzz_cookie_options", in[0], in[1]);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
    return 2;
  }
  root = argv[1];
  make_dir(root);
  record_seeds();
  codec_seeds();
  cookie_header_seeds();
  json_seeds();
  msgpack_seeds();
  store_uri_seeds();
  cookie_options_seeds();
  std::printf("wrote %zu seeds under %s\n", written, root.c_str());
  return 0;
}
