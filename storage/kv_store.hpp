#pragma once
/// `kv_store`: the seam between the journal and RocksDB. A small ordered
/// key-value interface over four column families, with atomic batches that
/// may span families and a per-write durability flag. The real store is
/// `rocksdb_store`; `fault_injecting_store` wraps any store for tests; a
/// migration sees the store through `batch_overlay` (reads include the
/// batch being built).
///
/// Errors are values: every call returns a `status` (or a `result<T>`), never
/// throws across this boundary.
///
/// Thread-safety: implementations say so on their class; `status`,
/// `result<T>` and `write_batch` are plain value types.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace caudal::storage {

/// What went wrong. The `refused_*` codes are the reasons a database is not
/// opened (SPEC §7 exit code 5); see `status::is_refusal`.
enum class status_code : uint8_t {
  ok,
  not_found,             ///< `get` of an absent key
  invalid_argument,      ///< a malformed key or run id, a bad option
  io_error,              ///< the file system or RocksDB failed a read or write
  corruption,            ///< stored bytes that do not decode
  closed,                ///< the store was closed
  refused_not_caudal,    ///< a regular file, foreign directory or foreign RocksDB
  refused_damaged,       ///< a RocksDB that cannot be read (CURRENT, MANIFEST, checksums)
  refused_locked,        ///< held by another process (or another handle in this one)
  refused_newer_schema,  ///< written by a newer Caudal
  refused_migration,     ///< an older schema whose migration failed or is missing
};

/// The code's name, for messages and test output ("refused_locked").
const char* to_string(status_code code);

/// The outcome of a store operation: ok, or a code and a message meant for a
/// user (it names the path, key or version involved). Ignoring one is a
/// warning ([[nodiscard]]), so an error under -Werror.
class [[nodiscard]] status {
 public:
  status() = default;

  static status ok() { return {}; }
  static status error(status_code code, std::string message) {
    return status{code, std::move(message)};
  }

  bool is_ok() const { return code_ == status_code::ok; }
  bool is_not_found() const { return code_ == status_code::not_found; }
  /// True for the codes that mean "this database is not opened" (exit 5).
  bool is_refusal() const;
  status_code code() const { return code_; }
  const std::string& message() const { return message_; }
  /// "refused_locked: database /x is locked by another process", or "ok".
  std::string to_string() const;

 private:
  status(status_code code, std::string message) : code_(code), message_(std::move(message)) {}

  status_code code_ = status_code::ok;
  std::string message_;
};

/// A value or the status that explains its absence.
template <class T>
class [[nodiscard]] result {
 public:
  result(T value) : state_(std::move(value)) {}  // NOLINT: implicit by design
  /// `error` must not be ok.
  result(status error) : state_(std::move(error)) {}  // NOLINT: implicit by design

  bool has_value() const { return state_.index() == 0; }
  explicit operator bool() const { return has_value(); }
  /// Precondition: has_value().
  T& value() { return std::get<0>(state_); }
  const T& value() const { return std::get<0>(state_); }
  T& operator*() { return value(); }
  const T& operator*() const { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  /// The error, or ok when there is a value.
  status error() const { return has_value() ? status::ok() : std::get<1>(state_); }

 private:
  std::variant<T, status> state_;
};

/// The journal's column families (DESIGN.md "Journal layout").
enum class column_family : uint8_t { meta, runs, events, cache };

inline constexpr column_family all_column_families[] = {
    column_family::meta, column_family::runs, column_family::events, column_family::cache};

/// The RocksDB name of a column family ("meta", "runs", "events", "cache").
const char* to_string(column_family cf);

/// One operation of a batch.
struct write_op {
  enum class kind : uint8_t { put, remove };
  kind op = kind::put;
  column_family cf = column_family::meta;
  std::string key;
  std::string value;  ///< empty for remove

  friend bool operator==(const write_op&, const write_op&) = default;
};

/// An ordered list of puts and removes, possibly across column families,
/// applied all or nothing by `kv_store::write`. Later operations on the same
/// key win.
class write_batch {
 public:
  void put(column_family cf, std::string key, std::string value);
  void remove(column_family cf, std::string key);
  /// Appends every operation of `other`, in order.
  void append(const write_batch& other);
  void clear() { ops_.clear(); }

  const std::vector<write_op>& ops() const { return ops_; }
  bool empty() const { return ops_.empty(); }
  size_t size() const { return ops_.size(); }

 private:
  std::vector<write_op> ops_;
};

/// Called by `scan` for each entry in key order; returns false to stop.
using scan_visitor = std::function<bool(std::string_view key, std::string_view value)>;

/// An ordered key-value store with column families. Keys compare bytewise.
class kv_store {
 public:
  virtual ~kv_store() = default;

  /// The value of `key`; `not_found` when absent, `closed` after close().
  virtual result<std::string> get(column_family cf, std::string_view key) = 0;

  /// Applies `batch` atomically: after a crash either every operation is
  /// visible or none is. With `sync`, returns only once the batch is durable
  /// (the write-ahead log is fsynced); without it, a machine crash may lose
  /// the batch (never part of it). An empty batch is ok and writes nothing.
  virtual status write(const write_batch& batch, bool sync) = 0;

  /// Visits every entry of `cf` whose key starts with `prefix`, in ascending
  /// key order, until `visit` returns false. An error reading stops the scan
  /// and is returned.
  virtual status scan(column_family cf, std::string_view prefix, const scan_visitor& visit) = 0;

  /// Makes every acknowledged write durable and releases the store (for
  /// RocksDB, its LOCK). Later calls return `closed`; closing twice is ok.
  virtual status close() = 0;
};

/// A `kv_store` view of `base` with `pending` applied on top: reads see the
/// pending operations, writes append to `pending` (the flag is ignored) and
/// touch nothing in `base`. Migrations run against it so that each one sees
/// the effects of the ones before it while all of them end in one batch.
///
/// Thread-safety: none; `base` and `pending` must outlive the overlay.
class batch_overlay final : public kv_store {
 public:
  batch_overlay(kv_store& base, write_batch& pending) : base_(base), pending_(pending) {}

  result<std::string> get(column_family cf, std::string_view key) override;
  status write(const write_batch& batch, bool sync) override;
  status scan(column_family cf, std::string_view prefix, const scan_visitor& visit) override;
  /// Does not close `base`.
  status close() override { return status::ok(); }

 private:
  kv_store& base_;
  write_batch& pending_;
};

/// The state of `key` after `ops` alone: the last put's value, `nullopt` for
/// a remove; `is_touched` is false when no operation names the key.
struct pending_lookup {
  bool is_touched = false;
  std::optional<std::string> value;
};
pending_lookup lookup_pending(const std::vector<write_op>& ops, column_family cf,
                              std::string_view key);

/// Scans `base` with `ops` applied on top (the shared logic of the overlays).
status scan_with_pending(kv_store& base, const std::vector<write_op>& ops, column_family cf,
                         std::string_view prefix, const scan_visitor& visit);

}  // namespace caudal::storage
