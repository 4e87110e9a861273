#include "file_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <optional>
#include <unordered_set>
#include <utility>
#include <vector>

#include "base64url.h"
#include "error.h"
#include "builtin_stores.h"
#include "random.h"
#include "record.h"

namespace sessions::internal {
namespace {

constexpr std::string_view kTempPrefix = ".tmp-";

[[noreturn]] void fail_errno(const std::string& what, int err) {
  fail(Errc::store_unavailable, "file store: " + what + ": " + std::strerror(err));
}

// Keys are base64url IDs or their hashes. Checked anyway: nothing that
// reaches a path may hold '/', '.' or NUL, so no name escapes the directory.
bool is_safe_key(std::string_view key) {
  if (key.empty() || key.size() > 128) return false;
  for (char c : key)
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
          c == '_'))
      return false;
  return true;
}

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

bool write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(size_t(n));
  }
  return true;
}

// Which lock file guards `key`. FNV-1a, not std::hash: every process that
// shares the directory, whatever library built it, must pick the same one.
size_t stripe_of(std::string_view key) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (char c : key) h = (h ^ static_cast<unsigned char>(c)) * 0x100000001b3ull;
  return size_t(h % FileStore::kLockStripes);
}

std::string lock_name(size_t stripe) {
  char name[8];
  std::snprintf(name, sizeof name, "%02zu", stripe);
  return name;
}

// A random temporary name for `name`, in the same directory.
std::string temp_name(const std::string& name) {
  unsigned char nonce[8];
  random_bytes(nonce, sizeof nonce);
  std::string temp(kTempPrefix);
  base64url_encode(std::string_view(reinterpret_cast<char*>(nonce), sizeof nonce), &temp);
  return temp + "-" + name;
}

// A principal's sidecar file: 43 base64url characters of its SHA-256, so
// any principal (1 to 255 bytes) makes a safe name of one length.
std::string sidecar_name(std::string_view principal) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  if (!EVP_Digest(principal.data(), principal.size(), digest, &size, EVP_sha256(), nullptr))
    fail(Errc::internal, "SHA-256 failed");
  std::string name;
  base64url_encode(std::string_view(reinterpret_cast<char*>(digest), size), &name);
  return name;
}

}  // namespace

// One principal's sidecar, locked from construction to destruction. The
// lock is an flock on the sidecar itself, which is replaced by renames and
// removed when empty: once locked, the file must still be the one at the
// path (same inode), or it was replaced or removed while this one waited,
// and the locker opens the path again. Like a stripe lock, it is a new open
// file description each time, so it excludes this process's threads too.
class FileStore::Sidecar {
 public:
  struct Line {
    int64_t expires;  // Unix seconds
    std::string key;
  };

  // `name`: sidecar_name(). With `create`, makes the directory and an empty
  // sidecar when missing; without, found() is false when there is none.
  Sidecar(const FileStore& store, const std::string& name, bool create)
      : store_(store), path_(std::string(kPrincipalDir) + "/" + name) {
    for (int attempt = 0;; ++attempt) {
      if (attempt == 100) fail_errno("cannot lock " + full_path(), EAGAIN);
      int fd = ::openat(store_.dir_fd_, path_.c_str(),
                        O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | (create ? O_CREAT : 0),
                        0600);
      if (fd < 0) {
        if (errno != ENOENT) fail_errno("cannot open " + full_path(), errno);
        if (!create) return;
        if (::mkdirat(store_.dir_fd_, kPrincipalDir, 0700) != 0 && errno != EEXIST)
          fail_errno("cannot create directory " + store_.dir_ + "/" + kPrincipalDir, errno);
        continue;
      }
      Fd file(fd);
      while (::flock(fd, LOCK_EX) != 0)
        if (errno != EINTR) fail_errno("cannot lock " + full_path(), errno);
      struct stat at_path;
      if (::fstat(fd, &stat_) != 0) fail_errno("cannot stat " + full_path(), errno);
      if (!S_ISREG(stat_.st_mode)) fail_errno(full_path() + " is not a file", EINVAL);
      if (::fstatat(store_.dir_fd_, path_.c_str(), &at_path, AT_SYMLINK_NOFOLLOW) == 0) {
        if (at_path.st_ino == stat_.st_ino && at_path.st_dev == stat_.st_dev) {
          fd_ = file.release();
          return;
        }
      } else if (errno != ENOENT) {
        fail_errno("cannot stat " + full_path(), errno);
      }
      // Replaced or removed while this one waited: again.
    }
  }
  ~Sidecar() {
    if (fd_ >= 0) ::close(fd_);  // and the lock with it
  }
  Sidecar(const Sidecar&) = delete;
  Sidecar& operator=(const Sidecar&) = delete;

