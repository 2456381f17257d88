#include "daemon/admin.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <future>

#include "base/log.h"

namespace ferry::daemon {
namespace {

using json = nlohmann::json;
constexpr size_t kMaxRequest = 1 << 20;

}  // namespace

Result<AdminRequest> DecodeAdminRequest(std::string_view line, int* rpc_code) {
  *rpc_code = -32700;
  json j = json::parse(line.begin(), line.end(), nullptr, false);
  if (j.is_discarded()) return InvalidArgument("request is not JSON");
  *rpc_code = -32600;
  if (!j.is_object()) return InvalidArgument("request is not a JSON object");
  auto v = j.find("jsonrpc");
  if (v == j.end() || !v->is_string() || *v != "2.0") {
    return InvalidArgument("\"jsonrpc\": \"2.0\" is required");
  }
  AdminRequest r;
  if (auto id = j.find("id"); id != j.end()) {
    if (!id->is_number() && !id->is_string() && !id->is_null()) {
      return InvalidArgument("\"id\" must be a number, a string or null");
    }
    r.id = *id;
  }
  auto m = j.find("method");
  if (m == j.end() || !m->is_string()) return InvalidArgument("\"method\" must be a string");
  r.method = m->get<std::string>();
  if (auto p = j.find("params"); p != j.end()) {
    if (!p->is_object()) return InvalidArgument("\"params\" must be an object");
    r.params = *p;
  } else {
    r.params = json::object();
  }
  *rpc_code = 0;
  return r;
}

std::string EncodeAdminResult(const json& id, const json& result) {
  return json{{"jsonrpc", "2.0"}, {"id", id}, {"result", result}}.dump(
      -1, ' ', false, json::error_handler_t::replace);
}

std::string EncodeAdminError(const json& id, int code, std::string_view message) {
  return json{{"jsonrpc", "2.0"},
              {"id", id},
              {"error", {{"code", code}, {"message", std::string(message)}}}}
      .dump(-1, ' ', false, json::error_handler_t::replace);
}

Result<std::unique_ptr<AdminServer>> AdminServer::Start(io::Reactor* reactor, std::string path,
                                                        Handler handler) {
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(sa.sun_path)) {
    return InvalidArgument("admin socket path '" + path + "' is empty or longer than " +
                           std::to_string(sizeof(sa.sun_path) - 1) + " bytes");
  }
  std::memcpy(sa.sun_path, path.c_str(), path.size() + 1);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return ErrnoStatus(errno, "socket");
  // A socket file left by a ferryd that died: replace it. One that answers: refuse.
  struct stat st {};
  if (lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) {
    if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) == 0) {
      close(fd);
      return AlreadyExists("admin socket " + path + " is in use: is another ferryd running?");
    }
    unlink(path.c_str());
    close(fd);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return ErrnoStatus(errno, "socket");
  }
  const mode_t old = umask(077);
  const int rc = bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa));
  umask(old);
  if (rc != 0 || listen(fd, 16) != 0) {
    const int err = errno;
    close(fd);
    return ErrnoStatus(err, "cannot listen on admin socket " + path);
  }
  std::unique_ptr<AdminServer> s(new AdminServer(reactor, std::move(path), fd, std::move(handler)));
  s->thread_ = std::thread([p = s.get()] { p->Loop(); });
  return s;
}

AdminServer::AdminServer(io::Reactor* r, std::string path, int fd, Handler h)
    : reactor_(r), path_(std::move(path)), fd_(fd), handler_(std::move(h)) {}

AdminServer::~AdminServer() {
  Stop();
  if (thread_.joinable()) thread_.join();
  close(fd_);
  unlink(path_.c_str());
}

void AdminServer::Stop() {
  if (stopping_.exchange(true)) return;
  shutdown(fd_, SHUT_RDWR);  // wakes accept()
  const int c = client_.load();
  if (c >= 0) shutdown(c, SHUT_RDWR);
}

void AdminServer::Loop() {
  while (!stopping_) {
    const int c = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      break;  // shut down
    }
    // A client that stops talking must not hold the (single) admin thread for long.
    timeval tv{.tv_sec = 10, .tv_usec = 0};
    setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    client_ = c;
    if (!stopping_) Serve(c);
    client_ = -1;
    close(c);
  }
}

void AdminServer::Serve(int fd) {
  std::string buf;
  char chunk[4096];
  for (;;) {
    size_t nl;
    while ((nl = buf.find('\n')) != std::string::npos) {
      std::string reply = Answer(buf.substr(0, nl)) + "\n";
      buf.erase(0, nl + 1);
      for (size_t off = 0; off < reply.size();) {
        const ssize_t w = send(fd, reply.data() + off, reply.size() - off, MSG_NOSIGNAL);
        if (w <= 0) return;
        off += static_cast<size_t>(w);
      }
    }
    if (buf.size() > kMaxRequest) {
      const std::string e = EncodeAdminError(nullptr, -32600, "request above 1 MiB") + "\n";
      send(fd, e.data(), e.size(), MSG_NOSIGNAL);
      return;
    }
    const ssize_t r = recv(fd, chunk, sizeof(chunk), 0);
    if (r <= 0) return;
    buf.append(chunk, static_cast<size_t>(r));
  }
}

std::string AdminServer::Answer(const std::string& line) {
  int code = 0;
  auto req = DecodeAdminRequest(line, &code);
  if (!req.ok()) return EncodeAdminError(nullptr, code, req.status().message());
  auto done = std::make_shared<std::promise<std::string>>();
  std::future<std::string> answer = done->get_future();
  reactor_->Post([this, done, r = std::make_shared<AdminRequest>(*req)] {
    handler_(*r, [done, id = r->id](Status st, json result) {
      if (st.ok()) return done->set_value(EncodeAdminResult(id, result));
      const int c = st.code() == StatusCode::kUnimplemented ? -32601 : -32000;
      done->set_value(EncodeAdminError(id, c, st.message()));
    });
  });
  // The reactor runs until ferryd stops; while stopping, give up instead of waiting forever.
  while (answer.wait_for(std::chrono::milliseconds(200)) != std::future_status::ready) {
    if (stopping_) return EncodeAdminError(req->id, -32000, "ferryd is stopping");
  }
  return answer.get();
}

}  // namespace ferry::daemon
