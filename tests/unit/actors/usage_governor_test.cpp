// The usage governor through its message protocol (actors/usage_governor.hpp),
// driven by scoped actors: totals after every report, the check after every
// report with the exact texts, the halt sent to the root (also when the root
// registers after the breach), every answer after the halt, reservations
// granted, refused and released, scopes of steps and constructs and the
// halt sent to their owners, and many concurrent reporters.
//
// A halt the governor sends is enqueued before it answers the report or
// reservation that caused it, so once the answer is in, a mailbox without a
// halt proves none was sent: no test here waits for time to pass.

#include <algorithm>
#include <ostream>
#include <tuple>

#include <gtest/gtest.h>
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scoped_actor.hpp>

#include "actors/usage_governor.hpp"
#include "messages/type_ids.hpp"

namespace caudal {
namespace {

// What the governor answers a report, or what a halt message says.
struct verdict {
  std::string scope;
  std::string reason;
  friend bool operator==(const verdict&, const verdict&) = default;
  friend std::ostream& operator<<(std::ostream& os, const verdict& v) {
    return os << "{scope: '" << v.scope << "', reason: '" << v.reason << "'}";
  }
};

const verdict go_on{"", ""};

usage tokens(int64_t prompt, int64_t completion = 0, double cost = 0) {
  usage u;
  u.prompt_tokens = prompt;
  u.completion_tokens = completion;
  u.cost_usd = cost;
  return u;
}

usage dollars(double cost) {
  return tokens(0, 0, cost);
}

usage_limits token_limit(int64_t n) {
  return usage_limits{std::nullopt, n};
}
usage_limits cost_limit(double usd) {
  return usage_limits{usd, std::nullopt};
}

struct system_config : caf::actor_system_config {
  system_config() {
    register_types(*this);
    set("logger.verbosity", caf::atom("quiet"));
  }
};

class UsageGovernor : public ::testing::Test {
 protected:
  ~UsageGovernor() override {
    for (auto& g : governors_) caf::anon_send_exit(g, caf::exit_reason::user_shutdown);
  }

  caf::actor governor(usage_limits limits, usage spent = {}) {
    governors_.push_back(spawn_usage_governor(sys, limits, spent));
    return governors_.back();
  }

  static caf::actor handle(caf::scoped_actor& a) { return caf::actor_cast<caf::actor>(a.ptr()); }

  /// Makes `root` the run's root (asynchronous, like the engine does; the
  /// report that follows from `self` is handled after it).
  void register_root(caf::scoped_actor& from, const caf::actor& gov, caf::scoped_actor& root) {
    from->send(gov, root_atom::value, handle(root));
  }

  void open_scope(caf::scoped_actor& from, const caf::actor& gov, const std::string& path,
                  double cost_limit, int64_t token_limit, bool is_step, caf::scoped_actor& owner) {
    from->send(gov, scope_atom::value, path, cost_limit, token_limit, is_step, handle(owner));
  }

  verdict report(caf::scoped_actor& self, const caf::actor& gov, const std::string& path,
                 const usage& u, uint64_t reservation = 0, const std::string& halt = {}) {
    verdict v{"<no answer>", "<no answer>"};
    self->request(gov, caf::infinite, spent_atom::value, path, reservation, u, halt)
        .receive(
            [&](std::string& scope, std::string& reason) {
              v = {scope, reason};
            },
            [&](caf::error& e) { ADD_FAILURE() << caf::to_string(e); });
    return v;
  }

  std::tuple<uint64_t, std::string> reserve(caf::scoped_actor& self, const caf::actor& gov,
                                            const std::string& path, double cost_usd,
                                            int64_t token_count) {
    std::tuple<uint64_t, std::string> out{0, "<no answer>"};
    self->request(gov, caf::infinite, reserve_atom::value, path, cost_usd, token_count)
        .receive(
            [&](uint64_t id, std::string& refusal) {
              out = {id, refusal};
            },
            [&](caf::error& e) { ADD_FAILURE() << caf::to_string(e); });
    return out;
  }

