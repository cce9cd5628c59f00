#include "daemon/options.h"

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

namespace synchmess {

TEST(Options, Defaults) {
  auto p = parse_options({});
  ASSERT_TRUE(p.error.empty());
  EXPECT_EQ(p.options.transport, TransportKind::automatic);
  EXPECT_EQ(p.options.dev_dir, "/dev/synch");
  EXPECT_FALSE(p.options.foreground);
  EXPECT_FALSE(p.options.no_modprobe);
  EXPECT_EQ(p.options.max_groups, 64u);
  EXPECT_EQ(p.options.max_message_size, 1024u);
  EXPECT_EQ(p.options.max_storage_size, 1048576u);
  // One home for each default: core's, which docs/abi.md states.
  EXPECT_EQ(p.options.max_groups, RegistryOptions::default_max_groups);
  EXPECT_EQ(p.options.max_message_size, Limits::default_max_message_size);
  EXPECT_EQ(p.options.max_storage_size, Limits::default_max_storage_size);
}

// The ranges are core's: the largest value is accepted, one more refused.
TEST(Options, RangesAreCores) {
  struct Case {
    std::string option;
    std::size_t largest;
  };
  for (const auto& [option, largest] :
       {Case{"--max-groups", RegistryOptions::largest_max_groups},
        Case{"--max-message-size", Limits::largest_max_message_size},
        Case{"--max-storage-size", Limits::largest_max_storage_size},
        Case{"--threads", Options::largest_threads}}) {
    auto ok = parse_options({option + "=" + std::to_string(largest)});
    EXPECT_TRUE(ok.error.empty()) << option << "=" << largest << ": " << ok.error;
    auto over = parse_options({option + "=" + std::to_string(largest + 1)});
    EXPECT_NE(over.error.find(option), std::string::npos) << option << "=" << largest + 1 << " was accepted";
  }
  EXPECT_EQ(Limits::largest_max_message_size, 65536u);
  EXPECT_EQ(Limits::largest_max_storage_size, std::size_t{1} << 40);
}

TEST(Options, EveryOption) {
  auto p = parse_options({"--transport=fuse", "--dev-dir=/tmp/x/", "--foreground", "--no-modprobe",
                          "--max-groups=4096", "--max-message-size=2048", "--max-storage-size=4096",
                          "--threads=3"});
  ASSERT_TRUE(p.error.empty()) << p.error;
  EXPECT_EQ(p.options.transport, TransportKind::fuse);
  EXPECT_EQ(p.options.dev_dir, "/tmp/x");
  EXPECT_TRUE(p.options.foreground);
  EXPECT_TRUE(p.options.no_modprobe);
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

// A temporary configuration file holding `text`.
class ConfigFile {
 public:
  explicit ConfigFile(const std::string& text) {
    char name[] = "/tmp/synchmess-options-XXXXXX";
    int fd = mkstemp(name);
    if (fd >= 0) close(fd);
    path_ = name;
    std::ofstream(path_) << text;
  }
  ~ConfigFile() { std::remove(path_.c_str()); }
  std::string arg() const { return "--config=" + path_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

TEST(Options, BadValuesNameTheOption) {
  struct Case {
    const char* arg;
    const char* option;
  };
  for (auto [arg, option] : {Case{"--threads=0", "--threads"}, Case{"--threads=65", "--threads"},
                             Case{"--max-storage-size=-1", "--max-storage-size"},
                             Case{"--max-storage-size=", "--max-storage-size"},
                             Case{"--max-groups=1048576", "--max-groups"}, Case{"--max-groups=0x10", "--max-groups"},
                             Case{"--max-groups= 5", "--max-groups"}, Case{"--transport=", "--transport"},
                             Case{"--dev-dir=", "--dev-dir"}, Case{"--foreground=maybe", "--foreground"},
                             Case{"--no-modprobe=maybe", "--no-modprobe"},
                             Case{"--max-message-size", "--max-message-size"}}) {
    auto p = parse_options({"--max-groups=5", arg});
    EXPECT_TRUE(contains(p.error, option)) << arg << " gave: " << p.error;
    EXPECT_EQ(p.options.max_groups, 64u) << arg << ": a partial configuration";
  }
}

TEST(Options, NumbersAreDecimalAndTheLastValueWins) {
  auto p = parse_options({"--max-groups=010", "--threads=2", "--threads=4", "--foreground=no"});
  ASSERT_TRUE(p.error.empty()) << p.error;
  EXPECT_EQ(p.options.max_groups, 10u);
  EXPECT_EQ(p.options.threads, 4u);
  EXPECT_FALSE(p.options.foreground);
  auto spaced = parse_options({"--max-groups", "9", "-h"});
  ASSERT_TRUE(spaced.error.empty()) << spaced.error;
  EXPECT_TRUE(spaced.options.help);
}

TEST(Options, EverySettingFromTheConfigFile) {
  ConfigFile f(
      "transport = cuse\n"
      "dev-dir = \"/dev/my synch/\"\n"
      "foreground = true\n"
      "no-modprobe = yes\n"
      "max-groups = 4096\n"
      "max-message-size = 2048\n"
      "max-storage-size = 4096\n"
      "threads = 3\n");
  auto p = parse_options({f.arg()});
  ASSERT_TRUE(p.error.empty()) << p.error;
  EXPECT_EQ(p.options.transport, TransportKind::cuse);
  EXPECT_EQ(p.options.dev_dir, "/dev/my synch");
  EXPECT_TRUE(p.options.foreground);
  EXPECT_TRUE(p.options.no_modprobe);
  EXPECT_EQ(p.options.max_groups, 4096u);
  EXPECT_EQ(p.options.max_message_size, 2048u);
  EXPECT_EQ(p.options.max_storage_size, 4096u);
  EXPECT_EQ(p.options.threads, 3u);
  ConfigFile bare("foreground\n");
  EXPECT_TRUE(parse_options({bare.arg()}).options.foreground);
  ConfigFile repeated("threads = 2\nmax-groups = 0\nthreads = 3\nmax-groups = 9\n");
  auto r = parse_options({repeated.arg()});  // the last line wins, as on the command line
  ASSERT_TRUE(r.error.empty()) << r.error;
  EXPECT_EQ(r.options.threads, 3u);
  EXPECT_EQ(r.options.max_groups, 9u);
}

TEST(Options, TheCommandLineOverridesTheConfigFile) {
  ConfigFile f("transport = cuse\ndev-dir = /dev/a\nforeground = true\nmax-groups = 4096\n"
               "max-message-size = 2048\nmax-storage-size = 4096\nthreads = 3\n");
  // Before or after --config: the command line wins either way.
  auto p = parse_options({"--transport=fuse", "--dev-dir=/tmp/b", "--foreground=false", f.arg(),
                          "--max-groups=5", "--max-message-size=6", "--max-storage-size=7", "--threads=8"});
  ASSERT_TRUE(p.error.empty()) << p.error;
  EXPECT_EQ(p.options.transport, TransportKind::fuse);
  EXPECT_EQ(p.options.dev_dir, "/tmp/b");
  EXPECT_FALSE(p.options.foreground);
  EXPECT_EQ(p.options.max_groups, 5u);
  EXPECT_EQ(p.options.max_message_size, 6u);
  EXPECT_EQ(p.options.max_storage_size, 7u);
  EXPECT_EQ(p.options.threads, 8u);
}

TEST(Options, ConfigFileErrorsNameTheFileLineAndSetting) {
  ConfigFile bad_value("# limits\nthreads = 2\n\nmax-storage-size = 0\n");
  auto p = parse_options({bad_value.arg()});
  EXPECT_TRUE(contains(p.error, bad_value.path() + ":4:")) << p.error;
  EXPECT_TRUE(contains(p.error, "--max-storage-size")) << p.error;
  // A bad value on the command line that overrides the file: no file:line.
  ConfigFile good("threads = 2\n");
  auto cli = parse_options({good.arg(), "--threads=0"});
  EXPECT_TRUE(contains(cli.error, "--threads")) << cli.error;
  EXPECT_FALSE(contains(cli.error, good.path())) << cli.error;

  ConfigFile unknown("threads = 2\nmax-group = 5\n");
  auto u = parse_options({unknown.arg()});
  EXPECT_TRUE(contains(u.error, unknown.path() + ":2:")) << u.error;
  EXPECT_TRUE(contains(u.error, "max-group")) << u.error;

  ConfigFile nested("config = /etc/other\n");
  EXPECT_TRUE(contains(parse_options({nested.arg()}).error, nested.path() + ":1:"));
  ConfigFile section("[daemon]\nthreads = 2\n");
  EXPECT_FALSE(parse_options({section.arg()}).error.empty());
  ConfigFile long_dir("dev-dir = /" + std::string(300, 'd') + "\n");
  auto l = parse_options({long_dir.arg()});
  EXPECT_TRUE(contains(l.error, long_dir.path() + ":1:")) << l.error;
  EXPECT_TRUE(contains(l.error, "--dev-dir")) << l.error;

  auto missing = parse_options({"--config=/nonexistent/file"});
  EXPECT_TRUE(contains(missing.error, "--config")) << missing.error;
  EXPECT_TRUE(contains(missing.error, "/nonexistent/file")) << missing.error;
}

TEST(Options, DevDirMustLeaveRoomForTheLongestDevicePath) {
  // group_t.device_path holds 256 bytes: DIR + "/synchmess" + "64" + NUL.
  EXPECT_EQ(longest_dev_dir(64), 256u - 1 - 10 - 2);
  EXPECT_EQ(longest_dev_dir(1048575), 256u - 1 - 10 - 7);
  std::string fits = "/" + std::string(longest_dev_dir(64) - 1, 'd');
  auto ok = parse_options({"--dev-dir=" + fits + "//"});
  ASSERT_TRUE(ok.error.empty()) << ok.error;
  EXPECT_EQ(ok.options.dev_dir, fits);
  EXPECT_EQ((ok.options.dev_dir + "/synchmess64").size() + 1, 256u);

  auto too_long = parse_options({"--dev-dir=" + fits + "d"});
  EXPECT_TRUE(contains(too_long.error, "--dev-dir")) << too_long.error;
  EXPECT_TRUE(contains(too_long.error, "at most 243")) << too_long.error;
  EXPECT_EQ(too_long.options.dev_dir, "/dev/synch");
  // More digits in the largest descriptor leave less room.
  auto more_groups = parse_options({"--dev-dir=" + fits, "--max-groups=1048575"});
  EXPECT_TRUE(contains(more_groups.error, "at most 238")) << more_groups.error;
}

}  // namespace synchmess

namespace synchmess {

TEST(Options, ClusterIsOffByDefault) {
  auto p = parse_options({});
  ASSERT_TRUE(p.error.empty());
  EXPECT_TRUE(p.options.cluster.servers.empty());
  EXPECT_EQ(p.options.cluster.replicas, 3u);
  EXPECT_EQ(p.options.cluster.prefix, "synchmess");
  EXPECT_EQ(p.options.cluster.timeout_ms, 2000u);
}

TEST(Options, ClusterOptions) {
  auto p = parse_options({"--cluster=nats://127.0.0.1:4222,tls://u:p@h2:4223", "--cluster-replicas=1",
                          "--cluster-prefix=team_a", "--cluster-creds=/etc/x.creds", "--cluster-tls-ca=/ca.pem",
                          "--cluster-timeout=500"});
  ASSERT_TRUE(p.error.empty()) << p.error;
  EXPECT_EQ(p.options.cluster.servers, "nats://127.0.0.1:4222,tls://u:p@h2:4223");
  EXPECT_EQ(p.options.cluster.replicas, 1u);
  EXPECT_EQ(p.options.cluster.prefix, "team_a");
  EXPECT_EQ(p.options.cluster.creds, "/etc/x.creds");
  EXPECT_EQ(p.options.cluster.tls_ca, "/ca.pem");
  EXPECT_EQ(p.options.cluster.timeout_ms, 500u);
}

TEST(Options, BadClusterValuesAreRefusedNamingTheOption) {
  for (std::string bad : {"--cluster=127.0.0.1:4222", "--cluster=http://h:1", "--cluster=nats://",
                          "--cluster=nats://a:1,", "--cluster-replicas=0", "--cluster-replicas=6",
                          "--cluster-prefix=a.b", "--cluster-prefix=", "--cluster-timeout=0"}) {
    auto p = parse_options({bad});
    std::string name = bad.substr(0, bad.find('='));
    EXPECT_NE(p.error.find(name), std::string::npos) << bad << " gave: '" << p.error << "'";
  }
}

}  // namespace synchmess

namespace synchmess {

TEST(Options, FastPathOptions) {
  auto d = parse_options({});
  ASSERT_TRUE(d.error.empty());
  EXPECT_FALSE(d.options.no_fast);
  EXPECT_EQ(d.options.fast_socket, "/run/synchmess/fast.sock");
  auto p = parse_options({"--no-fast", "--fast-socket=/tmp/x/fast.sock/"});
  ASSERT_TRUE(p.error.empty()) << p.error;
  EXPECT_TRUE(p.options.no_fast);
  EXPECT_EQ(p.options.fast_socket, "/tmp/x/fast.sock");
  ConfigFile f("no-fast = yes\nfast-socket = /run/s.sock\n");
  auto c = parse_options({f.arg()});
  ASSERT_TRUE(c.error.empty()) << c.error;
  EXPECT_TRUE(c.options.no_fast);
  EXPECT_EQ(c.options.fast_socket, "/run/s.sock");
  auto rel = parse_options({"--fast-socket=fast.sock"});
  EXPECT_NE(rel.error.find("--fast-socket"), std::string::npos) << rel.error;
  std::string longest = "/" + std::string(94, 'a');  // 95 bytes + NUL fill the 96
  EXPECT_TRUE(parse_options({"--fast-socket=" + longest}).error.empty());
  auto too_long = parse_options({"--fast-socket=" + longest + "b"});
  EXPECT_NE(too_long.error.find("--fast-socket"), std::string::npos) << too_long.error;
  EXPECT_FALSE(too_long.options.no_fast) << "never a partial configuration";
}

}  // namespace synchmess