  bool found() const { return fd_ >= 0; }
  int64_t mtime() const { return int64_t(stat_.st_mtime); }
  // True when the last read() skipped lines: the file needs rewriting.
  bool skipped() const { return skipped_; }

  // Its lines, each key once; lines that do not parse are skipped.
  std::vector<Line> read() {
    skipped_ = false;
    std::string text;
    char buf[8192];
    for (off_t offset = 0;;) {
      ssize_t n = ::pread(fd_, buf, sizeof buf, offset);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) fail_errno("cannot read " + full_path(), errno);
      if (n == 0) break;
      text.append(buf, size_t(n));
      offset += n;
    }
    std::vector<Line> lines;
    std::unordered_set<std::string_view> seen;
    for (size_t start = 0; start < text.size();) {
      size_t end = text.find('\n', start);
      if (end == std::string::npos) end = text.size();  // a line cut short: not ours
      const std::string_view line(text.data() + start, end - start);
      start = end + 1;
      const size_t space = line.find(' ');
      int64_t expires = 0;
      const char* digits_end = line.data() + (space == std::string_view::npos ? 0 : space);
      auto [p, ec] = std::from_chars(line.data(), digits_end, expires);
      const std::string_view key =
          space == std::string_view::npos ? std::string_view() : line.substr(space + 1);
      if (end == text.size() || ec != std::errc() || p != digits_end || !is_safe_key(key) ||
          !seen.insert(key).second) {
        skipped_ = true;
        continue;
      }
      lines.push_back({expires, std::string(key)});
    }
    return lines;
  }

  // Replaces the sidecar with `lines` (a new file renamed over it, whose
  // mtime is their latest expiry), or removes it when there are none. With
  // `pending`, the new file is only written, and its name left there for
  // install(): a commit renames its record into place first.
  void write(const std::vector<Line>& lines, std::string* pending = nullptr) {
    if (lines.empty()) {
      if (::unlinkat(store_.dir_fd_, path_.c_str(), 0) != 0 && errno != ENOENT)
        fail_errno("cannot remove " + full_path(), errno);
      return;
    }
    std::string text;
    int64_t latest = 0;
    for (const Line& line : lines) {
      text += std::to_string(line.expires) + " " + line.key + "\n";
      latest = std::max(latest, line.expires);
    }
    const std::string temp =
        std::string(kPrincipalDir) + "/" + temp_name(path_.substr(path_.rfind('/') + 1));
    Fd fd(::openat(store_.dir_fd_, temp.c_str(),
                   O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (fd.get() < 0)
      fail_errno("cannot create a file in " + store_.dir_ + "/" + kPrincipalDir, errno);
    auto abandon = [&](const std::string& what) {
      int err = errno;
      ::unlinkat(store_.dir_fd_, temp.c_str(), 0);
      fail_errno(what, err);
    };
    const timespec times[2] = {{time_t(std::time(nullptr)), 0}, {time_t(latest), 0}};
    if (!write_all(fd.get(), text) || ::futimens(fd.get(), times) != 0 ||
        (store_.options_.fsync && ::fsync(fd.get()) != 0) || ::close(fd.release()) != 0)
      abandon("cannot write " + store_.dir_ + "/" + temp);
    if (pending) {
      *pending = temp;
      return;
    }
    install(temp);
  }

  // Renames a file written by write(lines, &pending) over the sidecar.
  void install(const std::string& temp) {
    if (::renameat(store_.dir_fd_, temp.c_str(), store_.dir_fd_, path_.c_str()) != 0) {
      int err = errno;
      ::unlinkat(store_.dir_fd_, temp.c_str(), 0);
      fail_errno("cannot rename into " + full_path(), err);
    }
    if (store_.options_.fsync) {
      Fd dir(::openat(store_.dir_fd_, kPrincipalDir, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
      if (dir.get() < 0 || ::fsync(dir.get()) != 0)
        fail_errno("cannot fsync " + store_.dir_ + "/" + kPrincipalDir, errno);
    }
  }

 private:
  std::string full_path() const { return store_.dir_ + "/" + path_; }

  const FileStore& store_;
  std::string path_;  // relative to dir_fd_
  int fd_ = -1;
  struct stat stat_ = {};
  bool skipped_ = false;
};

// Exclusive locks on the stripes of one or two keys, held until destroyed.
// flock(2) excludes other processes and, since each lock opens the file
// anew (a lock belongs to an open file description), other threads of this
// one too; a descriptor opened once and shared, or inherited by fork(),
// would exclude neither. Two stripes are taken in increasing order, so two
// moves between the same stripes cannot wait on each other. A lock ends
// with its process: a crash leaves none behind.
class FileStore::StripeLocks {
 public:
  StripeLocks(const FileStore& store, std::string_view a, std::string_view b) {
    size_t first = stripe_of(a), second = stripe_of(b);
    if (first > second) std::swap(first, second);
    fds_[0] = lock(store, first);
    if (second != first) fds_[1] = lock(store, second);
  }
  ~StripeLocks() {
    for (int fd : fds_)
      if (fd >= 0) ::close(fd);  // and the lock with it
  }
  StripeLocks(const StripeLocks&) = delete;
  StripeLocks& operator=(const StripeLocks&) = delete;

 private:
  int lock(const FileStore& store, size_t stripe) {
    const std::string name = lock_name(stripe);
    const std::string path = store.dir_ + "/" + kLockDir + "/" + name;
    // O_CREAT: a lock file someone removed while no process held it is
    // simply made again.
    int fd = ::openat(store.locks_fd_, name.c_str(), O_RDONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW,
                      0600);
    if (fd < 0) fail_errno("cannot open lock file " + path, errno);
    while (::flock(fd, LOCK_EX) != 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      fail_errno("cannot lock " + path, err);
    }
    return fd;
  }

  int fds_[2] = {-1, -1};
};

std::unique_ptr<FileStore> FileStore::open(const std::string& location, OptionList* list) {
  // file:///abs/dir (empty authority) or file:/abs/dir.
  std::string dir = location.rfind("//", 0) == 0 ? location.substr(2) : location;
  if (dir.empty() || dir[0] != '/')
    fail(Errc::bad_uri, "file: URI must name an absolute directory: file:///var/lib/app/sessions");
  if (dir.find('\0') != std::string::npos) fail(Errc::bad_uri, "file: path holds a NUL byte");
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  Options o;
  if (auto v = take_option(list, "fsync")) o.fsync = parse_bool("fsync", *v);
  take_interval(list, "gc_interval", &o.gc_interval);
  return std::make_unique<FileStore>(std::move(dir), o);
}

FileStore::FileStore(std::string dir, Options options) : dir_(std::move(dir)), options_(options) {}

void FileStore::start() {
  if (::mkdir(dir_.c_str(), 0700) != 0 && errno != EEXIST)
    fail_errno("cannot create directory " + dir_, errno);
  dir_fd_ = ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd_ < 0) fail_errno("cannot open directory " + dir_, errno);
  if (::faccessat(dir_fd_, ".", W_OK | X_OK, AT_EACCESS) != 0)
    fail_errno("directory " + dir_ + " is not writable", errno);
  const std::string locks = dir_ + "/" + kLockDir;
  if (::mkdirat(dir_fd_, kLockDir, 0700) != 0 && errno != EEXIST)
    fail_errno("cannot create directory " + locks, errno);
  locks_fd_ = ::openat(dir_fd_, kLockDir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
  if (locks_fd_ < 0) fail_errno("cannot open directory " + locks, errno);
  for (size_t stripe = 0; stripe < kLockStripes; ++stripe) {
    const std::string name = lock_name(stripe);
    Fd fd(::openat(locks_fd_, name.c_str(), O_RDONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (fd.get() < 0) fail_errno("cannot create lock file " + locks + "/" + name, errno);
  }
  collector_.start(options_.gc_interval, [this] { collect(int64_t(std::time(nullptr))); });
}

FileStore::~FileStore() {
  collector_.stop();  // it uses dir_fd_
  if (locks_fd_ >= 0) ::close(locks_fd_);
  if (dir_fd_ >= 0) ::close(dir_fd_);
}

std::string FileStore::path_for(std::string_view key) const {
  if (!is_safe_key(key)) fail(Errc::invalid_argument, "file store: unsafe session key");
  return std::string(key);  // relative to dir_fd_
}

bool FileStore::load(std::string_view key, int64_t now, std::string* data) {
  const std::string name = path_for(key);
  Fd fd(::openat(dir_fd_, name.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK));
  if (fd.get() < 0) {
    if (errno == ENOENT) return false;
    if (errno == ELOOP) {  // a symbolic link: not a file this store wrote
      data->clear();
      return true;
    }
    fail_errno("cannot open " + dir_ + "/" + name, errno);
  }
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) fail_errno("cannot stat " + dir_ + "/" + name, errno);
  data->clear();
  if (!S_ISREG(st.st_mode)) return true;   // foreign: decodes as malformed
  if (st.st_mtime <= now) return false;     // expired, left for the collector
  data->resize(size_t(st.st_size));
  size_t got = 0;
  while (got < data->size()) {
    ssize_t n = ::read(fd.get(), data->data() + got, data->size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail_errno("cannot read " + dir_ + "/" + name, errno);
    if (n == 0) break;
    got += size_t(n);
  }
  data->resize(got);
  return true;
}

std::string FileStore::write_temp(const std::string& name, std::string_view data, int64_t now,
                                  int64_t ttl) {
  const std::string temp = temp_name(name);
  Fd fd(::openat(dir_fd_, temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (fd.get() < 0) fail_errno("cannot create a file in " + dir_, errno);
  auto abandon = [&](const std::string& what) {
    int err = errno;
    ::unlinkat(dir_fd_, temp.c_str(), 0);
    fail_errno(what, err);
  };
  if (!write_all(fd.get(), data)) abandon("cannot write " + dir_ + "/" + temp);
  // The modification time is the expiry.
  const timespec times[2] = {{time_t(now), 0}, {time_t(now + std::max<int64_t>(ttl, 1)), 0}};
  if (::futimens(fd.get(), times) != 0) abandon("cannot set the expiry of " + dir_ + "/" + temp);
  if (options_.fsync && ::fsync(fd.get()) != 0) abandon("cannot fsync " + dir_ + "/" + temp);
  if (::close(fd.release()) != 0) abandon("cannot write " + dir_ + "/" + temp);
  return temp;
}

// The version of a file is content_version() of its bytes, read under the
// lock: the store reads whole files anyway, and a digest does not repeat
// for a different record. What the file system keeps would not do: inode
// numbers are reused as soon as a file is removed (every save makes a new
// one), and the modification time holds the expiry, in whole seconds, which
// two saves within a second share. Bytes that come back identical (A, then
// B, then A again) are the same record, so a save onto them loses nothing.
Commit FileStore::commit(std::string_view from, std::string_view to, std::string_view data,
                         int64_t now, int64_t ttl, const Version* expected) {
  const std::string from_name = path_for(from), to_name = path_for(to);
  const std::string temp = write_temp(to_name, data, now, ttl);
  Commit result = Commit::written;
  try {
    StripeLocks locks(*this, from, to);
    if (expected) {
      std::string current;
      Version version = 0;
      if (!load_versioned(from, now, &current, &version)) result = Commit::gone;
      else if (version != *expected) result = Commit::changed;
    }
    if (result == Commit::written) {
      // The sidecar's new lines are written first, and installed after the
      // record's rename, all under the sidecar's lock: whoever locks the new
      // sidecar (which frees as soon as it is installed) finds the record in
      // place. A crash in between leaves the record out of the index until
      // its next save.
      std::optional<Sidecar> sidecar;
      std::string sidecar_pending;
      if (const std::string_view principal = record_principal(data); !principal.empty()) {
        sidecar.emplace(*this, sidecar_name(principal), true);
        index(&*sidecar, from_name, to_name, now + std::max<int64_t>(ttl, 1), now,
              &sidecar_pending);
      }
      if (::renameat(dir_fd_, temp.c_str(), dir_fd_, to_name.c_str()) != 0) {
        if (!sidecar_pending.empty()) ::unlinkat(dir_fd_, sidecar_pending.c_str(), 0);
        fail_errno("cannot rename into " + dir_ + "/" + to_name, errno);
      }
      // After the rename: a reader sees the old file, both, or the new one.
      if (from_name != to_name && ::unlinkat(dir_fd_, from_name.c_str(), 0) != 0 &&
          errno != ENOENT) {
        if (!sidecar_pending.empty()) ::unlinkat(dir_fd_, sidecar_pending.c_str(), 0);
        fail_errno("cannot remove " + dir_ + "/" + from_name, errno);
      }
      if (!sidecar_pending.empty()) sidecar->install(sidecar_pending);
    }
  } catch (...) {
    ::unlinkat(dir_fd_, temp.c_str(), 0);  // ENOENT once renamed: harmless
    throw;
  }
  if (result != Commit::written) {
    ::unlinkat(dir_fd_, temp.c_str(), 0);
    return result;
  }
  // The rename itself is durable once the directory is synced.
  if (options_.fsync && ::fsync(dir_fd_) != 0) fail_errno("cannot fsync " + dir_, errno);
  return result;
}

// Under the sidecar's lock, before `to` is renamed into place: `to` with its
// expiry; `from` out when it differs; lines expired, or whose record file is
// gone or expired, dropped. The new lines go to a file named in *pending
// (left empty when nothing changes), installed once `to` is in place.
void FileStore::index(Sidecar* sidecar, const std::string& from, const std::string& to,
                      int64_t expires, int64_t now, std::string* pending) {
  std::vector<Sidecar::Line> lines = sidecar->read();
  const size_t before = lines.size();
  bool same = false;  // `to` is there already, with this expiry
  lines.erase(std::remove_if(lines.begin(), lines.end(),
                             [&](const Sidecar::Line& line) {
                               if (line.key == to) {
                                 same = line.expires == expires;
                                 return !same;
                               }
                               if (line.key == from || line.expires <= now) return true;
                               struct stat st;
                               if (::fstatat(dir_fd_, line.key.c_str(), &st,
                                             AT_SYMLINK_NOFOLLOW) != 0)
                                 return errno == ENOENT;
                               return !S_ISREG(st.st_mode) || st.st_mtime <= now;
                             }),
              lines.end());
  if (same && lines.size() == before && !sidecar->skipped()) return;  // nothing to write
  if (!same) lines.push_back({expires, to});
  sidecar->write(lines, pending);
}

void FileStore::principal_records(std::string_view principal, int64_t now, KeyedRecords* out) {
  Sidecar sidecar(*this, sidecar_name(principal), false);
  if (!sidecar.found()) return;
  std::vector<Sidecar::Line> lines = sidecar.read(), kept;
  std::string data;
  for (Sidecar::Line& line : lines) {
    // Expired, gone, or another principal's since.
    if (line.expires <= now || !load(line.key, now, &data) ||
        record_principal(data) != principal)
      continue;
    out->emplace_back(line.key, data);
    kept.push_back(std::move(line));
  }
  if (kept.size() != lines.size() || sidecar.skipped()) sidecar.write(kept);
}

void FileStore::save(std::string_view key, std::string_view data, int64_t now, int64_t ttl) {
  commit(key, key, data, now, ttl, nullptr);
}

void FileStore::move(std::string_view from, std::string_view to, std::string_view data,
                     int64_t now, int64_t ttl) {
  commit(from, to, data, now, ttl, nullptr);
}

Commit FileStore::save_if(std::string_view from, std::string_view to, std::string_view data,
                          int64_t now, int64_t ttl, Version expected) {
  return commit(from, to, data, now, ttl, &expected);
}

// Under the lock: a save_if that found the record before the erase cannot
// write it back after, so a destroyed session stays destroyed.
void FileStore::erase(std::string_view key) {
  const std::string name = path_for(key);
  StripeLocks locks(*this, key, key);
  if (::unlinkat(dir_fd_, name.c_str(), 0) != 0 && errno != ENOENT)
    fail_errno("cannot remove " + dir_ + "/" + name, errno);
}

size_t FileStore::collect(int64_t now) {
  // A directory stream of its own: dir_fd_ is shared with the request threads.
  int fd = ::openat(dir_fd_, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return 0;
  DIR* dir = ::fdopendir(fd);
  if (!dir) {
    ::close(fd);
    return 0;
  }
  size_t removed = 0;
  while (dirent* entry = ::readdir(dir)) {
    std::string_view name = entry->d_name;
    const bool temp = name.rfind(kTempPrefix, 0) == 0;
    // Not a record: ".", "..", .locks (its files must stay: a process may
    // hold one), anything else.
    if (!temp && !is_safe_key(name)) continue;
    struct stat st;
    if (::fstatat(fd, entry->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode))
      continue;
    // A temporary file's times may already be set to its expiry: its age is
    // read from the inode change time, which futimens moves to the present.
    const bool due = temp ? st.st_ctime < now - kAbandonedTempAge
                          : st.st_mtime < now - kCollectGrace;
    // ENOENT: another process's collector, or an erase, was first.
    if (due && ::unlinkat(fd, entry->d_name, 0) == 0) ++removed;
  }
  ::closedir(dir);
  return removed + collect_sidecars(now);
}

// Sidecars whose every line expired (their mtime is the latest expiry), each
// removed under its lock, and temporary files that a crash left there.
size_t FileStore::collect_sidecars(int64_t now) {
  int fd = ::openat(dir_fd_, kPrincipalDir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return 0;
  DIR* dir = ::fdopendir(fd);
  if (!dir) {
    ::close(fd);
    return 0;
  }
  size_t removed = 0;
  while (dirent* entry = ::readdir(dir)) {
    const std::string name = entry->d_name;
    const bool temp = name.rfind(kTempPrefix, 0) == 0;
    struct stat st;
    if ((!temp && !is_safe_key(name)) ||
        ::fstatat(fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode))
      continue;
    if (temp) {
      if (st.st_ctime < now - kAbandonedTempAge && ::unlinkat(fd, name.c_str(), 0) == 0)
        ++removed;
      continue;
    }
    if (st.st_mtime >= now - kCollectGrace) continue;
    try {
      Sidecar sidecar(*this, name, false);
      if (sidecar.found() && sidecar.mtime() < now - kCollectGrace) {
        sidecar.write({});
        ++removed;
      }
    } catch (const Error&) {
      // Left for the next pass.
    }
  }
  ::closedir(dir);
  return removed;
}

Scheme file_scheme() {
  return {{"file"}, {"fsync", "gc_interval"}, nullptr,
          [](const OpenRequest& r) { return FileStore::open(r.uri.rest, r.options); }};
}

}  // namespace sessions::internal
