// The shipped binaries: llamad fetches + loads from the hub at start, answers llamactl
// (list --output json, generate, status, exit codes), and on SIGTERM drains a running
// stream before exiting 0. Also the in-process drain of LlamaServer::Shutdown.
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/services/service_harness.h"

namespace llama::services::testing {
namespace {

// A free loopback port (bound then released).
int FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  int port = ntohs(addr.sin_port);
  ::close(fd);
  return port;
}

// A bad --prefill_fp16_weights is a usage error (exit 2) named in the message, before llamad
// binds or fetches anything.
TEST(BinariesTest, LlamadRejectsABadPrefillWeightsValue) {
  int code = 0;
  const std::string out = RunCommand(absl::StrCat(LLAMAD_BIN, " --listen=127.0.0.1:0 --metrics_listen=127.0.0.1:0",
                                                  " --prefill_fp16_weights=sometimes 2>&1"),
                                     &code);
  EXPECT_EQ(code, 2) << out;
  EXPECT_NE(out.find("--prefill_fp16_weights"), std::string::npos) << out;
  EXPECT_NE(out.find("expected auto"), std::string::npos) << out;
}

TEST(BinariesTest, LlamadServesLlamactlAndDrainsOnSigterm) {
  Hub hub(Hub::FixtureBranches());
  ASSERT_TRUE(hub.ok());
  TempDir tmp;
  const int port = FreePort();
  const std::string addr = absl::StrCat("127.0.0.1:", port);
  std::vector<std::string> args = {
      LLAMAD_BIN, "--listen=" + addr, "--metrics_listen=127.0.0.1:0",
      "--cache_dir=" + tmp.path() + "/cache", "--hub_endpoint=" + hub.endpoint(),
      "--variants=main,gptq-4bit-32g-actorder_True", "--default_variant=main",
      "--aliases=story=main", "--backend=cpu", "--threads=1"};
  pid_t pid = ::fork();
  if (pid == 0) {
    int log = ::open((tmp.path() + "/llamad.log").c_str(), O_WRONLY | O_CREAT, 0644);
    ::dup2(log, 1);
    ::dup2(log, 2);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ASSERT_GT(pid, 0);
  auto channel = grpc::CreateChannel(addr, grpc::InsecureChannelCredentials());
  auto health = grpc::health::v1::Health::NewStub(channel);
  auto serving = [&](const std::string& service) {
    grpc::health::v1::HealthCheckRequest req;
    req.set_service(service);
    grpc::health::v1::HealthCheckResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(2)));
    return health->Check(&ctx, req, &resp).ok() &&
           resp.status() == grpc::health::v1::HealthCheckResponse::SERVING;
  };
  bool up = false;
  for (int i = 0; i < 600 && !up; ++i) {  // bounded: up to ~60 s
    up = serving("") && serving("gptq-4bit-32g-actorder_True");
    if (!up) absl::SleepFor(absl::Milliseconds(100));
  }
  ASSERT_TRUE(up) << ReadFile(tmp.path() + "/llamad.log");

  const std::string ctl = absl::StrCat(LLAMACTL_BIN, " --server=", addr, " ");
  int code = 0;
  std::string out = RunCommand(ctl + "list --output json", &code);
  ASSERT_EQ(code, 0) << out;
  nlohmann::json list = nlohmann::json::parse(out);
  EXPECT_EQ(list["default_variant"], "main");
  ASSERT_EQ(list["variants"].size(), 2u);
  for (const auto& v : list["variants"]) EXPECT_EQ(v["state_name"], "ready");

  out = RunCommand(ctl + "--max_new_tokens=32 generate Once upon a time 2>/dev/null", &code);
  ASSERT_EQ(code, 0) << out;
  std::string want = References()["main"]["greedy_once_upon_a_time_32_text"];
  EXPECT_EQ("Once upon a time" + out, want + "\n");

  out = RunCommand(ctl + "--variant=gptq-4bit-32g-actorder_True --max_new_tokens=32 "
                         "generate Once upon a time 2>/dev/null",
                   &code);
  ASSERT_EQ(code, 0);
  EXPECT_EQ("Once upon a time" + out,
            References()["gptq-4bit-32g-actorder_True"]["greedy_once_upon_a_time_32_text"]
                    .get<std::string>() +
                "\n");

  // An alias routes to its variant.
  out = RunCommand(ctl + "--variant=story --max_new_tokens=32 generate Once upon a time "
                         "2>/dev/null",
                   &code);
  ASSERT_EQ(code, 0);
  EXPECT_EQ("Once upon a time" + out, want + "\n");

