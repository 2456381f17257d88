#include "io/tcp.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace ferry::io {
namespace {

std::string PeerString(const sockaddr_storage& ss) {
  char buf[INET6_ADDRSTRLEN] = "?";
  uint16_t port = 0;
  if (ss.ss_family == AF_INET) {
    const auto* a = reinterpret_cast<const sockaddr_in*>(&ss);
    inet_ntop(AF_INET, &a->sin_addr, buf, sizeof(buf));
    port = ntohs(a->sin_port);
  } else if (ss.ss_family == AF_INET6) {
    const auto* a = reinterpret_cast<const sockaddr_in6*>(&ss);
    inet_ntop(AF_INET6, &a->sin6_addr, buf, sizeof(buf));
    port = ntohs(a->sin6_port);
    return "[" + std::string(buf) + "]:" + std::to_string(port);
  }
  return std::string(buf) + ":" + std::to_string(port);
}

}  // namespace

Result<std::unique_ptr<TcpListener>> TcpListener::Listen(Reactor* reactor, const std::string& ip,
                                                         uint16_t port, AcceptFn on_accept) {
  sockaddr_storage ss{};
  socklen_t len = 0;
  auto* a4 = reinterpret_cast<sockaddr_in*>(&ss);
  auto* a6 = reinterpret_cast<sockaddr_in6*>(&ss);
  if (inet_pton(AF_INET, ip.c_str(), &a4->sin_addr) == 1) {
    a4->sin_family = AF_INET;
    a4->sin_port = htons(port);
    len = sizeof(sockaddr_in);
  } else if (inet_pton(AF_INET6, ip.c_str(), &a6->sin6_addr) == 1) {
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons(port);
    len = sizeof(sockaddr_in6);
  } else {
    return InvalidArgument("'" + ip + "' is not an IPv4 or IPv6 address");
  }
  int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return ErrnoStatus(errno, "socket");
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0 || listen(fd, 128) != 0) {
    int err = errno;
    close(fd);
    return ErrnoStatus(err, "cannot listen on " + ip + ":" + std::to_string(port));
  }
  socklen_t got = sizeof(ss);
  getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &got);
  uint16_t bound = ss.ss_family == AF_INET ? ntohs(a4->sin_port) : ntohs(a6->sin6_port);
  std::unique_ptr<TcpListener> l(new TcpListener(reactor, fd, bound, std::move(on_accept)));
  l->Arm();
  return l;
}

TcpListener::TcpListener(Reactor* r, int fd, uint16_t port, AcceptFn fn)
    : reactor_(r), fd_(fd), port_(port), on_accept_(std::move(fn)) {}

TcpListener::~TcpListener() {
  if (fd_ >= 0) close(fd_);
}

void TcpListener::Arm() {
  accepting_ = true;
  peer_len_ = sizeof(peer_);
  io_uring_sqe* sqe = reactor_->GetSqe(&op_);
  io_uring_prep_accept(sqe, fd_, reinterpret_cast<sockaddr*>(&peer_), &peer_len_, SOCK_CLOEXEC);
  op_.done = [this](int32_t res) {
    accepting_ = false;
    if (closed_) {
      if (res >= 0) close(res);
      return;
    }
    if (res >= 0) {
      int one = 1;
      setsockopt(res, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
      on_accept_(res, PeerString(peer_));
    }
    if (!closed_) Arm();
  };
}

void TcpListener::Close() {
  if (closed_) return;
  closed_ = true;
  if (accepting_) reactor_->CancelOp(&op_);  // shutdown() does not wake a listening socket
}

TcpStream::~TcpStream() {
  if (fd_ >= 0) close(fd_);
}

void TcpStream::Close() {
  if (closed_) return;
  closed_ = true;
  shutdown(fd_, SHUT_RDWR);
}

void TcpStream::ReadSome(std::span<uint8_t> buf, IoFn done) {
  StartRead(buf, std::move(done), /*some=*/true);
}

void TcpStream::ReadExact(std::span<uint8_t> buf, IoFn done) {
  StartRead(buf, std::move(done), /*some=*/false);
}

void TcpStream::StartRead(std::span<uint8_t> buf, IoFn done, bool some) {
  reading_ = true;
  rbuf_ = buf;
  rdone_ = 0;
  rsome_ = some;
  rfn_ = std::move(done);
  if (buf.empty()) {
    reactor_->Post([this] {
      reading_ = false;
      IoFn fn = std::move(rfn_);
      fn(0);
    });
    return;
  }
  IssueRead();
}

void TcpStream::IssueRead() {
  io_uring_sqe* sqe = reactor_->GetSqe(&rop_);
  io_uring_prep_recv(sqe, fd_, rbuf_.data() + rdone_, rbuf_.size() - rdone_, 0);
  rop_.done = [this](int32_t res) {
    if (res == -EINTR || res == -EAGAIN) return IssueRead();
    if (res > 0) {
      rdone_ += static_cast<size_t>(res);
      if (!rsome_ && rdone_ < rbuf_.size()) return IssueRead();
      res = static_cast<int32_t>(rdone_);
    }
    reading_ = false;
    IoFn fn = std::move(rfn_);
    fn(res);
  };
}

void TcpStream::WriteAll(std::span<iovec> iov, IoFn done) {
  writing_ = true;
  wiov_ = iov;
  wfirst_ = 0;
  wtotal_ = 0;
  wfn_ = std::move(done);
  IssueWrite();
}

void TcpStream::IssueWrite() {
  while (wfirst_ < wiov_.size() && wiov_[wfirst_].iov_len == 0) ++wfirst_;
  if (wfirst_ == wiov_.size()) {
    reactor_->Post([this] {
      writing_ = false;
      IoFn fn = std::move(wfn_);
      fn(static_cast<int32_t>(wtotal_));
    });
    return;
  }
  wmsg_ = {};
  wmsg_.msg_iov = wiov_.data() + wfirst_;
  wmsg_.msg_iovlen = wiov_.size() - wfirst_;
  io_uring_sqe* sqe = reactor_->GetSqe(&wop_);
  io_uring_prep_sendmsg(sqe, fd_, &wmsg_, MSG_NOSIGNAL);
  wop_.done = [this](int32_t res) {
    if (res == -EINTR || res == -EAGAIN) return IssueWrite();
    if (res <= 0) {
      writing_ = false;
      IoFn fn = std::move(wfn_);
      return fn(res == 0 ? -EPIPE : res);
    }
    wtotal_ += static_cast<size_t>(res);
    size_t n = static_cast<size_t>(res);
    while (n > 0) {  // advance past what was sent
      iovec& v = wiov_[wfirst_];
      size_t take = std::min(n, v.iov_len);
      v.iov_base = static_cast<char*>(v.iov_base) + take;
      v.iov_len -= take;
      n -= take;
      if (v.iov_len == 0) ++wfirst_;
    }
    IssueWrite();
  };
}

}  // namespace ferry::io
