// The step cache through the `caudal` binary (SPEC §3, §7): an output stored
// by one process is served to the next one without running the agent, the
// result and the trace say `cache_hit`, and `caudal cache clear [--pipeline]`
// drops what it says it drops.

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "cli_support.hpp"
#include "messages/value.hpp"

namespace caudal {
namespace {

namespace fs = std::filesystem;

using namespace acceptance;

class CacheCli : public cli_database_test {
 protected:
  CacheCli() : cli_database_test("cache-cli") {}

  /// A pipeline named `name` whose cached step uppercases its input and
  /// logs each real execution.
  std::string pipeline(const std::string& name) {
    auto path = dir_ / (name + ".yaml");
    std::ofstream{path} << "version: 1\nname: " << name << R"(
agents:
  up: {type: command, argv: ["sh", "-c", "echo ran >> )"
                        << log_ << R"(; tr a-z A-Z"]}
steps:
  - {name: shout, agent: up, cache: {ttl_s: 3600}}
)";
    return path.string();
  }

  size_t runs_logged() const {
    std::ifstream in{log_};
    size_t n = 0;
    for (std::string line; std::getline(in, line);) ++n;
    return n;
  }

};

TEST_F(CacheCli, ASecondProcessGetsTheStoredOutput) {
  auto p = pipeline("greet");
  auto first = cli({"run", p, "--input", "hello", "--json"});
  ASSERT_EQ(first.code, 0) << first.err;
  EXPECT_EQ(value::parse(first.out)["steps"][0]["cache_hit"], false);
  auto second = cli({"run", p, "--input", "hello", "--json"});
  ASSERT_EQ(second.code, 0) << second.err;
  auto result = value::parse(second.out);
  EXPECT_EQ(result["output"], "HELLO");
  EXPECT_EQ(result["steps"][0]["cache_hit"], true);
  EXPECT_EQ(result["steps"][0]["attempts"], 0);
  EXPECT_EQ(runs_logged(), 1u);

  auto shown = cli({"show", result["run_id"].get<std::string>()});
  ASSERT_EQ(shown.code, 0) << shown.err;
  EXPECT_NE(shown.out.find("cache hit"), std::string::npos) << shown.out;
  auto trace = cli({"show", result["run_id"].get<std::string>(), "--json"});
  ASSERT_EQ(trace.code, 0) << trace.err;
  EXPECT_NE(trace.out.find("\"cache_hit\": true"), std::string::npos) << trace.out;
}

TEST_F(CacheCli, ClearDropsEverythingOrOnePipeline) {
  auto a = pipeline("alpha");
  auto b = pipeline("beta");
  ASSERT_EQ(cli({"run", a, "--input", "x"}).code, 0);
  ASSERT_EQ(cli({"run", a, "--input", "y"}).code, 0);
  ASSERT_EQ(cli({"run", b, "--input", "x"}).code, 0);
  ASSERT_EQ(runs_logged(), 3u);

  auto cleared = cli({"cache", "clear", "--pipeline", "alpha"});
  EXPECT_EQ(cleared.code, 0) << cleared.err;
  EXPECT_EQ(cleared.out, "cleared 2 cache entries of pipeline 'alpha'\n");
  ASSERT_EQ(cli({"run", a, "--input", "x"}).code, 0);
  ASSERT_EQ(cli({"run", b, "--input", "x"}).code, 0);
  EXPECT_EQ(runs_logged(), 4u) << "alpha ran again, beta was still cached";

  cleared = cli({"cache", "clear"});
  EXPECT_EQ(cleared.code, 0) << cleared.err;
  EXPECT_EQ(cleared.out, "cleared 2 cache entries\n");
  ASSERT_EQ(cli({"run", b, "--input", "x"}).code, 0);
  EXPECT_EQ(runs_logged(), 5u);
}

TEST_F(CacheCli, ClearOnAForeignDirectoryIsRefused) {
  fs::create_directories(db_);
  std::ofstream{fs::path{db_} / "notes.txt"} << "mine";
  auto r = cli({"cache", "clear"});
  EXPECT_EQ(r.code, 5) << r.out << r.err;
  EXPECT_NE(r.err.find(db_), std::string::npos) << r.err;
  EXPECT_TRUE(fs::exists(fs::path{db_} / "notes.txt"));
}

TEST_F(CacheCli, CacheWithoutASubcommandIsAnArgumentError) {
  auto r = cli({"cache"});
  EXPECT_EQ(r.code, 2) << r.out << r.err;
}

}  // namespace
}  // namespace caudal
