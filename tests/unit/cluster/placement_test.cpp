// The cluster's rules and the worker's executor, in process: which steps go
// to the cluster, the address and security rules of SPEC §6, and what the
// executor refuses (another Caudal version, a placement past its slots, a
// pipeline it was never sent).

#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scoped_actor.hpp>
#include <gtest/gtest.h>

#include "../../proc_support.hpp"
#include "caudal/cluster.hpp"
#include "cluster/executor.hpp"
#include "cluster/placement.hpp"
#include "messages/type_ids.hpp"
#include "runtime/blocking_pool.hpp"
#include "runtime/loader.hpp"
#include "runtime/process_runner.hpp"

namespace caudal::cluster {
namespace {

namespace fs = std::filesystem;

std::shared_ptr<const pipeline> load(const std::string& yaml) {
  static auto agents = agent_registry::with_builtins(make_posix_process_runner());
  auto loaded = load_pipeline_text(yaml, "p.yaml", *agents);
  EXPECT_TRUE(loaded.ok()) << (loaded.errors.empty() ? "" : loaded.errors[0].to_string());
  return loaded.pipeline;
}

constexpr const char* every_place = R"(
version: 1
name: p
agents:
  a: {type: lua, code: "input"}
steps:
  - {name: plain, agent: a}
  - {name: pinned, agent: a, placement: cluster}
  - kind: parallel
    name: fan
    branches:
      x: [{name: in_branch, agent: a}]
      y:
        - kind: loop
          name: again
          max_loops: 2
          body: [{name: deep, agent: a}]
  - kind: map
    name: each
    over: "input"
    body: [{name: item, agent: a}]
  - kind: loop
    name: repeat
    max_loops: 2
    body: [{name: looped, agent: a}]
  - kind: conditional
    name: route
    condition: "'k'"
    branches: {k: [{name: routed, agent: a}]}
)";

TEST(PlacementRules, BranchesAndMapItemsAtAnyDepthAndPinnedStepsGoToTheCluster) {
  auto p = load(every_place);
  ASSERT_TRUE(p);
  auto placed = [&](const std::string& locator) {
    const step_spec* spec = find_step(*p, locator);
    EXPECT_NE(spec, nullptr) << locator;
    return spec != nullptr && is_placed_on_cluster(*p, locator, *spec);
  };
  EXPECT_FALSE(placed("0"));
  EXPECT_TRUE(placed("1"));
  EXPECT_TRUE(placed("2/branch/x/0"));
  EXPECT_TRUE(placed("2/branch/y/0/body/0"));  // a loop inside a branch
  EXPECT_TRUE(placed("3/body/0"));              // a map item
  EXPECT_FALSE(placed("4/body/0"));             // a loop iteration stays
  EXPECT_FALSE(placed("5/branch/k/0"));         // so does a conditional branch
}

TEST(SecurityRules, AddressesAndTheInsecureFlag) {
  EXPECT_TRUE(is_loopback_host("127.0.0.1"));
  EXPECT_TRUE(is_loopback_host("127.9.9.9"));
  EXPECT_TRUE(is_loopback_host("::1"));
  EXPECT_TRUE(is_loopback_host("localhost"));
  EXPECT_FALSE(is_loopback_host("0.0.0.0"));
  EXPECT_FALSE(is_loopback_host("10.0.0.1"));
  EXPECT_FALSE(is_loopback_host("example.org"));

  auto parsed = parse_host_port("[::1]:7000");
  ASSERT_TRUE(std::holds_alternative<host_port>(parsed));
  EXPECT_EQ(std::get<host_port>(parsed).host, "::1");
  EXPECT_EQ(std::get<host_port>(parsed).port, 7000);
  EXPECT_EQ(std::get<std::string>(parse_host_port("host")), "'host' is not HOST:PORT");
  EXPECT_EQ(std::get<std::string>(parse_host_port("h:70000")), "'h:70000': the port is past 65535");

  EXPECT_EQ(check_node_security({"127.0.0.1:1"}, "", "", true, node_role::worker), std::nullopt);
  auto remote = check_node_security({"127.0.0.1:1", "10.0.0.2:7000"}, "", "", true, node_role::coordinator);
  ASSERT_TRUE(remote);
  EXPECT_NE(remote->find("'10.0.0.2:7000' is not"), std::string::npos) << *remote;
  auto neither = check_node_security({"127.0.0.1:1"}, "", "", false, node_role::worker);
  ASSERT_TRUE(neither);
  EXPECT_NE(neither->find("caudal cert create-ca"), std::string::npos) << *neither;
  auto missing = check_node_security({"127.0.0.1:1"}, "/nonexistent", "w1", false, node_role::worker);
  ASSERT_TRUE(missing);
  EXPECT_NE(missing->find("missing /nonexistent/ca.crt"), std::string::npos) << *missing;
}

struct executor_config_for_tests : caf::actor_system_config {
  executor_config_for_tests() {
    register_types(*this);
    set("logger.verbosity", caf::atom("quiet"));
  }
};

class Executor : public ::testing::Test {
 protected:
  Executor() : sys(cfg), self(sys) {
    executor_config ec;
    ec.name = "w1";
    ec.slots = 1;
    ec.workdir = "/tmp";
    ec.version = "1.2.3";
    ec.heartbeat_s = 0.25;
    ec.connection_timeout_s = 1;
    ec.agents = agent_registry::with_builtins(make_posix_process_runner());
    ec.pool = pool;
    executor = spawn_executor(sys, ec);
  }
  ~Executor() override { caf::anon_send_exit(executor, caf::exit_reason::user_shutdown); }