  out = RunCommand(ctl + "status 2>&1", &code);
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("SERVING"), std::string::npos) << out;

  // Exit codes scripts rely on.
  RunCommand(ctl + "--variant=nope generate hi 2>/dev/null", &code);
  EXPECT_EQ(code, 4);  // not found
  RunCommand(ctl + "unload gptq-4bit-64g-actorder_True 2>/dev/null", &code);
  EXPECT_EQ(code, 4);
  RunCommand(ctl + "rm main 2>/dev/null", &code);
  EXPECT_EQ(code, 5);  // loaded: failed precondition
  RunCommand(ctl + "bogus-command 2>/dev/null", &code);
  EXPECT_EQ(code, 2);
  RunCommand(absl::StrCat(LLAMACTL_BIN, " --server=127.0.0.1:", FreePort(),
                          " list 2>/dev/null"),
             &code);
  EXPECT_EQ(code, 3);  // nothing listening

  // SIGTERM: a stream that is running finishes, then llamad exits 0.
  auto stub = v1::Inference::NewStub(channel);
  grpc::ClientContext ctx;
  auto reader = stub->Generate(&ctx, GreedyRequest("main", 400));
  v1::GenerateResponse first;
  ASSERT_TRUE(reader->Read(&first));
  ::kill(pid, SIGTERM);
  StreamResult rest = ReadAll(reader);
  EXPECT_TRUE(rest.status.ok()) << rest.status.error_message();
  int st = 0;
  ASSERT_EQ(::waitpid(pid, &st, 0), pid);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << ReadFile(tmp.path() + "/llamad.log");
}

TEST(BinariesTest, FetchWithoutServerUsesTheFetcherAndPrintsTheSnapshot) {
  Hub hub(Hub::FixtureBranches());
  ASSERT_TRUE(hub.ok());
  TempDir tmp;
  int code = 0;
  std::string out = RunCommand(
      absl::StrCat("HF_ENDPOINT=", hub.endpoint(), " ", LLAMACTL_BIN, " --server=127.0.0.1:",
                   FreePort(), " --cache_dir=", tmp.path(),
                   " fetch gptq-4bit-64g-actorder_True 2>/dev/null"),
      &code);
  ASSERT_EQ(code, 0) << out;
  while (!out.empty() && out.back() == '\n') out.pop_back();
  EXPECT_TRUE(absl::StartsWith(out, tmp.path())) << out;
  EXPECT_EQ(ReadFile(out + "/model.safetensors"),
            ReadFile(FixtureDir("gptq-4bit-64g-actorder_True") + "/model.safetensors"));
}

TEST(BinariesTest, LlamactlRunGeneratesFromALocalCheckpoint) {
  int code = 0;
  std::string out = RunCommand(absl::StrCat(LLAMACTL_BIN, " run --model=", FixtureDir("main"),
                                            " --prompt='Once upon a time' --max_new_tokens=32",
                                            " 2>/dev/null"),
                               &code);
  ASSERT_EQ(code, 0) << out;
  EXPECT_EQ(out, References()["main"]["greedy_once_upon_a_time_32_text"].get<std::string>() +
                     "\n");
}

TEST(ServerDrainTest, ShutdownLetsRunningStreamsFinishAndRefusesNewOnes) {
  Hub hub(Hub::FixtureBranches());
  ASSERT_TRUE(hub.ok());
  TestServer server(hub);
  ASSERT_TRUE(server.start_status().ok());
  ASSERT_TRUE(server.LoadSlow("slow", absl::Milliseconds(10), 2, 8).ok());
  auto ctx = server.Ctx();
  auto reader = server.inference().Generate(ctx.get(), GreedyRequest("slow", 64));
  v1::GenerateResponse first;
  ASSERT_TRUE(reader->Read(&first));
  std::thread drain([&] { server.server().Shutdown(absl::Seconds(30)); });
  StreamResult rest = ReadAll(reader);
  drain.join();
  ASSERT_TRUE(rest.status.ok()) << rest.status.error_message();
  EXPECT_EQ(first.token_ids_size() + rest.tokens.size(), 64u);
  StreamResult after = Generate(server, GreedyRequest("slow", 4), absl::Seconds(5));
  EXPECT_FALSE(after.status.ok());
}

}  // namespace
}  // namespace llama::services::testing
