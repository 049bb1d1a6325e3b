#pragma once
/// `usage`: what one attempt (or a sum of attempts) consumed.

#include <cstdint>
#include <string>

#include "messages/value.hpp"

namespace caudal {

struct usage {
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  double cost_usd = 0;
  /// The model that produced the tokens; empty for agents without a model.
  /// A sum keeps the first model it saw.
  std::string model;

  int64_t total_tokens() const { return prompt_tokens + completion_tokens; }

  usage& operator+=(const usage& other) {
    prompt_tokens += other.prompt_tokens;
    completion_tokens += other.completion_tokens;
    cost_usd += other.cost_usd;
    if (model.empty()) model = other.model;
    return *this;
  }

  friend bool operator==(const usage&, const usage&) = default;

  MSGPACK_DEFINE_MAP(prompt_tokens, completion_tokens, cost_usd, model)
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, usage& x) {
  return f(caf::meta::type_name("usage"), x.prompt_tokens, x.completion_tokens, x.cost_usd,
           x.model);
}

void to_json(value& j, const usage& u);
void from_json(const value& j, usage& u);

}  // namespace caudal
