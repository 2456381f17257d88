#include "copy/engine_mover.h"

#include <gtest/gtest.h>

#include "copy/testing/copy_test_util.h"

namespace ferry::copy {
namespace {

using testing::Bytes;

class EngineMoverTest : public testing::CopyTest {
 protected:
  volume::MoveResult Move(volume::DataMover& m, const volume::MoveRequest& req) {
    bool in_move = true;
    int calls = 0;
    volume::MoveResult result;
    m.Move(req, [&](volume::MoveResult r) {
      EXPECT_FALSE(in_move) << "completion inside Move";
      ++calls;
      result = std::move(r);
    });
    in_move = false;
    reactor_->RunUntil([&] { return calls > 0; });
    EXPECT_EQ(calls, 1);
    return result;
  }
};

TEST_F(EngineMoverTest, MovesARangeAndCountsHowTheBytesMoved) {
  auto engine = Engine();
  auto mover = MakeEngineMover(engine.get(), reactor_.get());
  EXPECT_EQ(mover->reactor(), reactor_.get());
  auto arena = std::make_shared<backends::RamArena>();
  auto src = Ram(1 << 20, 512, arena);
  auto same_arena = Ram(1 << 20, 4096, arena);
  auto other = Ram(1 << 20, 4096);
  Bytes s = Fill(*src);

  volume::MoveResult r = Move(*mover, {src.get(), 8192, same_arena.get(), 4096, 65536});
  EXPECT_EQ(r.status, IoStatus::kOk) << r.error;
  EXPECT_EQ(r.offloaded_bytes, 65536u);
  r = Move(*mover, {src.get(), 8192, other.get(), 4096, 65536});
  EXPECT_EQ(r.status, IoStatus::kOk) << r.error;
  EXPECT_EQ(r.emulated_bytes, 65536u);
  for (auto* d : {same_arena.get(), other.get()}) {
    Bytes got = Contents(*d);
    EXPECT_TRUE(std::equal(s.begin() + 8192, s.begin() + 8192 + 65536, got.begin() + 4096));
  }
}

TEST_F(EngineMoverTest, MisalignedOrOutOfRangeMovesFailWithAReason) {
  auto engine = Engine();
  auto mover = MakeEngineMover(engine.get(), reactor_.get());
  auto src = Ram(1 << 20, 512);
  auto dst = Ram(1 << 20, 4096);
  volume::MoveResult r = Move(*mover, {src.get(), 512, dst.get(), 0, 4096});
  EXPECT_EQ(r.status, IoStatus::kOk) << r.error;
  r = Move(*mover, {src.get(), 0, dst.get(), 512, 4096});
  EXPECT_EQ(r.status, IoStatus::kInvalid);
  EXPECT_NE(r.error.find("not aligned"), std::string::npos) << r.error;
  r = Move(*mover, {src.get(), 0, dst.get(), 1 << 20, 4096});
  EXPECT_EQ(r.status, IoStatus::kInvalid);
  EXPECT_FALSE(r.error.empty());
}

}  // namespace
}  // namespace ferry::copy
