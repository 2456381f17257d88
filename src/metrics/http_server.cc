#include "metrics/http_server.h"

#include <httplib.h>
#include <sys/socket.h>

#include <utility>

#include "base/log.h"
#include "metrics/exposition.h"

namespace ferry::metrics {

HttpServer::HttpServer(std::string ip, Render render)
    : ip_(std::move(ip)), render_(std::move(render)), http_(std::make_unique<httplib::Server>()) {}

Result<std::unique_ptr<HttpServer>> HttpServer::Start(const std::string& ip, uint16_t port,
                                                      Render render) {
  std::unique_ptr<HttpServer> s(new HttpServer(ip, std::move(render)));
  httplib::Server& h = *s->http_;
  // Two workers: a scraper holding a keep-alive connection leaves one for /healthz probes.
  h.new_task_queue = [] { return new httplib::ThreadPool(2); };
  h.set_keep_alive_timeout(2);
  h.set_read_timeout(5, 0);
  h.set_write_timeout(5, 0);
  // httplib's default adds SO_REUSEPORT, which would let a second ferryd share the port.
  h.set_socket_options([](int sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  HttpServer* self = s.get();
  h.Get("/metrics", [self](const httplib::Request&, httplib::Response& res) {
    std::optional<std::string> body = self->render_();
    if (!body) {
      res.status = 503;
      res.set_content("metrics unavailable: the daemon did not answer\n", "text/plain");
      return;
    }
    res.set_content(*body, kTextContentType);
  });
  h.Get("/healthz", [self](const httplib::Request&, httplib::Response& res) {
    if (self->stopping_.load()) {
      res.status = 503;
      res.set_content("stopping\n", "text/plain");
    } else {
      res.set_content("ok\n", "text/plain");
    }
  });
  int bound = port == 0 ? h.bind_to_any_port(ip) : (h.bind_to_port(ip, port) ? port : -1);
  if (bound <= 0) {
    return Unavailable("metrics: cannot listen on " + ip + ":" + std::to_string(port) +
                       " (address in use or not local?)");
  }
  s->port_ = static_cast<uint16_t>(bound);
  s->thread_ = std::thread([self] {
    self->http_->listen_after_bind();
    self->listen_returned_.store(true);
  });
  FERRY_LOG_INFO("metrics: serving /metrics and /healthz on http://{}", s->address());
  return s;
}

HttpServer::~HttpServer() {
  // httplib's stop() does nothing before the listen loop has started: wait for it (thread
  // start-up, microseconds), or stop() would leave the loop running and the join hanging.
  while (thread_.joinable() && !http_->is_running() && !listen_returned_.load()) {
    std::this_thread::yield();
  }
  http_->stop();
  if (thread_.joinable()) thread_.join();
}

std::string HttpServer::address() const {
  const bool v6 = ip_.find(':') != std::string::npos;
  return (v6 ? "[" + ip_ + "]" : ip_) + ":" + std::to_string(port_);
}

}  // namespace ferry::metrics
