#include "storage/kv_store.hpp"

#include <map>

namespace caudal::storage {

const char* to_string(status_code code) {
  switch (code) {
    case status_code::ok:
      return "ok";
    case status_code::not_found:
      return "not_found";
    case status_code::invalid_argument:
      return "invalid_argument";
    case status_code::io_error:
      return "io_error";
    case status_code::corruption:
      return "corruption";
    case status_code::closed:
      return "closed";
    case status_code::refused_not_caudal:
      return "refused_not_caudal";
    case status_code::refused_damaged:
      return "refused_damaged";
    case status_code::refused_locked:
      return "refused_locked";
    case status_code::refused_newer_schema:
      return "refused_newer_schema";
    case status_code::refused_migration:
      return "refused_migration";
  }
  return "unknown";
}

bool status::is_refusal() const {
  switch (code_) {
    case status_code::refused_not_caudal:
    case status_code::refused_damaged:
    case status_code::refused_locked:
    case status_code::refused_newer_schema:
    case status_code::refused_migration:
      return true;
    default:
      return false;
  }
}

std::string status::to_string() const {
  if (is_ok()) return "ok";
  return std::string(storage::to_string(code_)) + ": " + message_;
}

const char* to_string(column_family cf) {
  switch (cf) {
    case column_family::meta:
      return "meta";
    case column_family::runs:
      return "runs";
    case column_family::events:
      return "events";
    case column_family::cache:
      return "cache";
  }
  return "unknown";
}

void write_batch::put(column_family cf, std::string key, std::string value) {
  ops_.push_back(write_op{write_op::kind::put, cf, std::move(key), std::move(value)});
}

void write_batch::remove(column_family cf, std::string key) {
  ops_.push_back(write_op{write_op::kind::remove, cf, std::move(key), {}});
}

void write_batch::append(const write_batch& other) {
  ops_.insert(ops_.end(), other.ops_.begin(), other.ops_.end());
}

pending_lookup lookup_pending(const std::vector<write_op>& ops, column_family cf,
                              std::string_view key) {
  // The last operation on the key wins, so search from the back.
  for (auto it = ops.rbegin(); it != ops.rend(); ++it) {
    if (it->cf != cf || it->key != key) continue;
    if (it->op == write_op::kind::put) return {true, it->value};
    return {true, std::nullopt};
  }
  return {};
}

status scan_with_pending(kv_store& base, const std::vector<write_op>& ops, column_family cf,
                         std::string_view prefix, const scan_visitor& visit) {
  // Pending batches are small (tests, migrations): materialise the merge.
  std::map<std::string, std::optional<std::string>, std::less<>> merged;
  status st = base.scan(cf, prefix, [&](std::string_view key, std::string_view value) {
    merged.emplace(std::string(key), std::string(value));
    return true;
  });
  if (!st.is_ok()) return st;
  for (const auto& op : ops) {
    if (op.cf != cf || !std::string_view(op.key).starts_with(prefix)) continue;
    if (op.op == write_op::kind::put) {
      merged[op.key] = op.value;
    } else {
      merged[op.key] = std::nullopt;
    }
  }
  for (const auto& [key, value] : merged) {
    if (value && !visit(key, *value)) break;
  }
  return status::ok();
}

result<std::string> batch_overlay::get(column_family cf, std::string_view key) {
  pending_lookup pending = lookup_pending(pending_.ops(), cf, key);
  if (!pending.is_touched) return base_.get(cf, key);
  if (pending.value) return *pending.value;
  return status::error(status_code::not_found,
                       std::string("no key in ") + to_string(cf) + " (removed by the batch)");
}

status batch_overlay::write(const write_batch& batch, bool /*sync*/) {
  pending_.append(batch);
  return status::ok();
}

status batch_overlay::scan(column_family cf, std::string_view prefix, const scan_visitor& visit) {
  return scan_with_pending(base_, pending_.ops(), cf, prefix, visit);
}

}  // namespace caudal::storage
