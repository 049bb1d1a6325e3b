// Streaming latency (issue 7): a chunk must reach the terminal ≤ 1 ms after
// it arrives on the socket. Measured end to end: a fake OpenAI server on
// 127.0.0.1 stamps the moment it writes each delta event; the engine runs a
// one-step pipeline whose `openai` agent streams from it, and the CLI's live
// printer (cli/live_output.hpp) writes the chunks to a pipe (argument 0) or
// a pseudo-terminal (argument 1) whose reader thread stamps each chunk's
// arrival. So the figure includes the client's socket read, SSE parsing,
// the hop to the step's actor, the printer and the reader's wake-up.
// The server writes the next delta only once the previous one was read, so
// each sample is one chunk's latency, not a queue's.
// Counters over every chunk of every iteration: median_us, p99_us, max_us,
// and over_1ms (how many chunks missed the target).
// Run: build/caudal_bench --benchmark_filter=Stream

#include <fcntl.h>
#include <pty.h>
#include <unistd.h>

#include <httplib.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include <benchmark/benchmark.h>

#include "caudal/engine.hpp"
#include "cli/live_output.hpp"

namespace {

using steady = std::chrono::steady_clock;

constexpr int chunks_per_run = 200;

// When each chunk of the current run was written by the server and read by
// the terminal side. Chunk i is the text "c<i>;": the reader counts ';'.
struct timeline {
  std::mutex mutex;
  std::condition_variable changed;
  std::vector<steady::time_point> written, read;

  void reset() {
    std::lock_guard lock(mutex);
    written.clear();
    read.clear();
  }
  // The server may write chunk `i` once chunk i-1 was read (5 s at most).
  void wait_read(size_t count) {
    std::unique_lock lock(mutex);
    changed.wait_for(lock, std::chrono::seconds(5), [&] { return read.size() >= count; });
  }
};

std::string delta_event(const std::string& content) {
  caudal::value chunk = {{"object", "chat.completion.chunk"},
                         {"choices", {{{"index", 0}, {"delta", {{"content", content}}}}}}};
  return "data: " + chunk.dump() + "\n\n";
}

std::string end_events() {
  caudal::value chunk = {{"object", "chat.completion.chunk"},
                         {"choices", caudal::value::array()},
                         {"usage", {{"prompt_tokens", 5}, {"completion_tokens", chunks_per_run}}}};
  return "data: " + chunk.dump() + "\n\ndata: [DONE]\n\n";
}

class timestamping_server {
 public:
  explicit timestamping_server(timeline& times) {
    server_.set_tcp_nodelay(true);
    server_.Post(".*", [&times](const httplib::Request&, httplib::Response& res) {
      res.set_chunked_content_provider("text/event-stream",
                                       [&times](size_t, httplib::DataSink& sink) {
                                         for (int i = 0; i < chunks_per_run; ++i) {
                                           times.wait_read(static_cast<size_t>(i));
                                           auto event = delta_event("c" + std::to_string(i) + ";");
                                           {
                                             std::lock_guard lock(times.mutex);
                                             times.written.push_back(steady::now());
                                           }
                                           if (!sink.write(event.data(), event.size()))
                                             return false;
                                         }
                                         auto end = end_events();
                                         sink.write(end.data(), end.size());
                                         sink.done();
                                         return true;
                                       });
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::yield();
  }
  ~timestamping_server() {
    server_.stop();
    thread_.join();
  }
  int port() const { return port_; }

 private:
  httplib::Server server_;
  int port_ = -1;
  std::thread thread_;
};

// The terminal side: a pipe or a pty; `write_fd` is what the printer gets.
struct terminal_side {
  int write_fd = -1;
  int read_fd = -1;
  explicit terminal_side(bool is_pty) {
    int fds[2];
    if (is_pty) {
      ::openpty(&fds[0], &fds[1], nullptr, nullptr, nullptr);  // master, slave
      read_fd = fds[0];
      write_fd = fds[1];
    } else {
      if (::pipe(fds) == 0) {
        read_fd = fds[0];
        write_fd = fds[1];
      }
    }
  }
  ~terminal_side() {
    ::close(write_fd);
    ::close(read_fd);
  }
};

// Stamps every ';' that arrives on `fd` until it reads `stop`.
void read_chunks(int fd, timeline& times, const std::atomic<bool>& stop) {
  char buffer[4096];
  while (!stop.load()) {
    auto n = ::read(fd, buffer, sizeof buffer);
    if (n <= 0) return;
    auto now = steady::now();
    auto marks = std::count(buffer, buffer + n, ';');
    if (marks == 0) continue;
    std::lock_guard lock(times.mutex);
    for (long i = 0; i < marks; ++i) times.read.push_back(now);
    times.changed.notify_all();
  }
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  auto at = static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(at, v.size() - 1)];
}

void BM_StreamChunkToPrint(benchmark::State& state) {
  timeline times;
  timestamping_server server{times};
  terminal_side terminal{state.range(0) == 1};
  std::atomic<bool> stop{false};
  std::thread reader([&] { read_chunks(terminal.read_fd, times, stop); });
  int null_fd = ::open("/dev/null", O_WRONLY);

  caudal::engine eng;
  auto loaded = eng.load_text(
      "version: 1\nname: stream-bench\nagents:\n  writer: {type: openai, model: m, base_url: "
      "\"http://127.0.0.1:" +
          std::to_string(server.port()) +
          "/v1\", stream: true}\nsteps:\n  - {name: talk, agent: writer, input: go}\n",
      "stream.yaml");
  if (!loaded.ok()) {
    state.SkipWithError(loaded.errors.front().to_string().c_str());
  }
  std::vector<double> latencies_us;
  for (auto _ : state) {
    if (!loaded.ok()) break;
    times.reset();
    caudal::cli::live_output::options o;
    o.out_fd = terminal.write_fd;
    o.err_fd = null_fd;  // the progress line is drawn, to nowhere
    o.has_progress = true;
    o.total_steps = 1;
    o.columns = 80;
    caudal::cli::live_output live{o};
    caudal::run_request req;
    req.pipeline = loaded.pipeline;
    req.on_event = [&live](const caudal::run_event& e) { live.on_event(e); };
    auto outcome = eng.run(req);
    live.finish(outcome);
    if (outcome.status != caudal::run_status::completed) {
      state.SkipWithError(outcome.error.c_str());
      break;
    }
    times.wait_read(chunks_per_run);
    std::lock_guard lock(times.mutex);
    for (size_t i = 0; i < times.read.size() && i < times.written.size(); ++i)
      latencies_us.push_back(
          std::chrono::duration<double, std::micro>(times.read[i] - times.written[i]).count());
  }
  stop = true;
  char wake = ';';
  auto ignored = ::write(terminal.write_fd, &wake, 1);  // ends the reader's read
  (void)ignored;
  reader.join();
  ::close(null_fd);
  state.counters["chunks"] = static_cast<double>(latencies_us.size());
  state.counters["median_us"] = percentile(latencies_us, 0.5);
  state.counters["p99_us"] = percentile(latencies_us, 0.99);
  state.counters["max_us"] = percentile(latencies_us, 1.0);
  state.counters["over_1ms"] = static_cast<double>(
      std::count_if(latencies_us.begin(), latencies_us.end(), [](double us) { return us > 1000; }));
  state.SetItemsProcessed(static_cast<int64_t>(latencies_us.size()));
}
BENCHMARK(BM_StreamChunkToPrint)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
