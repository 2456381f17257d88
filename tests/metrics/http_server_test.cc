// The metrics listener (src/metrics/http_server.h): /metrics with the exposition content
// type and the renderer's text, /healthz 200 while serving and 503 once stopping, a port
// in use refused.
#include "metrics/http_server.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include "metrics/exposition.h"

namespace ferry::metrics {
namespace {

TEST(HttpServer, ServesMetricsAndHealth) {
  auto s =
      HttpServer::Start("127.0.0.1", 0, [] { return std::optional<std::string>("ferry_up 1\n"); });
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  ASSERT_NE((*s)->port(), 0);
  httplib::Client c("127.0.0.1", (*s)->port());
  auto m = c.Get("/metrics");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->status, 200);
  EXPECT_EQ(m->body, "ferry_up 1\n");
  EXPECT_EQ(m->get_header_value("Content-Type"), kTextContentType);
  auto h = c.Get("/healthz");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->status, 200);
  (*s)->SetStopping();
  h = c.Get("/healthz");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->status, 503);
  auto missing = c.Get("/nothing");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
}

TEST(HttpServer, NoNumbersIs503) {
  auto s = HttpServer::Start("127.0.0.1", 0, [] { return std::optional<std::string>(); });
  ASSERT_TRUE(s.ok());
  httplib::Client c("127.0.0.1", (*s)->port());
  auto m = c.Get("/metrics");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->status, 503);
}

TEST(HttpServer, PortInUseIsAnError) {
  auto a = HttpServer::Start("127.0.0.1", 0, [] { return std::optional<std::string>(); });
  ASSERT_TRUE(a.ok());
  auto b =
      HttpServer::Start("127.0.0.1", (*a)->port(), [] { return std::optional<std::string>(); });
  EXPECT_FALSE(b.ok());
}

}  // namespace
}  // namespace ferry::metrics
