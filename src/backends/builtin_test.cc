#include "backends/builtin.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>

#include "backends/ram/ram_device.h"

namespace ferry::backends {
namespace {

using testing::HasSubstr;
using Kind = ParamValue::Kind;

std::string Message(const Status& s) { return std::string(s.message()); }

TEST(BuiltinTest, ListsRamAndFile) {
  std::vector<std::string> names;
  for (const BackendType* b : BuiltinBackends()) names.emplace_back(b->name);
  EXPECT_EQ(names, (std::vector<std::string>{"ram", "file", "iscsi", "rbd"}));
}

TEST(BuiltinTest, CreatesRamWithSizeSuffix) {
  auto d = CreateBackend("ram", "r0", {{"size", "1M"}, {"block_size", "4096"}});
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ((*d)->name(), "r0");
  EXPECT_EQ((*d)->geometry().block_size, 4096u);
  EXPECT_EQ((*d)->geometry().size_bytes(), 1u << 20);
}

TEST(BuiltinTest, ErrorsNameTheProblem) {
  auto unknown = CreateBackend("tape", "t", {});
  EXPECT_THAT(Message(unknown.status()),
              HasSubstr("unknown backend type 'tape' (known: ram, file"));
  auto missing = CreateBackend("ram", "r", {});
  EXPECT_EQ(Message(missing.status()), "size: a ram backstore needs a size");
  auto extra = CreateBackend("ram", "r", {{"size", "1M"}, {"colour", "red"}});
  EXPECT_THAT(Message(extra.status()), HasSubstr("colour: unknown parameter of a ram backstore"));
  auto bad = CreateBackend("file", "f", {{"path", "/nonexistent/x"}, {"direct", "maybe"}});
  EXPECT_EQ(Message(bad.status()), "direct: 'maybe' is not a boolean (true/false)");
  auto bs = CreateBackend("ram", "r", {{"size", "1M"}, {"block_size", "1000"}});
  EXPECT_EQ(Message(bs.status()), "block_size: must be a power of two, 512..65536");
  auto odd = CreateBackend("ram", "r", {{"size", "1000"}});
  EXPECT_EQ(Message(odd.status()), "size: must be a multiple of block_size 512");
  auto create = CheckBackend("file", {{"path", "/x"}, {"create", "true"}});
  EXPECT_EQ(Message(create), "size: \"create\": true needs a size");
}

TEST(BuiltinTest, TypedValuesFromJsonMustHaveTheirType) {
  // From a command line "yes" is a boolean; from JSON only true / false are.
  EXPECT_TRUE(CheckBackend("ram", {{"size", "1M"}, {"read_only", "yes"}}).ok());
  Status s = CheckBackend("ram", {{"size", "1M"}, {"read_only", {Kind::kString, "yes"}}});
  EXPECT_EQ(Message(s), "read_only: expected true or false, got a string");
  EXPECT_TRUE(CheckBackend("ram", {{"size", {Kind::kNumber, "1048576"}},
                                   {"read_only", {Kind::kBool, "true"}}})
                  .ok());
  s = CheckBackend("ram", {{"size", "1M"}, {"block_size", {Kind::kString, "4096"}}});
  EXPECT_EQ(Message(s), "block_size: expected a whole number 0..65536, got \"4096\"");
  s = CheckBackend("file", {{"path", {Kind::kNumber, "7"}}});
  EXPECT_EQ(Message(s), "path: expected a string, got 7");
}

TEST(BuiltinTest, CreatesFile) {
  char tmpl[] = "/tmp/ferry-builtin-XXXXXX";
  int fd = mkstemp(tmpl);
  ASSERT_GE(fd, 0);
  close(fd);
  auto d = CreateBackend("file", "f0", {{"path", tmpl}, {"size", "64k"}});
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ((*d)->type(), "file");
  EXPECT_EQ((*d)->geometry().size_bytes(), 64u * 1024);
  unlink(tmpl);
}

TEST(BuiltinTest, RelativeFilePathsResolveAgainstTheBaseDir) {
  char dir[] = "/tmp/ferry-builtin-dir-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  BackendContext ctx{.base_dir = dir};
  {
    auto d = CreateBackend("file", "f", {{"path", "a.img"}, {"size", "64k"}, {"create", "1"}}, ctx);
    ASSERT_TRUE(d.ok()) << d.status().ToString();
    EXPECT_EQ(access((std::string(dir) + "/a.img").c_str(), F_OK), 0);
  }
  unlink((std::string(dir) + "/a.img").c_str());
  rmdir(dir);
}

TEST(BuiltinTest, RamDevicesShareTheContextsArena) {
  BackendContext ctx{.ram_arena = std::make_shared<RamArena>()};
  auto a = CreateBackend("ram", "a", {{"size", "1M"}}, ctx);
  auto b = CreateBackend("ram", "b", {{"size", "1M"}}, ctx);
  auto c = CreateBackend("ram", "c", {{"size", "1M"}});
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_TRUE((*b)->copy_offload()->CanCopyFrom(**a, nullptr));
  EXPECT_FALSE((*c)->copy_offload()->CanCopyFrom(**a, nullptr));
}

TEST(DeviceUriTest, PathsAndSchemes) {
  auto p = ParseDeviceUri("/srv/a.img");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->type, "file");
  EXPECT_EQ(p->params.at("path").text, "/srv/a.img");
  p = ParseDeviceUri("file:rel/b.img");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->params.at("path").text, "rel/b.img");
  p = ParseDeviceUri("file:///srv/c.img");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->params.at("path").text, "/srv/c.img");
  p = ParseDeviceUri("./odd:name.img");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->params.at("path").text, "./odd:name.img");
  p = ParseDeviceUri("ram:64M");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->type, "ram");
  EXPECT_EQ(p->params.at("size").text, "64M");
}