  /// The text of the error `executor` answers `msg` with ("" if none).
  template <class... Ts>
  std::string refusal(Ts&&... xs) {
    std::string text;
    self->request(executor, std::chrono::seconds{10}, std::forward<Ts>(xs)...)
        .receive([](const caf::message&) {},
                 [&](caf::error& err) { text = err.context().get_as<std::string>(0); });
    return text;
  }

  /// A pipeline (key k1) of one step `s` running `sleep SECONDS`.
  static std::string napping(const std::string& seconds) {
    return "version: 1\nname: p\nagents:\n  nap: {type: command, argv: [\"sleep\", \"" +
           seconds + "\"]}\nsteps: [{name: s, agent: nap}]\n";
  }

  /// The request for attempt `attempt` of that step `s`.
  static attempt_request request_for_s(int attempt = 1) {
    attempt_request req;
    req.run_id = "r1";
    req.step_path = "s";
    req.step_locator = "0";
    req.attempt = attempt;
    return req;
  }

  /// Places `req` of pipeline k1 with its `source`: the attempt actor, or
  /// null and a failure when refused.
  caf::actor place(const std::string& source, const attempt_request& req) {
    caf::actor running;
    self->request(executor, std::chrono::seconds{10}, place_atom::value, std::string{"k1"},
                  source, std::string{"p.yaml"}, req, caf::actor_cast<caf::actor>(self))
        .receive([&](caf::actor& a) { running = a; },
                 [](caf::error& err) { ADD_FAILURE() << caf::to_string(err); });
    return running;
  }

