// RFC 6265 on both sides: reading a Cookie: header and writing Set-Cookie.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sessions::internal {

enum class SameSite { unset, lax, strict, none };

struct CookieOptions {
  std::string path = "/";
  std::string domain;  // empty: host-only cookie
  int64_t max_age = 30 * 86400;  // < 0 deletes, 0 makes a browser-session cookie
  bool secure = false;
  bool http_only = true;
  SameSite same_site = SameSite::lax;
  bool partitioned = false;

  // Applies one named option. Returns false when `name` is not a cookie
  // option; throws Errc::bad_option for a value that is invalid or could
  // inject attributes or headers.
  bool set(std::string_view name, std::string_view value);
  // Throws Errc::bad_option for combinations browsers reject: SameSite=None or
  // Partitioned without Secure.
  void validate() const;
  // What browsers demand of a cookie named `name` (RFC 6265bis section
  // 4.1.3): a __Secure- cookie must be Secure; a __Host- cookie Secure, with
  // Path=/ and no Domain. Browsers drop such a cookie without a word
  // otherwise, which would log everyone out at every request.
  void validate_prefix(std::string_view name) const;
};

// Throws Errc::bad_option unless `name` is an RFC 6265 cookie-name token.
void validate_cookie_name(std::string_view name);

// Appends "name=value; Path=/; ..." (a Set-Cookie header value) to *out. A
// negative max_age emits a deletion: empty value, Max-Age=0 and an Expires in
// the past.
void build_set_cookie(std::string_view name, std::string_view value, const CookieOptions& options,
                      int64_t now, std::string* out);
// The part after the value: "; Path=/; Max-Age=...". Lets a caller write the
// value straight into *out first.
void append_cookie_attributes(const CookieOptions& options, int64_t now, std::string* out);

// The Set-Cookie values a request emits, in order. Buffers are kept, with
// their capacity, when the list is cleared for the next request.
class SetCookieLines {
 public:
  std::string& add() {  // a new, empty line at the end
    if (count_ == lines_.size()) lines_.emplace_back();
    std::string& line = lines_[count_++];
    line.clear();
    return line;
  }
  void truncate(size_t count) { count_ = count < count_ ? count : count_; }
  void clear() { count_ = 0; }
  size_t size() const { return count_; }
  const std::string& operator[](size_t i) const { return lines_[i]; }
  std::string& back() { return lines_[count_ - 1]; }

 private:
  std::vector<std::string> lines_;
  size_t count_ = 0;
};

// The cookies of one Cookie: header. A request looks up one or two names,
// so the header is scanned per lookup rather than split up front. Views point
// into the copy the jar owns.
class CookieJar {
 public:
  // At most this many values per name are tried (a browser sends one per
  // matching path and domain); more are ignored.
  static constexpr size_t kMaxCandidates = 8;
  struct Candidates {
    std::array<std::string_view, kMaxCandidates> values;
    size_t count = 0;
    std::vector<std::string_view> to_vector() const {
      return {values.begin(), values.begin() + count};
    }
  };

  // Throws Errc::header_too_large over SESS_MAX_COOKIE_HEADER bytes.
  explicit CookieJar(std::string_view header) { reset(header); }
  // Takes a new header, reusing the buffer.
  void reset(std::string_view header);
  CookieJar(const CookieJar&) = delete;
  CookieJar& operator=(const CookieJar&) = delete;

  // The values sent under `name`, in header order, quotes removed. With
  // `chunks`, the same pass also sets bit i for every cookie `name.i`
  // (1 <= i < 32) in the header (chunks.h).
  Candidates find(std::string_view name, uint32_t* chunks = nullptr) const;

 private:
  std::string header_;
};

}  // namespace sessions::internal
