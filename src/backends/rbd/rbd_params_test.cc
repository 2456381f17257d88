// The rbd backstore's parameters and URIs (rbd_params.h), through the registry as ferryd and
// ferryctl use them. Needs no cluster.
#include "backends/rbd/rbd_params.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "backends/builtin.h"
#include "backends/rbd/rbd_backend.h"

namespace ferry::backends::rbd {
namespace {

using ::testing::HasSubstr;

std::string Message(const Status& s) { return std::string(s.message()); }

TEST(RbdParamsTest, UriWithQuery) {
  auto spec = ParseDeviceUri("rbd:pool1/vol1?ceph_conf=/etc/ceph/c.conf&client=gw");
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  EXPECT_EQ(spec->type, "rbd");
  auto o = ParseRbdParams(spec->params);
  ASSERT_TRUE(o.ok()) << o.status().ToString();
  EXPECT_EQ(o->pool, "pool1");
  EXPECT_EQ(o->image, "vol1");
  EXPECT_EQ(o->snap, "");
  EXPECT_EQ(o->ceph_conf, "/etc/ceph/c.conf");
  EXPECT_EQ(o->client, "gw");
  EXPECT_FALSE(o->read_only);
  EXPECT_EQ(o->block_size, 512u);
  EXPECT_EQ(o->timeout_s, 10);
  EXPECT_EQ(o->Spec(), "pool1/vol1");
}

TEST(RbdParamsTest, SnapshotIsReadOnly) {
  auto spec = ParseDeviceUri("rbd:p/img@before?block_size=4096");
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  auto o = ParseRbdParams(spec->params);
  ASSERT_TRUE(o.ok()) << o.status().ToString();
  EXPECT_EQ(o->snap, "before");
  EXPECT_TRUE(o->read_only);
  EXPECT_EQ(o->block_size, 4096u);
  EXPECT_EQ(o->Spec(), "p/img@before");
  o = ParseRbdParams({{"pool", "p"}, {"image", "i"}, {"snap", "s"}, {"read_only", "no"}});
  EXPECT_THAT(Message(o.status()), HasSubstr("read_only: a snapshot (snap=s) is always"));
}

TEST(RbdParamsTest, ClientIdWithOrWithoutPrefix) {
  auto o = ParseRbdParams({{"pool", "p"}, {"image", "i"}, {"client", "client.gateway"}});
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->client, "gateway");
  o = ParseRbdParams({{"pool", "p"}, {"image", "i"}});
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->client, "admin");
  o = ParseRbdParams({{"pool", "p"}, {"image", "i"}, {"client", "client."}});
  EXPECT_THAT(Message(o.status()), HasSubstr("client: give a client id"));
}

TEST(RbdParamsTest, BadUris) {
  for (const char* uri :
       {"rbd:", "rbd:pool", "rbd:/img", "rbd:pool/", "rbd:p/i@", "rbd:p/a/b", "rbd://host/p/i"}) {
    auto spec = ParseDeviceUri(uri);
    EXPECT_FALSE(spec.ok()) << uri;
    EXPECT_THAT(Message(spec.status()), HasSubstr("rbd:POOL/IMAGE[@SNAP]")) << uri;
  }
  EXPECT_THAT(Message(ParseDeviceUri("rbd:p/i?keyring").status()), HasSubstr("not KEY=VALUE"));
}

TEST(RbdParamsTest, ErrorsNameTheKey) {
  EXPECT_THAT(Message(CheckBackend("rbd", {{"image", "i"}})), HasSubstr("pool"));
  EXPECT_THAT(Message(CheckBackend("rbd", {{"pool", "p"}})), HasSubstr("image"));
  EXPECT_THAT(Message(CheckBackend("rbd", {{"pool", "p"}, {"image", "i"}, {"secret", "x"}})),
              HasSubstr("secret"));
  EXPECT_THAT(Message(CheckBackend("rbd", {{"pool", "p"}, {"image", "i"}, {"timeout", "0"}})),
              HasSubstr("timeout: must be at least 1"));
  EXPECT_THAT(Message(CheckBackend("rbd", {{"pool", "p"}, {"image", "i"}, {"block_size", "3"}})),
              HasSubstr("block_size"));
  EXPECT_THAT(Message(CheckBackend("rbd", {{"pool", "p/q"}, {"image", "i"}})),
              HasSubstr("pool: 'p/q' must not contain"));
  EXPECT_TRUE(
      CheckBackend(
          "rbd",
          {{"pool", "p"}, {"image", "i"}, {"keyring", "k"}, {"ceph_conf", "c"}, {"timeout", "3"}})
          .ok());
}

TEST(RbdParamsTest, TypedJsonValues) {
  using K = ParamValue::Kind;
  BackendParams p{{"pool", {K::kString, "p"}},
                  {"image", {K::kString, "i"}},
                  {"read_only", {K::kString, "yes"}}};
  EXPECT_THAT(Message(CheckBackend("rbd", p)), HasSubstr("read_only"));
  p["read_only"] = {K::kBool, "true"};
  EXPECT_TRUE(CheckBackend("rbd", p).ok());
}

TEST(RbdParamsTest, RelativePathsResolveAgainstTheBaseDir) {
  RbdOptions o;
  o.ceph_conf = "ceph.conf";
  o.keyring = "/abs/keyring";
  ResolvePaths("/var/lib/ferry", &o);
  EXPECT_EQ(o.ceph_conf, "/var/lib/ferry/ceph.conf");
  EXPECT_EQ(o.keyring, "/abs/keyring");
}

// Without a cluster: an unreachable monitor is kUnavailable (ferryd then serves its other
// LUNs) and names the image; a build without librbd says so with the same code.
TEST(RbdParamsTest, UnreachableClusterIsUnavailable) {
  const std::string conf = ::testing::TempDir() + "/unreachable.conf";
  FILE* f = std::fopen(conf.c_str(), "w");
  ASSERT_NE(f, nullptr);
  // A port nothing listens on; librados gives up after the timeout.
  std::fputs("[global]\nmon host = v1:127.0.0.1:9\nauth client required = none\n", f);
  std::fclose(f);
  auto dev = CreateBackend(
      "rbd", "x", {{"pool", "p"}, {"image", "i"}, {"ceph_conf", conf}, {"timeout", "1"}}, {});
  ASSERT_FALSE(dev.ok());
  EXPECT_EQ(dev.status().code(), StatusCode::kUnavailable) << dev.status().ToString();
  EXPECT_THAT(Message(dev.status()), HasSubstr("rbd:p/i"));
  if (!HaveLibrbd()) {
    EXPECT_THAT(Message(dev.status()), HasSubstr("without librbd"));
  }
}

}  // namespace
}  // namespace ferry::backends::rbd
