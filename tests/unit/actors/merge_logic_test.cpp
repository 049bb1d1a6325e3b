// SPEC §1's merge strategies for branch contexts, as plain functions.

#include <gtest/gtest.h>

#include "actors/merge_logic.hpp"

namespace caudal {
namespace {

const value base = value::parse(R"({"topic": "rust", "review": {"x": 0, "y": 0}, "n": 1})");

std::vector<branch_context> two_branches() {
  auto a = base;
  a["review"]["x"] = 1;
  a["from_a"] = true;
  auto b = base;
  b["review"]["y"] = 2;
  b["from_b"] = true;
  return {{"a", a}, {"b", b}};
}

std::vector<branch_context> conflicting() {
  auto a = base;
  a["n"] = 10;
  auto b = base;
  b["n"] = 20;
  return {{"a", a}, {"b", b}};
}

TEST(MergeLogic, ChangesListOnlyWhatDiffers) {
  auto changed = base;
  changed["review"]["x"] = 5;
  changed["new"] = {1, 2};
  EXPECT_EQ(context_changes(base, changed), value::parse(R"({"review": {"x": 5}, "new": [1, 2]})"));
  EXPECT_EQ(context_changes(base, base), value::object());
}

TEST(MergeLogic, ContextUpdateDeepMergesEveryBranch) {
  auto ctx = base;
  EXPECT_FALSE(merge_branch_contexts("context_update", ctx, two_branches()));
  EXPECT_EQ(ctx, value::parse(R"({"topic": "rust", "review": {"x": 1, "y": 2}, "n": 1,
                                  "from_a": true, "from_b": true})"));
  auto later_wins = base;
  EXPECT_FALSE(merge_branch_contexts("context_update", later_wins, conflicting()));
  EXPECT_EQ(later_wins["n"], 20);
}

TEST(MergeLogic, OverwriteReplacesChangedTopLevelKeys) {
  auto ctx = base;
  EXPECT_FALSE(merge_branch_contexts("overwrite", ctx, two_branches()));
  // b's whole `review` (x untouched by b) replaces a's.
  EXPECT_EQ(ctx["review"], value::parse(R"({"x": 0, "y": 2})"));
  EXPECT_EQ(ctx["from_a"], true);
}

TEST(MergeLogic, KeepFirstKeepsTheFirstBranchesLeaf) {
  auto ctx = base;
  EXPECT_FALSE(merge_branch_contexts("keep_first", ctx, conflicting()));
  EXPECT_EQ(ctx["n"], 10);
}

TEST(MergeLogic, ErrorOnConflictNamesTheKeyAndBothBranches) {
  auto ctx = base;
  auto error = merge_branch_contexts("error_on_conflict", ctx, conflicting());
  ASSERT_TRUE(error);
  EXPECT_EQ(*error, "merge conflict on context key 'n': branch 'a' set 10, branch 'b' set 20");
  auto fine = base;
  EXPECT_FALSE(merge_branch_contexts("error_on_conflict", fine, two_branches()));
  EXPECT_EQ(fine["review"], value::parse(R"({"x": 1, "y": 2})"));
}

TEST(MergeLogic, SameValueFromTwoBranchesIsNoConflict) {
  auto a = base;
  a["n"] = 5;
  auto ctx = base;
  EXPECT_FALSE(merge_branch_contexts("error_on_conflict", ctx, {{"a", a}, {"b", a}}));
  EXPECT_EQ(ctx["n"], 5);
}

TEST(MergeLogic, NoMergeLeavesTheContext) {
  auto ctx = base;
  EXPECT_FALSE(merge_branch_contexts("no_merge", ctx, two_branches()));
  EXPECT_EQ(ctx, base);
}

TEST(MergeLogic, NestedConflictNamesTheDottedKey) {
  auto a = base;
  a["review"]["x"] = "a";
  auto b = base;
  b["review"]["x"] = "b";
  auto ctx = base;
  auto error = merge_branch_contexts("error_on_conflict", ctx, {{"a", a}, {"b", b}});
  ASSERT_TRUE(error);
  EXPECT_EQ(*error,
            "merge conflict on context key 'review.x': branch 'a' set \"a\", branch 'b' set \"b\"");
}

}  // namespace
}  // namespace caudal
