// TCP on the reactor: a listening socket and a byte stream, both driven by io_uring.
//
// Contract: everything runs on the owning reactor thread; every callback runs there,
// exactly once per call, never inside the call that started the operation. At most one
// read and one write are in flight per stream (callers queue their own writes). Close()
// cancels nothing by itself: operations in flight complete (with an error or 0) first,
// then the stream may be destroyed once `idle()` is true.
#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "base/inline_function.h"
#include "base/status.h"
#include "io/reactor.h"

namespace ferry::io {

class TcpListener {
 public:
  using AcceptFn = InlineFunction<void(int fd, std::string peer), 32>;
  // Binds ip:port (port 0: any free port) and accepts until Close(); each accepted socket
  // (non-blocking off, TCP_NODELAY on) is handed to `on_accept`.
  static Result<std::unique_ptr<TcpListener>> Listen(Reactor* reactor, const std::string& ip,
                                                     uint16_t port, AcceptFn on_accept);
  ~TcpListener();
  uint16_t port() const { return port_; }
  void Close();
  bool idle() const { return !accepting_; }

 private:
  TcpListener(Reactor* r, int fd, uint16_t port, AcceptFn fn);
  void Arm();
  Reactor* reactor_;
  int fd_;
  uint16_t port_;
  AcceptFn on_accept_;
  UringOp op_;
  bool accepting_ = false;
  bool closed_ = false;
  sockaddr_storage peer_{};
  socklen_t peer_len_ = 0;
};

class TcpStream {
 public:
  // res: bytes transferred (all of them) or a negative errno; 0 for a read means the peer
  // closed the connection before all bytes arrived.
  using IoFn = InlineFunction<void(int32_t res), 32>;

  TcpStream(Reactor* reactor, int fd) : reactor_(reactor), fd_(fd) {}
  ~TcpStream();

  // Reads exactly buf.size() bytes.
  void ReadExact(std::span<uint8_t> buf, IoFn done);
  // Reads what is there, at least 1 byte and at most buf.size() (not empty): res is the
  // byte count, 0 when the peer closed, or -errno. One recv: callers that frame messages
  // read ahead with it and keep the rest.
  void ReadSome(std::span<uint8_t> buf, IoFn done);
  // Writes every byte of `iov` (the array and the memory it points to stay valid until
  // done; the array may be modified by the stream while writing).
  void WriteAll(std::span<iovec> iov, IoFn done);
  void Close();  // shuts the socket down; operations in flight complete with errors
  bool idle() const { return !reading_ && !writing_; }
  int fd() const { return fd_; }

 private:
  void StartRead(std::span<uint8_t> buf, IoFn done, bool some);
  void IssueRead();
  void IssueWrite();
  Reactor* reactor_;
  int fd_;
  bool closed_ = false;
  // Read state.
  bool reading_ = false;
  std::span<uint8_t> rbuf_;
  size_t rdone_ = 0;
  bool rsome_ = false;  // ReadSome: complete after one recv
  IoFn rfn_;
  UringOp rop_;
  // Write state.
  bool writing_ = false;
  std::span<iovec> wiov_;
  size_t wtotal_ = 0;
  size_t wfirst_ = 0;
  IoFn wfn_;
  UringOp wop_;
  msghdr wmsg_{};
};

}  // namespace ferry::io
