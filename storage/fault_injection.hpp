#pragma once
/// `fault_injecting_store`: a `kv_store` wrapper for crash and error tests,
/// after RocksDB's fault-injection utilities. It forwards to another store
/// and can
///
/// - fail a chosen write: the Nth call to write() from now returns an
///   `io_error` and writes nothing (not even the unsynced writes pending
///   before it);
/// - drop unsynced writes: writes made with `sync == false` are held in a
///   pending buffer that reads see, as an OS page cache would; a write with
///   `sync == true` forwards the pending writes and itself, in order, as one
///   synced write; simulate_crash() discards the pending writes, as a machine
///   crash would;
/// - count writes, synced writes and failures, so tests check that callers
///   ask for durability where they must.
///
/// Thread-safety: every call may come from any thread (one mutex).

#include <cstdint>
#include <mutex>

#include "storage/kv_store.hpp"

namespace caudal::storage {

class fault_injecting_store final : public kv_store {
 public:
  /// Wraps `base`, which must outlive the wrapper. Starts passing everything
  /// through: no failure armed, unsynced writes forwarded at once.
  explicit fault_injecting_store(kv_store& base) : base_(base) {}

  result<std::string> get(column_family cf, std::string_view key) override;
  status write(const write_batch& batch, bool sync) override;
  status scan(column_family cf, std::string_view prefix, const scan_visitor& visit) override;
  /// A clean shutdown: forwards the pending unsynced writes (synced), then
  /// closes `base`. Crash tests call simulate_crash() first.
  status close() override;

  /// Arms a failure: the `n`th write() from now (1 = the next one) fails with
  /// `io_error` and writes nothing. One shot; arming again replaces it; 0
  /// disarms.
  void fail_nth_write(uint64_t n);

  /// Holds writes made without sync instead of forwarding them (until a
  /// synced write or simulate_crash). Turning it off keeps what is pending;
  /// the next write forwards it first.
  void set_dropping_unsynced(bool is_dropping);

  /// Discards the pending unsynced writes.
  void simulate_crash();

  /// Calls to write(), failed or not.
  uint64_t write_count() const;
  /// Calls to write() with sync == true.
  uint64_t synced_write_count() const;
  /// Writes failed by fail_nth_write.
  uint64_t failed_write_count() const;
  /// Operations held, not yet forwarded.
  size_t pending_op_count() const;

 private:
  mutable std::mutex mutex_;
  kv_store& base_;
  write_batch pending_;
  bool is_dropping_unsynced_ = false;
  uint64_t writes_until_failure_ = 0;  ///< 0: no failure armed
  uint64_t write_count_ = 0;
  uint64_t synced_write_count_ = 0;
  uint64_t failed_write_count_ = 0;
};

}  // namespace caudal::storage
