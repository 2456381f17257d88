#include "base/log.h"

#include <fcntl.h>
#include <spdlog/details/log_msg.h>
#include <spdlog/formatter.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <ctime>
#include <memory>
#include <mutex>
#include <string>

namespace ferry {
namespace {

// Appends `s` to `out` as the inside of a JSON string (RFC 8259 7).
void AppendJsonEscaped(std::string_view s, spdlog::memory_buf_t& out) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (c == '\n') {
      out.append(std::string_view("\\n"));
    } else if (c == '\t') {
      out.append(std::string_view("\\t"));
    } else if (c == '\r') {
      out.append(std::string_view("\\r"));
    } else if (u < 0x20) {
      char esc[] = {'\\', 'u', '0', '0', kHex[u >> 4], kHex[u & 15]};
      out.append(esc, esc + sizeof esc);
    } else {
      out.push_back(c);
    }
  }
}

// One JSON object a line, for log shippers (journald, Loki, Elasticsearch).
class JsonFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    using std::chrono::duration_cast;
    auto since_epoch = msg.time.time_since_epoch();
    auto secs = duration_cast<std::chrono::seconds>(since_epoch);
    auto millis = duration_cast<std::chrono::milliseconds>(since_epoch - secs).count();
    std::time_t t = secs.count();
    std::tm tm{};
    gmtime_r(&t, &tm);
    char ts[40];
    size_t n = std::strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
    std::snprintf(ts + n, sizeof ts - n, ".%03dZ", static_cast<int>(millis));
    auto level = spdlog::level::to_string_view(msg.level);
    fmt::format_to(std::back_inserter(dest), R"({{"ts":"{}","level":"{}","thread":{})", ts,
                   std::string_view(level.data(), level.size()), msg.thread_id);
    if (!msg.source.empty()) {
      fmt::format_to(std::back_inserter(dest), R"(,"src":")");
      std::string_view file(msg.source.filename);
      file = file.substr(file.rfind('/') + 1);  // as the text pattern's %s: no directories
      AppendJsonEscaped(file, dest);
      fmt::format_to(std::back_inserter(dest), R"(:{}")", msg.source.line);
    }
    dest.append(std::string_view(R"(,"msg":")"));
    AppendJsonEscaped(std::string_view(msg.payload.data(), msg.payload.size()), dest);
    dest.append(std::string_view("\"}\n"));
  }
  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<JsonFormatter>();
  }
};

// Appends to a file it can reopen by name (logrotate's move-then-signal scheme).
class ReopenableFileSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  explicit ReopenableFileSink(std::string path) : path_(std::move(path)) {}
  ~ReopenableFileSink() override {
    if (file_ != nullptr) std::fclose(file_);
  }

  Status Open() {
    std::lock_guard<std::mutex> lock(mutex_);
    return OpenLocked();
  }
  Status Reopen() {
    std::lock_guard<std::mutex> lock(mutex_);
    return OpenLocked();
  }

 private:
  Status OpenLocked() {
    int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (fd < 0) return ErrnoStatus(errno, "open log file " + path_);
    std::FILE* f = ::fdopen(fd, "a");
    if (f == nullptr) {
      int err = errno;
      ::close(fd);
      return ErrnoStatus(err, "fdopen log file " + path_);
    }
    if (file_ != nullptr) std::fclose(file_);
    file_ = f;
    return Status::Ok();
  }
  void sink_it_(const spdlog::details::log_msg& msg) override {
    spdlog::memory_buf_t buf;
    formatter_->format(msg, buf);
    std::fwrite(buf.data(), 1, buf.size(), file_);
    // Line-at-a-time, so a crash or a rotation loses nothing already logged.
    std::fflush(file_);
  }
  void flush_() override { std::fflush(file_); }

  std::string path_;
  std::FILE* file_ = nullptr;
};

std::mutex g_file_sink_mu;
std::shared_ptr<ReopenableFileSink> g_file_sink;  // null when logging to the console

}  // namespace

bool SetLogLevel(std::string_view level) {
  auto l = spdlog::level::from_str(std::string(level));
  if (l == spdlog::level::off && level != "off") return false;
  spdlog::set_level(l);
  return true;
}

bool ParseLogFormat(std::string_view name, LogFormat* out) {
  if (name == "text") {
    *out = LogFormat::kText;
  } else if (name == "json") {
    *out = LogFormat::kJson;
  } else {
    return false;
  }
  return true;
}

Status ConfigureLogging(LogFormat format, const std::string& file) {
  auto logger = spdlog::default_logger();
  std::shared_ptr<ReopenableFileSink> file_sink;
  if (!file.empty()) {
    file_sink = std::make_shared<ReopenableFileSink>(file);
    if (Status s = file_sink->Open(); !s.ok()) return s;
    logger->sinks().clear();
    logger->sinks().push_back(file_sink);
  } else if (std::lock_guard<std::mutex> lock(g_file_sink_mu); g_file_sink != nullptr) {
    logger->sinks().clear();  // back from a file to the console
    logger->sinks().push_back(std::make_shared<spdlog::sinks::stdout_color_sink_mt>());
  }
  if (format == LogFormat::kJson) {
    logger->set_formatter(std::make_unique<JsonFormatter>());
  } else {
    logger->set_formatter(std::make_unique<spdlog::pattern_formatter>());
  }
  std::lock_guard<std::mutex> lock(g_file_sink_mu);
  g_file_sink = std::move(file_sink);
  return Status::Ok();
}

void ReopenLogs() {
  std::shared_ptr<ReopenableFileSink> sink;
  {
    std::lock_guard<std::mutex> lock(g_file_sink_mu);
    sink = g_file_sink;
  }
  if (sink == nullptr) return;
  if (Status s = sink->Reopen(); !s.ok()) {
    FERRY_LOG_ERROR("log reopen failed, still writing to the old file: {}", s.ToString());
  }
}

}  // namespace ferry