  executor_config_for_tests cfg;
  caf::actor_system sys;
  caf::scoped_actor self;
  std::shared_ptr<blocking_pool> pool = std::make_shared<blocking_pool>();
  caf::actor executor;
};

TEST_F(Executor, RefusesAnotherVersionNamingBoth) {
  EXPECT_EQ(refusal(hello_atom::value, std::string{"9.9.9"}, 0.5),
            "worker w1 runs Caudal 1.2.3, the coordinator runs 9.9.9");
  self->request(executor, std::chrono::seconds{10}, hello_atom::value, std::string{"1.2.3"}, 0.5)
      .receive(
          [](const std::string& name, uint32_t slots, const std::string& version,
             double heartbeat_s) {
            EXPECT_EQ(name, "w1");
            EXPECT_EQ(slots, 1u);
            EXPECT_EQ(version, "1.2.3");
            EXPECT_EQ(heartbeat_s, 0.25);
          },
          [](caf::error& err) { ADD_FAILURE() << caf::to_string(err); });
}

TEST_F(Executor, RefusesACoordinatorItWouldLoseWhileIdle) {
  // Its connection timeout is 1 s: a coordinator beating every 1 s or more
  // would be dropped between two heartbeats.
  EXPECT_EQ(refusal(hello_atom::value, std::string{"1.2.3"}, 1.0),
            "the coordinator sends heartbeats every 1 s, not more often than worker w1's "
            "connection timeout of 1 s: it would be lost while idle (make --heartbeat-interval "
            "shorter than every peer's --connection-timeout)");
  EXPECT_EQ(detection_mismatch("worker w2", 0.5, "this coordinator", 2), std::nullopt);
  EXPECT_TRUE(detection_mismatch("worker w2", 3, "this coordinator", 2));
}

TEST_F(Executor, NeedsThePipelineOnceAndNeverMoreThanItsSlots) {
  auto req = request_for_s();
  EXPECT_EQ(refusal(place_atom::value, std::string{"k1"}, std::string{}, std::string{"p.yaml"},
                    req, caf::actor_cast<caf::actor>(self)),
            unknown_pipeline);
  // With its text the first attempt takes the one slot; a second is refused.
  ASSERT_TRUE(place(napping("5"), req));
  EXPECT_EQ(refusal(place_atom::value, std::string{"k1"}, std::string{}, std::string{"p.yaml"},
                    req, caf::actor_cast<caf::actor>(self)),
            executor_busy);
  // Cancelled, it answers its supervisor `cancelled`, and the slot is free.
  self->send(executor, cancel_atom::value);
  self->receive([](attempt_result& r) { EXPECT_EQ(r.failure, failure_class::cancelled); },
                caf::after(std::chrono::seconds{10}) >> [] { ADD_FAILURE() << "no result"; });
}

TEST_F(Executor, ReportsAnAttemptThatDiedWithoutAnsweringAndItsChildGoes) {
  auto pid_file = fs::temp_directory_path() / ("caudal-executor-" + std::to_string(::getpid()));
  fs::remove(pid_file);
  auto running = place("version: 1\nname: p\nagents:\n  nap: {type: command, argv: [sh, -c, "
                       "\"echo $$ > " + pid_file.string() + "; exec sleep 30\"]}\n"
                       "steps: [{name: s, agent: nap}]\n",
                       request_for_s(2));
  ASSERT_TRUE(running);
  // The coordinator does not monitor attempts across the network: the
  // executor tells it, as the attempt's answer.
  pid_t child = 0;
  for (int i = 0; i < 1000 && child == 0; ++i) {
    std::ifstream{pid_file} >> child;
    if (child == 0) std::this_thread::sleep_for(std::chrono::milliseconds{5});
  }
  ASSERT_GT(child, 0) << "the agent never started";
  caf::anon_send_exit(running, caf::exit_reason::kill);
  self->receive(
      [](attempt_result& r) {
        EXPECT_EQ(r.step_path, "s");
        EXPECT_EQ(r.attempt, 2);
        EXPECT_EQ(r.failure, failure_class::agent);
        EXPECT_EQ(r.error_kind, "Crashed");
        EXPECT_EQ(r.node, "w1");
        EXPECT_NE(r.feedback.find("attempt actor terminated on worker w1: "), std::string::npos)
            << r.feedback;
      },
      caf::after(std::chrono::seconds{10}) >> [] { ADD_FAILURE() << "no report"; });
  // Its `sleep 30` was killed with it, and the job does not answer too.
  bool is_gone = false;
  for (int i = 0; i < 2000 && !is_gone; ++i) {
    is_gone = ::kill(child, 0) != 0 || testing_support::process_state(child) == 'Z';
    if (!is_gone) std::this_thread::sleep_for(std::chrono::milliseconds{5});
  }
  EXPECT_TRUE(is_gone) << "the agent " << child << " outlived its attempt";
  self->receive([](attempt_result& r) { ADD_FAILURE() << "a second answer: " << r.feedback; },
                caf::after(std::chrono::milliseconds{300}) >> [] {});
  fs::remove(pid_file);
  // And the slot is free again.
  self->request(executor, std::chrono::seconds{10}, status_atom::value)
      .receive([](const std::string&, uint32_t slots, uint32_t running_now) {
                 EXPECT_EQ(slots, 1u);
                 EXPECT_EQ(running_now, 0u);
               },
               [](caf::error& err) { ADD_FAILURE() << caf::to_string(err); });
}

}  // namespace
}  // namespace caudal::cluster
