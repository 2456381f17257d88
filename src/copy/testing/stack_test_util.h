// Test helpers for copies through volume stacks: named RAM leaves in a registry, volumes
// built from table text, and suspend / reload / resume driven on the test's reactor.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>

#include "block/registry.h"
#include "copy/testing/copy_test_util.h"
#include "volume/table.h"
#include "volume/volume.h"

namespace ferry::copy::testing {

class StackTest : public CopyTest {
 public:
  std::shared_ptr<backends::RamDevice> Leaf(const std::string& name, uint64_t bytes,
                                            std::shared_ptr<backends::RamArena> arena = nullptr,
                                            uint32_t bs = 512) {
    auto d = backends::RamDevice::Create(
        {.name = name, .size_bytes = bytes, .block_size = bs, .arena = std::move(arena)});
    EXPECT_TRUE(d.ok());
    EXPECT_TRUE(registry_.Add(*d).ok());
    return *d;
  }
  std::shared_ptr<volume::Table> Parse(const std::string& text) {
    auto t = volume::Table::Parse(text, {.lookup = volume::LookupIn(registry_), .clock = {}});
    EXPECT_TRUE(t.ok()) << t.status().ToString() << "\n" << text;
    return t.ok() ? *t : nullptr;
  }
  // A volume over `text`, registered under `name` so that tables above can name it.
  std::shared_ptr<volume::Volume> Vol(const std::string& name, const std::string& text) {
    auto v = volume::Volume::Create(name, Parse(text));
    EXPECT_TRUE(v.ok()) << v.status().ToString();
    if (!v.ok()) return nullptr;
    EXPECT_TRUE(registry_.Add(*v).ok());
    return *v;
  }
  // Starts a suspend; `*done` turns true when it drained.
  void StartSuspend(volume::Volume& v, std::chrono::nanoseconds deadline, bool* done) {
    *done = false;
    v.Suspend(deadline, [done](Status s) {
      EXPECT_TRUE(s.ok()) << s.ToString();
      *done = true;
    });
  }
  void Suspend(volume::Volume& v) {
    bool done = false;
    StartSuspend(v, std::chrono::seconds(60), &done);
    reactor_->RunUntil([&] { return done; });
  }
  // Suspends, loads `text`, resumes.
  void Reload(volume::Volume& v, const std::string& text) {
    Suspend(v);
    ASSERT_TRUE(v.Load(Parse(text)).ok());
    ASSERT_TRUE(v.Resume().ok());
  }

  block::DeviceRegistry registry_;
};

// Whole-device extent list.
inline std::vector<Extent> All(const block::BlockDevice& d) {
  return {{Lba(0), d.geometry().num_blocks}};
}

}  // namespace ferry::copy::testing
