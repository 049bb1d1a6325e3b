// The server-sent events parser on its own: the event stream format and
// bytes split anywhere.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "runtime/sse_parser.hpp"

namespace caudal {
namespace {

using testing::ElementsAre;
using testing::IsEmpty;

/// Feeds `pieces` in order; returns each dispatched event as "type|data|id".
std::vector<std::string> parse(sse_parser& parser, const std::vector<std::string>& pieces) {
  std::vector<std::string> events;
  for (const auto& piece : pieces) {
    parser.feed(piece, [&](const sse_event& e) {
      events.push_back(e.type + "|" + e.data + "|" + e.id);
      return true;
    });
  }
  return events;
}

std::vector<std::string> parse(const std::vector<std::string>& pieces) {
  sse_parser parser;
  return parse(parser, pieces);
}

TEST(SseParser, DispatchesAnEventAtAnEmptyLine) {
  EXPECT_THAT(parse({"data: hello\n\n"}), ElementsAre("|hello|"));
  EXPECT_THAT(parse({"data: hello\n"}), IsEmpty());
}

TEST(SseParser, JoinsDataLinesWithNewlines) {
  EXPECT_THAT(parse({"data: a\ndata: b\ndata\n\n"}), ElementsAre("|a\nb\n|"));
}

TEST(SseParser, AcceptsCrlfCrAndLfLineEnds) {
  EXPECT_THAT(parse({"data: a\r\n\r\ndata: b\r\rdata: c\n\n"}), ElementsAre("|a|", "|b|", "|c|"));
}

TEST(SseParser, RemovesOneSpaceAfterTheColonOnly) {
  EXPECT_THAT(parse({"data:x\n\ndata:  y\n\ndata: z:1\n\n"}), ElementsAre("|x|", "| y|", "|z:1|"));
}

TEST(SseParser, IgnoresCommentsRetryAndUnknownFields) {
  EXPECT_THAT(parse({": keep-alive\nretry: 1000\nfoo: bar\ndata: x\n\n:\n\n"}), ElementsAre("|x|"));
}

TEST(SseParser, KeepsTheTypeForOneEventAndTheIdForAllLaterOnes) {
  EXPECT_THAT(parse({"event: delta\nid: 7\ndata: a\n\ndata: b\n\n"}),
              ElementsAre("delta|a|7", "|b|7"));
}

TEST(SseParser, EventWithoutDataIsNotDispatchedAndItsTypeDoesNotCarryOver) {
  EXPECT_THAT(parse({"event: ping\n\ndata: x\n\n"}), ElementsAre("|x|"));
}

TEST(SseParser, DropsALeadingByteOrderMarkEvenWhenSplit) {
  EXPECT_THAT(parse({"\xEF\xBB",
                     "\xBF"
                     "data: x\n\n"}),
              ElementsAre("|x|"));
  EXPECT_THAT(parse({"\xEF\xBB\xBF"
                     ": c\n\xEF\xBB\xBF"
                     "data: x\n\n"}),
              IsEmpty())
      << "only the stream's first line may start with one";
}

TEST(SseParser, CrAtTheEndOfAPieceAndLfAtTheStartOfTheNextAreOneLineEnd) {
  EXPECT_THAT(parse({"data: a\r", "\ndata: b\r", "\n\r", "\n"}), ElementsAre("|a\nb|"));
}

TEST(SseParser, SameEventsWhateverTheSplit) {
  const std::string text =
      "\xEF\xBB\xBF: comment\r\n"
      "data: {\"content\": \"Grüße 世界 🚀\"}\r\n\r\n"
      "event: x\ndata: é\ndata: ü\n\n"
      "data: [DONE]\r\r";
  const auto whole = parse({text});
  ASSERT_THAT(whole, ElementsAre("|{\"content\": \"Grüße 世界 🚀\"}|", "x|é\nü|", "|[DONE]|"));
  for (size_t i = 0; i <= text.size(); ++i) {
    for (size_t j = i; j <= text.size(); ++j) {
      ASSERT_EQ(parse({text.substr(0, i), text.substr(i, j - i), text.substr(j)}), whole)
          << "cuts at " << i << " and " << j;
    }
  }
  std::vector<std::string> bytes;
  for (char c : text) bytes.emplace_back(1, c);
  EXPECT_EQ(parse(bytes), whole);
}

TEST(SseParser, AHandlerCanStopTheParse) {
  sse_parser parser;
  std::vector<std::string> seen;
  bool keep_going = parser.feed("data: a\n\ndata: [DONE]\n\ndata: b\n\n", [&](const sse_event& e) {
    seen.push_back(e.data);
    return e.data != "[DONE]";
  });
  EXPECT_FALSE(keep_going);
  EXPECT_THAT(seen, ElementsAre("a", "[DONE]"));
}

TEST(SseParser, TellsWhetherAnEventIsPending) {
  sse_parser parser;
  EXPECT_FALSE(parser.has_pending());
  parse(parser, {"da"});
  EXPECT_TRUE(parser.has_pending());
  parse(parser, {"ta: x\n"});
  EXPECT_TRUE(parser.has_pending());
  parse(parser, {"\n"});
  EXPECT_FALSE(parser.has_pending());
  parse(parser, {": only a comment\n"});
  EXPECT_FALSE(parser.has_pending());
}

}  // namespace
}  // namespace caudal