  usage totals(caf::scoped_actor& self, const caf::actor& gov) {
    usage out;
    self->request(gov, caf::infinite, totals_atom::value)
        .receive([&](usage& u) { out = u; },
                 [&](caf::error& e) { ADD_FAILURE() << caf::to_string(e); });
    return out;
  }

  /// The halt messages already in `who`'s mailbox (none are awaited).
  static std::vector<verdict> halts(caf::scoped_actor& who) {
    std::vector<verdict> out;
    for (bool more = true; more;)
      who->receive(
          [&](halt_atom, std::string& scope, std::string& reason) {
            out.push_back({scope, reason});
          },
          caf::after(std::chrono::seconds(0)) >> [&] { more = false; });
    return out;
  }

  system_config cfg;
  caf::actor_system sys{cfg};

 private:
  std::vector<caf::actor> governors_;
};

TEST_F(UsageGovernor, TotalsAreTheSumOfEveryReport) {
  auto gov = governor(token_limit(1000000), tokens(5, 5, 0.5));  // a resumed run's spend
  caf::scoped_actor self{sys};
  EXPECT_EQ(report(self, gov, "a", tokens(100, 20, 0.25)), go_on);
  EXPECT_EQ(report(self, gov, "b/1/c", tokens(0, 7, 0.125)), go_on);
  EXPECT_EQ(report(self, gov, "a/backup", tokens(3)), go_on);
  auto t = totals(self, gov);
  EXPECT_EQ(t.prompt_tokens, 108);
  EXPECT_EQ(t.completion_tokens, 32);
  EXPECT_EQ(t.cost_usd, 0.875);
}

TEST_F(UsageGovernor, ATokenBreachIsFoundAtTheReportThatPassesTheLimit) {
  auto gov = governor(token_limit(20000));
  caf::scoped_actor self{sys};
  caf::scoped_actor root{sys};
  register_root(self, gov, root);
  EXPECT_EQ(report(self, gov, "draft", tokens(9000, 1000)), go_on);
  EXPECT_TRUE(halts(root).empty());
  // Reached exactly: not exceeded.
  EXPECT_EQ(report(self, gov, "draft", tokens(10000)), go_on);
  EXPECT_TRUE(halts(root).empty());
  const std::string reason = "Token limit of 20000 exceeded (used 20410)";
  EXPECT_EQ(report(self, gov, "review", tokens(400, 10)), (verdict{"", reason}));
  EXPECT_EQ(halts(root), (std::vector<verdict>{{"", reason}}));
}

TEST_F(UsageGovernor, ACostBreachIsFoundAtTheReportThatPassesTheLimit) {
  auto gov = governor(cost_limit(0.50));
  caf::scoped_actor self{sys};
  caf::scoped_actor root{sys};
  register_root(self, gov, root);
  EXPECT_EQ(report(self, gov, "a", dollars(0.25)), go_on);
  EXPECT_EQ(report(self, gov, "b", dollars(0.25)), go_on);  // exactly $0.50
  EXPECT_TRUE(halts(root).empty());
  const std::string reason = "Cost limit of $0.50 exceeded (spent $0.53)";
  EXPECT_EQ(report(self, gov, "c", dollars(0.03)), (verdict{"", reason}));
  EXPECT_EQ(halts(root), (std::vector<verdict>{{"", reason}}));
}

TEST_F(UsageGovernor, CentsAddingUpToTheLimitDoNotExceedIt) {
  // 0.1 + 0.2 is 0.30000000000000004 in doubles.
  auto gov = governor(cost_limit(0.30));
  caf::scoped_actor self{sys};
  caf::scoped_actor root{sys};
  register_root(self, gov, root);
  EXPECT_EQ(report(self, gov, "a", dollars(0.1)), go_on);
  // A reservation filling the rest exactly is granted, and spending it all
  // does not exceed the limit.
  auto [id, refusal] = reserve(self, gov, "b", 0.2, 0);
  EXPECT_NE(id, 0u);
  EXPECT_EQ(refusal, "");
  EXPECT_EQ(report(self, gov, "b", dollars(0.2), id), go_on);
  EXPECT_TRUE(halts(root).empty());
  EXPECT_EQ(report(self, gov, "d", dollars(0.01)),
            (verdict{"", "Cost limit of $0.30 exceeded (spent $0.31)"}));
}

TEST_F(UsageGovernor, ARootRegisteredAfterTheBreachIsToldAtOnce) {
  auto gov = governor(token_limit(10));
  caf::scoped_actor self{sys};
  caf::scoped_actor root{sys};
  const std::string reason = "Token limit of 10 exceeded (used 11)";
  EXPECT_EQ(report(self, gov, "first", tokens(11)), (verdict{"", reason}));
  register_root(self, gov, root);
  EXPECT_EQ(totals(self, gov).prompt_tokens, 11);  // the registration has been handled
  EXPECT_EQ(halts(root), (std::vector<verdict>{{"", reason}}));
}

TEST_F(UsageGovernor, OnceHaltedEveryReportAndReservationGetsTheReasonAndTheRootIsToldOnce) {
  auto gov = governor(token_limit(100));
  caf::scoped_actor self{sys};
  caf::scoped_actor root{sys};
  register_root(self, gov, root);
  const std::string reason = "Token limit of 100 exceeded (used 150)";
  EXPECT_EQ(report(self, gov, "a", tokens(150)), (verdict{"", reason}));
  // Later reports, even of nothing, are counted and answered with the reason.
  EXPECT_EQ(report(self, gov, "b", tokens(0)), (verdict{"", reason}));
  EXPECT_EQ(report(self, gov, "c", tokens(7)), (verdict{"", reason}));
  EXPECT_EQ(reserve(self, gov, "d", 0, 1), (std::tuple<uint64_t, std::string>{0, reason}));
  EXPECT_EQ(totals(self, gov).prompt_tokens, 157);
  EXPECT_EQ(halts(root), (std::vector<verdict>{{"", reason}}));
}

TEST_F(UsageGovernor, AReportCarryingPricingNotConfiguredHaltsTheRun) {
  auto gov = governor(cost_limit(1.0));
  caf::scoped_actor self{sys};
  caf::scoped_actor root{sys};
  register_root(self, gov, root);
  const std::string reason = "PricingNotConfigured: model 'x'";
  EXPECT_EQ(report(self, gov, "a", tokens(10, 5), 0, reason), (verdict{"", reason}));
  EXPECT_EQ(halts(root), (std::vector<verdict>{{"", reason}}));
  EXPECT_EQ(report(self, gov, "b", tokens(1)), (verdict{"", reason}));
  EXPECT_EQ(totals(self, gov).total_tokens(), 16);
}

TEST_F(UsageGovernor, ReservationsAreGrantedUntilTheyWouldPassALimit) {
  auto gov = governor(token_limit(1000));
  caf::scoped_actor self{sys};
  caf::scoped_actor root{sys};
  register_root(self, gov, root);
  auto [first, no_refusal] = reserve(self, gov, "fan/a/s", 0, 400);
  EXPECT_NE(first, 0u);
  EXPECT_EQ(no_refusal, "");
  auto [second, none] = reserve(self, gov, "fan/b/s", 0, 600);  // fills it exactly
  EXPECT_NE(second, 0u);
  EXPECT_NE(second, first);
  EXPECT_EQ(none, "");
  EXPECT_TRUE(halts(root).empty());
  // Reserved is not spent: nothing is exceeded yet.
  EXPECT_EQ(totals(self, gov).total_tokens(), 0);
  const std::string refusal =
      "Token limit of 1000 would be exceeded by step 'fan/c/s' (used 0, reserved 1000, "
      "expects 1)";
  EXPECT_EQ(reserve(self, gov, "fan/c/s", 0, 1), (std::tuple<uint64_t, std::string>{0, refusal}));
  // A refusal halts the run.
  EXPECT_EQ(halts(root), (std::vector<verdict>{{"", refusal}}));
  EXPECT_EQ(report(self, gov, "fan/a/s", tokens(400), first), (verdict{"", refusal}));
}

TEST_F(UsageGovernor, ACostReservationIsRefusedWithItsAmounts) {
  auto gov = governor(cost_limit(0.50));
  caf::scoped_actor self{sys};
  EXPECT_EQ(report(self, gov, "a", dollars(0.45)), go_on);
  auto [granted, none] = reserve(self, gov, "fan/a/s", 0.05, 0);
  EXPECT_NE(granted, 0u);
  EXPECT_EQ(none, "");
  EXPECT_EQ(reserve(self, gov, "fan/b/s", 0.10, 0),
            (std::tuple<uint64_t, std::string>{
                0,
                "Cost limit of $0.50 would be exceeded by step 'fan/b/s' (spent $0.45, "
                "reserved $0.05, expects $0.10)"}));
}

TEST_F(UsageGovernor, AReportReleasesItsReservationForTheActualUsage) {
  auto gov = governor(token_limit(1000));
  caf::scoped_actor self{sys};
  caf::scoped_actor root{sys};
  register_root(self, gov, root);
  auto [id, refusal] = reserve(self, gov, "s", 0, 600);
  ASSERT_NE(id, 0u);
  // The attempt spent far less than it expected: 100 are spent, 0 reserved.
  EXPECT_EQ(report(self, gov, "s", tokens(90, 10), id), go_on);
  // Still held, 600 + 600 + 100 would be refused.
  auto [again, none] = reserve(self, gov, "s", 0, 600);
  EXPECT_NE(again, 0u);
  EXPECT_EQ(none, "");
  // A step that did not run gives its reservation back with nothing spent.
  EXPECT_EQ(report(self, gov, "s", usage{}, again), go_on);
  auto [third, still_none] = reserve(self, gov, "t", 0, 900);
  EXPECT_NE(third, 0u);
  EXPECT_EQ(still_none, "");
  // Releasing it twice (an unknown id) changes nothing.
  EXPECT_EQ(report(self, gov, "t", tokens(900), third), go_on);
  EXPECT_EQ(report(self, gov, "t", usage{}, third), go_on);
  EXPECT_EQ(totals(self, gov).total_tokens(), 1000);
  EXPECT_TRUE(halts(root).empty());
  EXPECT_EQ(std::get<1>(reserve(self, gov, "u", 0, 1)),
            "Token limit of 1000 would be exceeded by step 'u' (used 1000, reserved 0, "
            "expects 1)");
}

TEST_F(UsageGovernor, AConstructScopeCountsTheAttemptsInsideItOnly) {
  auto gov = governor({});
  caf::scoped_actor self{sys};
  caf::scoped_actor owner{sys};
  caf::scoped_actor root{sys};
  register_root(self, gov, root);
  open_scope(self, gov, "fan", -1, 100, false, owner);
  // A sibling whose name starts like the scope's is not inside it.
  EXPECT_EQ(report(self, gov, "fanout/x", tokens(500)), go_on);
  EXPECT_EQ(report(self, gov, "fanout", tokens(500)), go_on);
  EXPECT_EQ(report(self, gov, "fan/a/s", tokens(60)), go_on);
  EXPECT_EQ(report(self, gov, "fan/b/s/backup", tokens(40)), go_on);  // 100: reached
  EXPECT_TRUE(halts(owner).empty());
  const std::string reason = "Token limit of 100 exceeded (used 110)";
  EXPECT_EQ(report(self, gov, "fan/b/s", tokens(10)), (verdict{"fan", reason}));
  EXPECT_EQ(halts(owner), (std::vector<verdict>{{"fan", reason}}));
  // Later reports inside get the same verdict; the owner is told once; the
  // run goes on.
  EXPECT_EQ(report(self, gov, "fan/c/s", tokens(1)), (verdict{"fan", reason}));
  EXPECT_TRUE(halts(owner).empty());
  EXPECT_EQ(report(self, gov, "other", tokens(1)), go_on);
  EXPECT_TRUE(halts(root).empty());
  EXPECT_EQ(totals(self, gov).total_tokens(), 1112);
}

TEST_F(UsageGovernor, AStepScopeCountsItsOwnAttemptsNotItsFallbacks) {
  auto gov = governor({});
  caf::scoped_actor self{sys};  // the step's pipeline actor: owner and reporter
  open_scope(self, gov, "s", 0.10, -1, true, self);
  EXPECT_EQ(report(self, gov, "s/backup", dollars(5)), go_on);
  EXPECT_EQ(report(self, gov, "s", dollars(0.06)), go_on);
  EXPECT_EQ(report(self, gov, "s", dollars(0.05)),
            (verdict{"s", "Cost limit of $0.10 exceeded (spent $0.11)"}));
  // The owner reported it itself: it is told by the answer, not a halt.
  EXPECT_TRUE(halts(self).empty());
}

TEST_F(UsageGovernor, AStepScopeOwnedByAnotherActorTellsItsOwner) {
  auto gov = governor({});
  caf::scoped_actor self{sys};
  caf::scoped_actor owner{sys};
  open_scope(self, gov, "l/2/s", -1, 10, true, owner);
  EXPECT_EQ(report(self, gov, "l/2/s", tokens(11)),
            (verdict{"l/2/s", "Token limit of 10 exceeded (used 11)"}));
  EXPECT_EQ(halts(owner),
            (std::vector<verdict>{{"l/2/s", "Token limit of 10 exceeded (used 11)"}}));
}

TEST_F(UsageGovernor, TheOutermostScopePassedIsReported) {
  auto gov = governor({});
  caf::scoped_actor self{sys};
  caf::scoped_actor outer{sys};
  caf::scoped_actor inner{sys};
  open_scope(self, gov, "loop", -1, 100, false, outer);
  open_scope(self, gov, "loop/1/fan", -1, 50, false, inner);
  EXPECT_EQ(report(self, gov, "loop/1/fan/a/s", tokens(60)),
            (verdict{"loop/1/fan", "Token limit of 50 exceeded (used 60)"}));
  EXPECT_EQ(halts(inner),
            (std::vector<verdict>{{"loop/1/fan", "Token limit of 50 exceeded (used 60)"}}));
  EXPECT_EQ(report(self, gov, "loop/1/fan/b/s", tokens(50)),
            (verdict{"loop", "Token limit of 100 exceeded (used 110)"}));
  EXPECT_EQ(halts(outer),
            (std::vector<verdict>{{"loop", "Token limit of 100 exceeded (used 110)"}}));
}

TEST_F(UsageGovernor, TheRunsLimitComesBeforeAnyScopes) {
  auto gov = governor(token_limit(100));
  caf::scoped_actor self{sys};
  caf::scoped_actor owner{sys};
  caf::scoped_actor root{sys};
  register_root(self, gov, root);
  open_scope(self, gov, "m", -1, 10, false, owner);
  const std::string reason = "Token limit of 100 exceeded (used 101)";
  EXPECT_EQ(report(self, gov, "m/0/s", tokens(101)), (verdict{"", reason}));
  EXPECT_EQ(halts(root), (std::vector<verdict>{{"", reason}}));
}

TEST_F(UsageGovernor, AnEndedScopeCountsNothingMoreAndStartsAfreshWhenOpenedAgain) {
  auto gov = governor({});
  caf::scoped_actor self{sys};
  caf::scoped_actor owner{sys};
  open_scope(self, gov, "l/1/s", -1, 10, true, owner);
  EXPECT_EQ(report(self, gov, "l/1/s", tokens(8)), go_on);
  self->send(gov, scope_atom::value, std::string{"l/1/s"});
  EXPECT_EQ(report(self, gov, "l/1/s", tokens(8)), go_on);
  open_scope(self, gov, "l/1/s", -1, 10, true, owner);
  EXPECT_EQ(report(self, gov, "l/1/s", tokens(8)), go_on);
  EXPECT_TRUE(halts(owner).empty());
}

TEST_F(UsageGovernor, ConcurrentReportsFromManyActorsSumExactly) {
  // 200 attempts reporting at once, each 7 + 3 tokens and 1/128 USD (exact in
  // binary, so the sum does not depend on the order).
  constexpr int n = 200;
  for (int64_t limit : {int64_t{2000}, int64_t{1999}}) {
    auto gov = governor(usage_limits{n / 128.0, limit});
    caf::scoped_actor self{sys};
    caf::scoped_actor root{sys};
    register_root(self, gov, root);
    EXPECT_EQ(totals(self, gov).total_tokens(), 0);  // the root is registered
    auto collector = handle(self);
    for (int i = 0; i < n; ++i)
      sys.spawn(
          [](caf::event_based_actor* a, caf::actor gov, caf::actor collector, int i) {
            a->request(gov, caf::infinite, spent_atom::value, "fan/b" + std::to_string(i) + "/s",
                       uint64_t{0}, tokens(7, 3, 1.0 / 128), std::string{})
                .then([a, collector](std::string& scope, std::string& reason) {
                  a->send(collector, done_atom::value, scope, reason);
                });
          },
          gov, collector, i);
    std::vector<verdict> answers;
    for (int i = 0; i < n; ++i)
      self->receive([&](done_atom, std::string& scope, std::string& reason) {
        answers.push_back({scope, reason});
      });
    auto t = totals(self, gov);
    EXPECT_EQ(t.prompt_tokens, 7 * n);
    EXPECT_EQ(t.completion_tokens, 3 * n);
    EXPECT_EQ(t.cost_usd, n / 128.0);
    // Exactly the last report counted passes a limit of 1999.
    auto breaches = std::count_if(answers.begin(), answers.end(),
                                  [](const verdict& v) { return !v.reason.empty(); });
    if (limit == 2000) {
      EXPECT_EQ(breaches, 0);
      EXPECT_TRUE(halts(root).empty());
    } else {
      EXPECT_EQ(breaches, 1);
      EXPECT_EQ(halts(root),
                (std::vector<verdict>{{"", "Token limit of 1999 exceeded (used 2000)"}}));
    }
  }
}

TEST_F(UsageGovernor, ConcurrentReservationsNeverOverbook) {
  // 50 attempts ask for 100 tokens each at once against a limit of 1000:
  // exactly 10 are granted, whatever the order.
  constexpr int n = 50;
  auto gov = governor(token_limit(1000));
  caf::scoped_actor self{sys};
  auto collector = handle(self);
  for (int i = 0; i < n; ++i)
    sys.spawn(
        [](caf::event_based_actor* a, caf::actor gov, caf::actor collector, int i) {
          a->request(gov, caf::infinite, reserve_atom::value, "m/" + std::to_string(i) + "/s", 0.0,
                     int64_t{100})
              .then([a, collector](uint64_t id, std::string& refusal) {
                a->send(collector, done_atom::value, id, refusal);
              });
        },
        gov, collector, i);
  int granted = 0;
  int refused = 0;
  for (int i = 0; i < n; ++i)
    self->receive([&](done_atom, uint64_t id, std::string& refusal) {
      if (id != 0 && refusal.empty()) ++granted;
      if (id == 0 && !refusal.empty()) ++refused;
    });
  EXPECT_EQ(granted, 10);
  EXPECT_EQ(refused, n - 10);
}

}  // namespace
}  // namespace caudal
