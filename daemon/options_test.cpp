#include "daemon/options.h"

#include <cstdio>
#include <fstream>

#include <gtest/gtest.h>

namespace synchmess {

TEST(Options, Defaults) {
  auto p = parse_options({});
  ASSERT_TRUE(p.error.empty());
  EXPECT_EQ(p.options.transport, TransportKind::automatic);
  EXPECT_EQ(p.options.dev_dir, "/dev/synch");
  EXPECT_FALSE(p.options.foreground);
  EXPECT_EQ(p.options.max_groups, 64u);
  EXPECT_EQ(p.options.max_message_size, 1024u);
  EXPECT_EQ(p.options.max_storage_size, 1048576u);
}

TEST(Options, EveryOption) {
  auto p = parse_options({"--transport=fuse", "--dev-dir=/tmp/x/", "--foreground", "--max-groups=4096",
                          "--max-message-size=2048", "--max-storage-size=4096", "--threads=3"});
  ASSERT_TRUE(p.error.empty()) << p.error;
  EXPECT_EQ(p.options.transport, TransportKind::fuse);
  EXPECT_EQ(p.options.dev_dir, "/tmp/x");
  EXPECT_TRUE(p.options.foreground);
  EXPECT_EQ(p.options.max_groups, 4096u);
  EXPECT_EQ(p.options.max_message_size, 2048u);
  EXPECT_EQ(p.options.max_storage_size, 4096u);
  EXPECT_EQ(p.options.threads, 3u);
}

TEST(Options, BadInputIsRefusedWithTheOptionsName) {
  EXPECT_NE(parse_options({"--transport=tcp"}).error.find("--transport"), std::string::npos);
  EXPECT_NE(parse_options({"--max-groups=0"}).error.find("--max-groups"), std::string::npos);
  EXPECT_NE(parse_options({"--max-groups=12x"}).error.find("--max-groups"), std::string::npos);
  EXPECT_NE(parse_options({"--max-message-size=1000000"}).error.find("--max-message-size"), std::string::npos);
  EXPECT_NE(parse_options({"--dev-dir=relative"}).error.find("--dev-dir"), std::string::npos);
  EXPECT_NE(parse_options({"--bogus"}).error.find("--bogus"), std::string::npos);
  EXPECT_FALSE(parse_options({"stray"}).error.empty());
  EXPECT_FALSE(parse_options({"--config=/nonexistent/file"}).error.empty());
  EXPECT_TRUE(parse_options({"--help"}).options.help);
  EXPECT_NE(usage().find("--max-storage-size"), std::string::npos);
}

TEST(Options, ConfigFileThenCommandLine) {
  char path[] = "/tmp/synchmess-options-XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  close(fd);
  {
    std::ofstream f(path);
    f << "# comment\n transport = fuse \nmax-groups=100 # trailing\n\nmax-message-size = 512\n";
  }
  auto p = parse_options({std::string("--config=") + path, "--max-groups=7"});
  ASSERT_TRUE(p.error.empty()) << p.error;
  EXPECT_EQ(p.options.transport, TransportKind::fuse);
  EXPECT_EQ(p.options.max_groups, 7u);
  EXPECT_EQ(p.options.max_message_size, 512u);
  {
    std::ofstream f(path);
    f << "max-groups = lots\n";
  }
  auto bad = parse_options({std::string("--config=") + path});
  EXPECT_NE(bad.error.find(":1:"), std::string::npos) << bad.error;
  std::remove(path);
}

}  // namespace synchmess
