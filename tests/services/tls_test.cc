// Optional TLS: with --tls_cert/--tls_key the server speaks TLS only; a client trusting
// the certificate generates (C++ stub and llamactl --tls --tls_ca), a plaintext one fails.
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/services/service_harness.h"

namespace llama::services::testing {
namespace {

int Shell(const std::string& cmd, std::string* out = nullptr) {
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) return -1;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) {
    if (out) out->append(buf, n);
  }
  int st = ::pclose(p);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

TEST(TlsTest, ServesTlsToTrustingClientsOnly) {
  TempDir tmp;
  const std::string cert = tmp.path() + "/cert.pem", key = tmp.path() + "/key.pem";
  // A throwaway self-signed certificate for 127.0.0.1.
  ASSERT_EQ(Shell(absl::StrCat("openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "
                               "/CN=localhost -addext subjectAltName=IP:127.0.0.1,DNS:localhost "
                               "-keyout ", key, " -out ", cert, " >/dev/null 2>&1")),
            0);
  Hub hub(Hub::FixtureBranches());
  ASSERT_TRUE(hub.ok());
  ServerConfig cfg;
  cfg.tls_cert = cert;
  cfg.tls_key = key;
  TestServer server(hub, cfg);
  ASSERT_TRUE(server.start_status().ok()) << server.start_status();
  ASSERT_TRUE(server.FetchAndLoad("main").ok());
  ASSERT_TRUE(server.manager().SetDefault("main").ok());

  StreamResult r = Generate(server, GreedyRequest("main"));
  ASSERT_TRUE(r.status.ok()) << r.status.error_message();
  EXPECT_EQ(r.tokens, ReferenceContinuation("main"));

  const std::string addr = absl::StrCat("127.0.0.1:", server.server().port());
  std::string out;
  ASSERT_EQ(Shell(absl::StrCat(LLAMACTL_BIN, " --server=", addr, " --tls --tls_ca=", cert,
                               " --max_new_tokens=32 generate Once upon a time 2>/dev/null"),
                  &out),
            0);
  EXPECT_EQ("Once upon a time" + out,
            References()["main"]["greedy_once_upon_a_time_32_text"].get<std::string>() + "\n");

  // Plaintext against the TLS port does not get through.
  auto plain = grpc::CreateChannel(addr, grpc::InsecureChannelCredentials());
  auto stub = v1::Inference::NewStub(plain);
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
  auto reader = stub->Generate(&ctx, GreedyRequest("main"));
  EXPECT_FALSE(ReadAll(reader).status.ok());

  // Half a TLS configuration is refused at start.
  ServerConfig half;
  half.tls_cert = cert;
  TestServer bad(hub, half);
  EXPECT_TRUE(absl::IsInvalidArgument(bad.start_status())) << bad.start_status();
}

}  // namespace
}  // namespace llama::services::testing
