// ODX (POPULATE TOKEN, WRITE USING TOKEN) between LUNs on two thin volumes of one pool, run
// by tests/volumes/run.sh against ferryd: LUN 1 (the source, written by the script) and
// LUN 4 (an empty thin of the same pool). The script checks that the pool's used data
// blocks did not change; this test checks the commands and the bytes.
#include <gtest/gtest.h>

#include "../tpc/tpc_client.h"

namespace ferry::tpc_test {
namespace {

constexpr char kInitiator[] = "iqn.2026-11.org.ferry:thin-odx-client";

TEST(ThinOdx, TokenCopyBetweenThinLunsOfOnePool) {
  std::string error;
  auto s = Session::Connect(Env("FERRY_PORTAL"), Env("FERRY_TARGET"), kInitiator, {1, 4}, &error);
  ASSERT_NE(s, nullptr) << error;
  const uint32_t bs = s->Info(1).block_size;
  ASSERT_EQ(bs, s->Info(4).block_size);
  // 8 MiB from the start of LUN 1 to 8 MiB into LUN 4: whole 64 KiB data blocks.
  const uint32_t blocks = (8u << 20) / bs;
  const Range src[] = {{0, blocks}};
  const Range dst[] = {{(8u << 20) / bs, blocks}};
  const std::optional<Token> token = s->MakeToken(1, 0x7001, src);
  ASSERT_TRUE(token.has_value());
  ASSERT_TRUE(IsGood(s->WriteUsing(4, 0x7002, *token, dst)));
  EXPECT_EQ(s->Read(4, dst[0].lba, blocks), s->Read(1, 0, blocks));
  // The rest of LUN 4 is still unwritten (reads zeroes).
  EXPECT_EQ(s->Read(4, 0, 16), Bytes(16 * bs, 0));
}

}  // namespace
}  // namespace ferry::tpc_test
