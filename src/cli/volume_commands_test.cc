#include "cli/volume_commands.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "cli/admin_commands.h"

namespace ferry::cli {
namespace {

using json = nlohmann::json;
using ::testing::HasSubstr;

// Parses a ferryctl command line and returns the request it would send.
Status Request(std::vector<std::string> argv, std::string* method, json* params) {
  CLI::App app{"ferryctl", "ferryctl"};
  AdminArgs args;
  AddAdminCommands(app, &args);
  std::vector<const char*> c = {"ferryctl"};
  for (const std::string& a : argv) c.push_back(a.c_str());
  app.parse(static_cast<int>(c.size()), const_cast<char**>(c.data()));
  CLI::App* v = app.get_subcommand("volume");
  if (!v->parsed()) return InvalidArgument("not a volume command");
  return VolumeRequest(v->get_subcommands().front()->get_name(), args.volume, method, params);
}

TEST(VolumeCommands, BuildTheRequests) {
  std::string m;
  json p;
  ASSERT_TRUE(Request({"volume", "create", "v", "--table", "0 8 zero"}, &m, &p).ok());
  EXPECT_EQ(m, "volume_create");
  EXPECT_EQ(p, json({{"name", "v"}, {"table", "0 8 zero"}}));
  ASSERT_TRUE(Request({"volume", "suspend", "v"}, &m, &p).ok());
  EXPECT_EQ(p, json({{"name", "v"}})) << "ferryd's default deadline unless one is given";
  ASSERT_TRUE(Request({"volume", "suspend", "v", "--deadline-ms", "250"}, &m, &p).ok());
  EXPECT_EQ(p["deadline_ms"], 250);
  ASSERT_TRUE(Request({"volume", "table", "v", "--inactive"}, &m, &p).ok());
  EXPECT_EQ(m, "volume_table");
  EXPECT_EQ(p["inactive"], true);
  ASSERT_TRUE(Request({"volume", "message", "v", "2048", "drop_writes", "now"}, &m, &p).ok());
  EXPECT_EQ(p, json({{"name", "v"}, {"sector", 2048}, {"args", {"drop_writes", "now"}}}));
  ASSERT_TRUE(Request({"volume", "list"}, &m, &p).ok());
  EXPECT_EQ(m, "volume_list");
  EXPECT_EQ(p, json::object());
}

TEST(VolumeCommands, ReadsTableFilesAndNeedsATable) {
  const std::string f =
      std::filesystem::temp_directory_path() / ("ferry-table-" + std::to_string(getpid()));
  std::ofstream(f) << "0 8 zero\n8 8 error\n";
  std::string m;
  json p;
  ASSERT_TRUE(Request({"volume", "load", "v", "--table-file", f}, &m, &p).ok());
  EXPECT_EQ(m, "volume_load");
  EXPECT_EQ(p["table"], "0 8 zero\n8 8 error\n");
  std::filesystem::remove(f);
  EXPECT_THAT(std::string(Request({"volume", "load", "v", "--table-file", f}, &m, &p).message()),
              HasSubstr("cannot read table file"));
  EXPECT_THAT(std::string(Request({"volume", "create", "v"}, &m, &p).message()),
              HasSubstr("--table TEXT or --table-file FILE"));
  EXPECT_THROW(Request({"volume", "create", "v", "--table", "x", "--table-file", "y"}, &m, &p),
               CLI::ParseError);
}

TEST(VolumeCommands, PrintsForPeople) {
  std::ostringstream out;
  PrintVolumeList(json::array({{{"name", "v"},
                                {"size_bytes", 1 << 20},
                                {"lines", 2},
                                {"suspended", true},
                                {"generation", 3},
                                {"open_count", 1},
                                {"inactive_table", true},
                                {"from_config", false}}}),
                  out);
  EXPECT_THAT(out.str(), HasSubstr("v     1 MiB  2      suspended  3    1     loaded    runtime"));
  out.str("");
  PrintVolumeStatus({{"name", "v"},
                     {"size_bytes", 4096},
                     {"users", {"LUN 0 of iqn.x"}},
                     {"table", "0 8 zero\n"},
                     {"inactive_table", ""},
                     {"status", ""}},
                    out);
  EXPECT_THAT(out.str(), HasSubstr("used by: LUN 0 of iqn.x;"));
  EXPECT_THAT(out.str(), HasSubstr("table:\n0 8 zero\n"));
}

}  // namespace
}  // namespace ferry::cli
