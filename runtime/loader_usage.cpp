// Expected usage against the limits that cover a step. A step whose
// `expected` is larger than one of them cannot run within it: the run-wide
// limit refuses its reservation (SPEC §4), a construct's or its own breaks as
// soon as it spends what it expects. That is a load error, found before
// anything runs and spends.

#include <charconv>
#include <cstdio>
#include <map>
#include <utility>
#include <variant>
#include <vector>

#include "runtime/loader_detail.hpp"

namespace caudal::loader_detail {

namespace {

// Money as written by a user: at least two decimals (`0.50`), every digit a
// tiny price needs (`0.00015`), never an exponent.
std::string number_text(double usd) {
  char buffer[512];
  auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, usd, std::chars_format::fixed);
  if (ec != std::errc{}) {
    std::snprintf(buffer, sizeof buffer, "%g", usd);
    return buffer;
  }
  std::string text(buffer, end);
  auto dot = text.find('.');
  if (dot == std::string::npos) {
    dot = text.size();
    text += '.';
  }
  while (text.size() - dot - 1 < 2) text += '0';
  return text;
}

std::string number_text(int64_t tokens) {
  return std::to_string(tokens);
}

// A `limits:` that covers a step, with the words that name it in a message:
// `<before> total_cost_usd 0.50<after>`.
struct cover {
  const usage_limits* limits;
  std::string before;  ///< `the pipeline's limit`, `the limit`, `its own limit`
  std::string after;   ///< `` or ` of step 'fan'`
};

// One value of `expected` and the tightest covering limit it is larger than.
struct finding {
  source_pos at;
  std::variant<double, int64_t> limit;
  std::string message;
};

// Walks the step tree with the limits covering each step, keeping one finding
// per `expected` value (a value can be reached twice: a sibling named as a
// fallback, a YAML alias), the one with the tightest limit.
class expected_checker {
 public:
  explicit expected_checker(load_state& st) : st_(st) {}

  void visit_list(const step_list& steps, const std::string& prefix, std::vector<cover>& covers) {
    for (const auto& step : steps)
      if (!step.name.empty()) visit_step(step, prefix + step.name, covers);
  }

  void report() {
    for (auto& [key, found] : findings_) st_.error(found.at, std::move(found.message));
  }

 private:
  void visit_step(const step_spec& step, const std::string& path, std::vector<cover>& covers) {
    check(step, path, covers);
    // A fallback runs when its step failed, also for passing the step's own
    // limits: those do not cover it (the governor counts a step's own
    // attempts only). Its path is the first step's path and its name.
    for (const auto* fallback = step.fallback.get(); fallback != nullptr;
         fallback = fallback->fallback.get())
      if (!fallback->name.empty()) check(*fallback, path + "/" + fallback->name, covers);
    covers.push_back({&step.limits, "the limit", " of step '" + path + "'"});
    switch (step.kind) {
      case step_kind::loop:
      case step_kind::map:
        // Run-time paths hold the iteration or item index: `refine/2/score`.
        visit_list(step.body, path + "/*/", covers);
        break;
      case step_kind::parallel:
      case step_kind::conditional:
        for (const auto& [name, branch] : step.branches)
          visit_list(branch, path + "/" + name + "/", covers);
        if (step.default_branch) visit_list(*step.default_branch, path + "/default/", covers);
        break;
      case step_kind::step:
      case step_kind::hitl:
        break;
    }
    covers.pop_back();
  }

  void check(const step_spec& step, const std::string& path, const std::vector<cover>& covers) {
    if (!step.expected) return;
    const auto* places = st_.expected_places_of(step.pos);
    if (places == nullptr) return;
    // Innermost first, so of two equal limits the closer one is named.
    std::vector<cover> all{{&step.limits, "its own limit", ""}};
    all.insert(all.end(), covers.rbegin(), covers.rend());
    if (places->cost_usd)
      check_value<double>(*places->cost_usd, step.expected->cost_usd, all, path, "cost_usd",
                          "total_cost_usd", &usage_limits::total_cost_usd);
    if (places->tokens)
      check_value<int64_t>(*places->tokens, step.expected->tokens, all, path, "tokens",
                           "total_tokens", &usage_limits::total_tokens);
  }

  template <class T>
  void check_value(const source_pos& at, T expected, const std::vector<cover>& covers,
                   const std::string& path, const char* field, const char* limit_name,
                   std::optional<T> usage_limits::*limit_of) {
    const cover* tightest = nullptr;
    T limit{};
    for (const auto& c : covers) {
      const auto& value = c.limits->*limit_of;
      if (value && (tightest == nullptr || *value < limit)) {
        tightest = &c;
        limit = *value;
      }
    }
    if (tightest == nullptr || expected <= limit) return;
    auto [it, is_new] = findings_.try_emplace({at.line, at.column});
    if (!is_new && !(limit < std::get<T>(it->second.limit))) return;
    it->second = {at, limit,
                  "expected " + std::string(field) + " " + number_text(expected) + " of step '" +
                      path + "' is larger than " + tightest->before + " " + limit_name + " " +
                      number_text(limit) + tightest->after};
  }

  load_state& st_;
  std::map<std::pair<int, int>, finding> findings_;
};

}  // namespace

void check_expected_usage(load_state& st, const pipeline& p) {
  expected_checker checker(st);
  std::vector<cover> covers{{&p.limits, "the pipeline's limit", ""}};
  checker.visit_list(p.steps, "", covers);
  checker.report();
}

}  // namespace caudal::loader_detail
