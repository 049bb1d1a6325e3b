#pragma once
/// Reading runs back from a run database: the list of runs and one run's
/// trace (header, events, the step tree). Plain code over storage::kv_store.

#include <string>
#include <vector>

#include "messages/attempt.hpp"
#include "messages/run.hpp"
#include "storage/kv_store.hpp"
#include "storage/run_records.hpp"

namespace caudal {

/// Every run's header, newest first (by start time). Stops at the first
/// header that does not decode and returns its error.
storage::result<std::vector<storage::run_header>> list_runs(storage::kv_store& store);

struct run_trace {
  storage::run_header header;
  std::vector<run_event> events;
  /// The top-level steps' results as journaled (children nested).
  std::vector<step_result> steps;
  /// Every finished attempt, in journal order.
  std::vector<attempt_result> attempts;
};

/// One run's trace; `not_found` naming the run id for an unknown run.
storage::result<run_trace> load_trace(storage::kv_store& store, const std::string& run_id);

}  // namespace caudal
