// Must show 3: a client in another language — Python grpcio from Debian, no generated
// code (messages from the protoc descriptor set) — runs Generate, reads health and
// lists the services through server reflection.
#include <algorithm>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/services/service_harness.h"

namespace llama::services::testing {
namespace {

TEST(PythonClientTest, GenerateAndHealthFromPython) {
  Hub hub(Hub::FixtureBranches());
  ASSERT_TRUE(hub.ok());
  TestServer server(hub);
  ASSERT_TRUE(server.start_status().ok());
  for (const char* b : {"main", "gptq-4bit-64g-actorder_True"}) {
    ASSERT_TRUE(server.FetchAndLoad(b).ok()) << b;
  }
  ASSERT_TRUE(server.manager().SetDefault("main").ok());

  for (const char* b : {"main", "gptq-4bit-64g-actorder_True"}) {
    SCOPED_TRACE(b);
    std::string cmd = absl::StrCat("/usr/bin/python3 ", LLAMA_SOURCE_DIR,
                                   "/tests/services/python_client.py --server 127.0.0.1:",
                                   server.server().port(), " --descriptor ",
                                   LLAMA_PROTO_DESCRIPTOR, " --variant ", b,
                                   " --max-new-tokens 32");
    int status = 0;
    std::string out = RunCommand(cmd, &status);
    ASSERT_EQ(status, 0) << cmd << "\n" << out;
    nlohmann::json j = nlohmann::json::parse(out);
    EXPECT_EQ(j["tokens"].get<std::vector<int>>(), ReferenceContinuation(b));
    EXPECT_EQ("Once upon a time" + j["text"].get<std::string>(),
              References()[b]["greedy_once_upon_a_time_32_text"].get<std::string>());
    EXPECT_EQ(j["finish"], "FINISH_REASON_LENGTH");
    EXPECT_GE(j["chunks"].get<int>(), 2);
    EXPECT_EQ(j["health"][""], "SERVING");
    EXPECT_EQ(j["health"][b], "SERVING");
    EXPECT_EQ(j["unknown_variant"], "NOT_FOUND");
    std::vector<std::string> services = j["reflection"].get<std::vector<std::string>>();
    for (const char* want : {"llama.v1.Inference", "llama.v1.Admin", "grpc.health.v1.Health"}) {
      EXPECT_NE(std::find(services.begin(), services.end(), want), services.end()) << want;
    }
  }
}

}  // namespace
}  // namespace llama::services::testing
