// An in-process Ferry iSCSI target for the iSCSI backend's tests: a Server on 127.0.0.1 on a
// reactor thread of its own, serving RAM logical units that tests add as they go.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "backends/ram/ram_device.h"
#include "io/reactor.h"
#include "iscsi/chap.h"
#include "iscsi/target.h"
#include "scsi/copy_manager.h"
#include "scsi/logical_unit.h"

namespace ferry::backends::iscsi::testing {

inline constexpr const char* kTestIqn = "iqn.2026-11.org.ferry:backend-test";

class TestTarget {
 public:
  // `chap`: credentials every initiator must present (nullptr: none). `third_party_copy`:
  // the LUs get a copy manager (EXTENDED COPY, ODX), as ferryd's do, whose copies move at
  // most `copy_bytes_per_sec` (0: no cap).
  explicit TestTarget(std::shared_ptr<const ferry::iscsi::ChapCredentials> chap = nullptr,
                      bool third_party_copy = false, uint64_t copy_bytes_per_sec = 0)
      : chap_(std::move(chap)) {
    if (third_party_copy) {
      thread_.RunSync([this, copy_bytes_per_sec] {
        scsi::CopyManagerOptions o;
        o.engine.throttle_bytes_per_sec = copy_bytes_per_sec;
        for (size_t i = 0; i < o.token_key.size(); ++i) o.token_key[i] = static_cast<uint8_t>(i);
        auto cm = scsi::CopyManager::Create(thread_.reactor(), o);
        EXPECT_TRUE(cm.ok()) << cm.status().ToString();
        if (cm.ok()) copy_manager_ = *cm;
      });
    }
    ferry::iscsi::TargetConfig tc;
    tc.name = kTestIqn;
    tc.chap = chap_;
    target_ = std::make_shared<ferry::iscsi::Target>(std::move(tc));
    Start(0);
  }

  uint16_t port() const { return port_; }
  // Runs `fn` on the target's reactor thread and waits: how a test changes what the target
  // serves (a device's capacity) as the thread that serves it would.
  void RunOnTarget(InlineFunction<void(), 64> fn) { thread_.RunSync(std::move(fn)); }
  std::string Url(uint64_t lun) const {
    return "iscsi://127.0.0.1:" + std::to_string(port_) + "/" + kTestIqn + "/" +
           std::to_string(lun);
  }

  // Maps a fresh RAM LU of `size_bytes` at the next LUN; returns its number.
  uint64_t AddRamLun(uint64_t size_bytes, uint32_t block_size) {
    auto dev = RamDevice::Create({.name = "lu" + std::to_string(next_lun_),
                                  .size_bytes = size_bytes,
                                  .block_size = block_size});
    EXPECT_TRUE(dev.ok()) << dev.status().ToString();
    return AddLun(*dev);
  }

  // Maps an LU over `dev` at the next LUN; returns its number.
  uint64_t AddLun(std::shared_ptr<block::BlockDevice> dev) {
    uint64_t lun = next_lun_++;
    scsi::LuIdentity id;
    id.serial = "ferry-test-" + std::to_string(lun);
    id.naa[0] = 0x60;
    id.naa[14] = static_cast<uint8_t>(lun >> 8);
    id.naa[15] = static_cast<uint8_t>(lun);
    auto lu = std::make_shared<scsi::LogicalUnit>(std::move(dev), id, false);
    if (copy_manager_ != nullptr) lu->set_copy_manager(copy_manager_);
    Status st = target_->MapLun(lun, {lu, false});
    EXPECT_TRUE(st.ok()) << st.ToString();
    return lun;
  }

  // Ends every connection and stops listening (Server::Stop), waiting until idle.
  void Stop() {
    if (server_ == nullptr) return;
    thread_.RunSync([this] { server_->Stop(); });
    for (bool idle = false; !idle;) {
      thread_.RunSync([this, &idle] { idle = server_->idle(); });
    }
    thread_.RunSync([this] { server_.reset(); });
  }
  ~TestTarget() {
    Stop();
    thread_.RunSync([this] { copy_manager_.reset(); });
  }
  // Listens again on the same port.
  void Restart() { Start(port_); }

 private:
  void Start(uint16_t port) {
    thread_.RunSync([this, port] {
      server_ = std::make_unique<ferry::iscsi::Server>(thread_.reactor());
      ferry::iscsi::ServerOptions o;
      o.logout_grace = std::chrono::milliseconds(0);
      server_->set_options(o);
      auto p = server_->Listen("127.0.0.1", port);
      EXPECT_TRUE(p.ok()) << p.status().ToString();
      port_ = p.ok() ? *p : 0;
      server_->AddTarget(target_);
    });
  }

  std::shared_ptr<const ferry::iscsi::ChapCredentials> chap_;
  std::shared_ptr<ferry::iscsi::Target> target_;
  uint64_t next_lun_ = 0;
  uint16_t port_ = 0;
  io::ReactorThread thread_;
  std::unique_ptr<ferry::iscsi::Server> server_;
  std::shared_ptr<scsi::CopyManager> copy_manager_;  // used on thread_ only
};

}  // namespace ferry::backends::iscsi::testing
