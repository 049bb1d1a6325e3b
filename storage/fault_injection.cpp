#include "storage/fault_injection.hpp"

namespace caudal::storage {

result<std::string> fault_injecting_store::get(column_family cf, std::string_view key) {
  std::lock_guard<std::mutex> guard(mutex_);
  pending_lookup pending = lookup_pending(pending_.ops(), cf, key);
  if (!pending.is_touched) return base_.get(cf, key);
  if (pending.value) return *pending.value;
  return status::error(status_code::not_found, std::string("not found in ") + to_string(cf));
}

status fault_injecting_store::write(const write_batch& batch, bool sync) {
  std::lock_guard<std::mutex> guard(mutex_);
  ++write_count_;
  if (sync) ++synced_write_count_;
  if (writes_until_failure_ > 0 && --writes_until_failure_ == 0) {
    ++failed_write_count_;
    return status::error(status_code::io_error,
                         "injected fault: write " + std::to_string(write_count_) + " failed");
  }
  if (is_dropping_unsynced_ && !sync) {
    pending_.append(batch);
    return status::ok();
  }
  if (pending_.empty()) return base_.write(batch, sync);
  // Pending writes precede this one; one batch keeps their order and makes
  // them durable together.
  write_batch combined = pending_;
  combined.append(batch);
  status st = base_.write(combined, sync);
  if (st.is_ok()) pending_.clear();
  return st;
}

status fault_injecting_store::scan(column_family cf, std::string_view prefix,
                                   const scan_visitor& visit) {
  std::lock_guard<std::mutex> guard(mutex_);
  if (pending_.empty()) return base_.scan(cf, prefix, visit);
  return scan_with_pending(base_, pending_.ops(), cf, prefix, visit);
}

status fault_injecting_store::close() {
  std::lock_guard<std::mutex> guard(mutex_);
  if (!pending_.empty()) {
    status st = base_.write(pending_, true);
    if (!st.is_ok()) return st;
    pending_.clear();
  }
  return base_.close();
}

void fault_injecting_store::fail_nth_write(uint64_t n) {
  std::lock_guard<std::mutex> guard(mutex_);
  writes_until_failure_ = n;
}

void fault_injecting_store::set_dropping_unsynced(bool is_dropping) {
  std::lock_guard<std::mutex> guard(mutex_);
  is_dropping_unsynced_ = is_dropping;
}

void fault_injecting_store::simulate_crash() {
  std::lock_guard<std::mutex> guard(mutex_);
  pending_.clear();
}

uint64_t fault_injecting_store::write_count() const {
  std::lock_guard<std::mutex> guard(mutex_);
  return write_count_;
}

uint64_t fault_injecting_store::synced_write_count() const {
  std::lock_guard<std::mutex> guard(mutex_);
  return synced_write_count_;
}

uint64_t fault_injecting_store::failed_write_count() const {
  std::lock_guard<std::mutex> guard(mutex_);
  return failed_write_count_;
}

size_t fault_injecting_store::pending_op_count() const {
  std::lock_guard<std::mutex> guard(mutex_);
  return pending_.size();
}

}  // namespace caudal::storage