TEST(DeviceUriTest, QueryAddsParameters) {
  auto p = ParseDeviceUri("ram:1M?block_size=4096&read_only=yes");
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->params.at("size").text, "1M");
  EXPECT_EQ(p->params.at("block_size").text, "4096");
  EXPECT_EQ(p->params.at("read_only").text, "yes");
  EXPECT_THAT(Message(ParseDeviceUri("ram:1M?block_size").status()), HasSubstr("not KEY=VALUE"));
  EXPECT_THAT(Message(ParseDeviceUri("ram:1M?size=2M").status()), HasSubstr("given twice"));
  p = ParseDeviceUri("dir/what?.img");  // files keep their '?'
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->params.at("path").text, "dir/what?.img");
}

TEST(DeviceUriTest, IscsiUrisCarryChapAndOptions) {
  auto p = ParseDeviceUri(
      "iscsi://alice%/etc/ferry/a.secret@127.0.0.1:3261/iqn.2026-12.org.x:t/3?offload=odx");
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->type, "iscsi");
  EXPECT_EQ(p->params.at("url").text, "iscsi://127.0.0.1:3261/iqn.2026-12.org.x:t/3");
  EXPECT_EQ(p->params.at("chap_user").text, "alice");
  EXPECT_EQ(p->params.at("chap_secret_file").text, "/etc/ferry/a.secret");
  EXPECT_EQ(p->params.at("offload").text, "odx");
  EXPECT_TRUE(CheckBackend("iscsi", p->params).ok());
  EXPECT_EQ(Message(CheckBackend(
                "iscsi", {{"url", "iscsi://h/iqn.2026-12.org.x:t/0"}, {"offload", "fast"}})),
            "offload: 'fast' is not one of auto, xcopy, odx, none");
  EXPECT_THAT(Message(CheckBackend(
                  "iscsi", {{"url", "iscsi://h/iqn.2026-12.org.x:t/0"}, {"chap_user", "alice"}})),
              HasSubstr("CHAP needs both chap_user and chap_secret_file"));
  EXPECT_THAT(Message(ParseDeviceUri("iscsi://127.0.0.1/no-lun").status()),
              HasSubstr("iscsi://127.0.0.1/no-lun"));
  EXPECT_THAT(Message(ParseDeviceUri("iscsi://@h/iqn.2026-12.org.x:t/0").status()),
              HasSubstr("empty CHAP user"));
}

TEST(DeviceUriTest, AnUnreachableArrayIsUnavailableAndNamed) {
  auto dev = OpenDeviceUri("iscsi://127.0.0.1:1/iqn.2026-12.org.x:t/0?timeout=5");
  ASSERT_FALSE(dev.ok());
  EXPECT_EQ(dev.status().code(), StatusCode::kUnavailable);
  EXPECT_THAT(Message(dev.status()), HasSubstr("iscsi://127.0.0.1:1/iqn.2026-12.org.x:t/0"));
}

TEST(DeviceUriTest, BadUrisSayWhatIsWrong) {
  EXPECT_THAT(Message(ParseDeviceUri("tape:x").status()),
              HasSubstr("'tape:x': unknown URI scheme 'tape' (known: ram: file: iscsi:"));
  EXPECT_THAT(Message(ParseDeviceUri("ram:").status()), HasSubstr("give a size, as in ram:1G"));
  EXPECT_THAT(Message(ParseDeviceUri("file://rel").status()), HasSubstr("absolute path"));
  EXPECT_THAT(Message(ParseDeviceUri("").status()), HasSubstr("empty device name"));
  auto dev = OpenDeviceUri("ram:12Q");
  EXPECT_THAT(Message(dev.status()), HasSubstr("'ram:12Q': size:"));
}

TEST(DeviceUriTest, OpensWithExtraParameters) {
  auto dev = OpenDeviceUri("ram:1M", "", {{"read_only", "true"}});
  ASSERT_TRUE(dev.ok()) << dev.status().ToString();
  EXPECT_TRUE((*dev)->read_only());
  EXPECT_EQ((*dev)->name(), "ram:1M");
}

}  // namespace
}  // namespace ferry::backends
