// How streamed chunks are laid out on the terminal (cli/chunk_layout.hpp):
// a lone stream as it comes, concurrent ones on prefixed lines that never
// mix, waiting text and when it takes the line, retries, styles.

#include "cli/chunk_layout.hpp"

#include <gtest/gtest.h>

namespace caudal::cli {
namespace {

// Feeds a layout and keeps everything it printed.
struct screen {
  explicit screen(chunk_layout::options o = {}) : layout(std::move(o)) {}

  std::string chunk(const std::string& path, const std::string& text, bool is_concurrent = true,
                    int attempt = 1) {
    std::string out;
    layout.add_chunk(path, attempt, text, is_concurrent, out);
    all += out;
    return out;
  }
  std::string end(const std::string& path) {
    std::string out;
    layout.end_attempt(path, out);
    all += out;
    return out;
  }
  std::string finish() {
    std::string out;
    layout.finish(out);
    all += out;
    return out;
  }

  chunk_layout layout;
  std::string all;
};

TEST(ChunkLayout, ALoneStreamIsPrintedAsItComesPartialLinesIncluded) {
  screen s;
  EXPECT_TRUE(s.layout.is_at_line_start());
  EXPECT_EQ(s.chunk("draft", "Hel", false), "Hel");
  EXPECT_FALSE(s.layout.is_at_line_start());
  EXPECT_EQ(s.chunk("draft", "lo\nwor", false), "lo\nwor");
  EXPECT_EQ(s.chunk("draft", "ld\n", false), "ld\n");
  EXPECT_TRUE(s.layout.is_at_line_start());
  EXPECT_EQ(s.end("draft"), "");
  EXPECT_EQ(s.layout.streamed("draft"), "Hello\nworld\n");
  EXPECT_EQ(s.layout.streamed("other"), "");
}

TEST(ChunkLayout, AnEndedStepIsForgotten) {
  screen s;
  s.chunk("fan/a", "a ");
  s.chunk("fan/b", "b");
  std::string out;
  s.layout.end_step("fan/b", out);
  EXPECT_EQ(out, "\n[fan/b] b\n");
  EXPECT_EQ(s.layout.streamed("fan/b"), "");
  EXPECT_EQ(s.layout.streamed("fan/a"), "a ");
}

TEST(ChunkLayout, AnAttemptThatEndsMidLineEndsTheLine) {
  screen s;
  s.chunk("draft", "no newline", false);
  EXPECT_EQ(s.end("draft"), "\n");
  EXPECT_TRUE(s.layout.is_at_line_start());
  EXPECT_EQ(s.chunk("summary", "next step", false), "next step");
  EXPECT_EQ(s.all, "no newline\nnext step");
}

TEST(ChunkLayout, ConcurrentStreamsTakeTurnsOnPrefixedLines) {
  screen s;
  EXPECT_EQ(s.chunk("fan/a/sa", "a1 "), "[fan/a/sa] a1 ");
  EXPECT_EQ(s.chunk("fan/b/sb", "b1 "), "");  // a's line is open: b waits
  EXPECT_EQ(s.chunk("fan/a/sa", "a2\n"), "a2\n[fan/b/sb] b1 ");
  EXPECT_EQ(s.chunk("fan/a/sa", "a3 "), "");
  EXPECT_EQ(s.chunk("fan/b/sb", "b2\n"), "b2\n[fan/a/sa] a3 ");
  EXPECT_EQ(s.end("fan/b/sb"), "");
  EXPECT_EQ(s.end("fan/a/sa"), "\n");
  EXPECT_EQ(s.all, "[fan/a/sa] a1 a2\n[fan/b/sb] b1 b2\n[fan/a/sa] a3 \n");
  EXPECT_EQ(s.layout.streamed("fan/a/sa"), "a1 a2\na3 ");
  EXPECT_EQ(s.layout.streamed("fan/b/sb"), "b1 b2\n");
}

TEST(ChunkLayout, EveryLineOfAChunkGetsThePrefix) {
  screen s;
  EXPECT_EQ(s.chunk("m/0/x", "one\ntwo\nthr"), "[m/0/x] one\n[m/0/x] two\n[m/0/x] thr");
  EXPECT_EQ(s.chunk("m/0/x", "ee\n"), "ee\n");
}

TEST(ChunkLayout, WaitingWholeLinesWaitForTheOpenLineToEnd) {
  screen s;
  s.chunk("a", "a long line ");
  EXPECT_EQ(s.chunk("b", "b one\nb two\n"), "");
  EXPECT_EQ(s.chunk("a", "goes on\n"), "goes on\n[b] b one\n[b] b two\n");
  EXPECT_EQ(s.chunk("a", "again\n"), "[a] again\n");
  EXPECT_EQ(s.all, "[a] a long line goes on\n[b] b one\n[b] b two\n[a] again\n");
}

TEST(ChunkLayout, WaitingTextThatReachesTheLimitTakesTheLine) {
  screen s{{"", "", 8}};
  s.chunk("a", "aaa");
  EXPECT_EQ(s.chunk("b", "bb\nb"), "");
  EXPECT_EQ(s.chunk("b", "cccc"), "\n[b] bb\n[b] bcccc");
  EXPECT_EQ(s.chunk("a", "x"), "");  // b owns the line now
  EXPECT_EQ(s.end("b"), "\n[a] x");
  EXPECT_EQ(s.finish(), "\n");
  EXPECT_EQ(s.all, "[a] aaa\n[b] bb\n[b] bcccc\n[a] x\n");
}

TEST(ChunkLayout, AnEndingAttemptPrintsItsWaitingText) {
  screen s;
  s.chunk("a", "a is talking ");
  s.chunk("b", "b's last words");
  EXPECT_EQ(s.end("b"), "\n[b] b's last words\n");
  EXPECT_EQ(s.chunk("a", "on"), "[a] on");
}

TEST(ChunkLayout, FinishPrintsEverythingStillWaitingOnLinesOfTheirOwn) {
  screen s;
  s.chunk("a", "a");
  s.chunk("b", "b");
  s.chunk("c", "c");
  EXPECT_EQ(s.finish(), "\n[b] b\n[c] c\n");
  EXPECT_TRUE(s.layout.is_at_line_start());
}

TEST(ChunkLayout, ARetryStartsOnAFreshLineAndOnlyItsTextCounts) {
  screen s;
  s.chunk("ask", "lost wo", false, 1);
  EXPECT_EQ(s.end("ask"), "\n");
  EXPECT_EQ(s.chunk("ask", "kept", false, 2), "kept");
  EXPECT_EQ(s.layout.streamed("ask"), "kept");
  EXPECT_EQ(s.all, "lost wo\nkept");
}

// Lines before a second step ran keep no prefix; from then on they have one.
TEST(ChunkLayout, ALoneStreamJoinedByAnotherSwitchesToPrefixesOnANewLine) {
  screen s;
  EXPECT_EQ(s.chunk("a", "a1 ", false), "a1 ");
  EXPECT_EQ(s.chunk("a", "a2\n", true), "\n[a] a2\n");
  EXPECT_EQ(s.chunk("b", "b1\n", true), "[b] b1\n");
}

TEST(ChunkLayout, APrefixedStreamKeepsItsPrefixWhenTheOthersEndFirst) {
  screen s;
  s.chunk("fan/a", "a1\n");
  s.chunk("fan/b", "b1\n");
  s.end("fan/a");
  EXPECT_EQ(s.chunk("fan/b", "b2\n", false), "[fan/b] b2\n");
  s.end("fan/b");
  EXPECT_EQ(s.chunk("fan/b", "retry\n", false, 2), "retry\n");
}

TEST(ChunkLayout, AStreamAloneAgainAfterOthersEndedIsPlain) {
  screen s;
  s.chunk("fan/a", "x\n");
  s.chunk("fan/b", "y\n");
  s.end("fan/a");
  s.end("fan/b");
  EXPECT_EQ(s.chunk("summary", "all done", false), "all done");
}

TEST(ChunkLayout, PrefixesCarryTheirStyle) {
  screen s{{"\x1b[36m", "\x1b[0m", 64}};
  EXPECT_EQ(s.chunk("a", "x\n"), "\x1b[36m[a]\x1b[0m x\n");
  s.end("a");
  EXPECT_EQ(s.chunk("b", "plain", false), "plain");
}

TEST(ChunkLayout, EmptyChunksPrintNothing) {
  screen s;
  EXPECT_EQ(s.chunk("a", ""), "");
  EXPECT_TRUE(s.layout.is_at_line_start());
  EXPECT_EQ(s.end("a"), "");
}

}  // namespace
}  // namespace caudal::cli
