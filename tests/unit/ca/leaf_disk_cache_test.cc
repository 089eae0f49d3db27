#include "ca/leaf_disk_cache.h"

#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/stat.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <set>
#include <vector>

#include "ca_test_util.h"

using namespace sekisho;
using namespace sekisho::ca;
using namespace sekisho::ca::test;

namespace {

namespace fs = std::filesystem;

std::atomic<time_t> gNow{0};
time_t fakeNow() { return gNow.load(); }

std::set<std::string> leafFiles(const std::string& dir) {
  std::set<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) out.insert(e.path().filename().string());
  return out;
}

std::string serialHex(X509* cert) {
  BignumPtr bn(ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr));
  char* s = BN_bn2hex(bn.get());
  std::string out = s ? s : "";
  OPENSSL_free(s);
  return out;
}

void writeText(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
  ::chmod(path.c_str(), 0600);
}

class LeafDiskCacheTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    caDir_ = new TempDir();
    ca_ = newCa(*caDir_);
  }
  static void TearDownTestSuite() {
    ca_.reset();
    delete caDir_;
  }
  void SetUp() override { leaves_ = tmp_.file("leaves"); }

  static CertCache::MintFn minter(const std::string& host, std::atomic<int>* calls = nullptr, time_t cap = 0,
                                  const Ca* ca = nullptr) {
    return [host, calls, cap, ca]() -> Result<MintedLeaf> {
      if (calls) ++*calls;
      return mintLeaf(ca ? *ca : *ca_, LeafRequest{host, {host}, {}, cap});
    };
  }
  static LeafKey key(const std::string& k) { return LeafKey{ca_->id(), k}; }

  std::shared_ptr<LeafDiskCache> openDisk(size_t maxEntries = 100, size_t queueLimit = 1024) {
    LeafDiskCacheOptions o;
    o.dir = leaves_;
    o.maxEntries = maxEntries;
    o.queueLimit = queueLimit;
    auto d = LeafDiskCache::open(o);
    EXPECT_TRUE(d) << (d ? "" : d.error().detail);
    return d ? *d : nullptr;
  }
  // Mints `hosts` through a cache attached to a fresh disk cache, and waits for the files.
  std::vector<std::shared_ptr<const MintedLeaf>> mintToDisk(const std::vector<std::string>& hosts,
                                                            size_t maxEntries = 100) {
    CertCache cache(maxEntries);
    auto disk = openDisk(maxEntries);
    if (!disk) return {};
    disk->attachTo(cache);
    std::vector<std::shared_ptr<const MintedLeaf>> out;
    for (const auto& h : hosts) {
      auto r = cache.getOrMint(key(h), minter(h));
      EXPECT_TRUE(r) << (r ? "" : r.error().detail);
      if (r) out.push_back(*r);
    }
    disk->stop();
    EXPECT_EQ(disk->stats().written, hosts.size());
    return out;
  }
  std::string pathOf(const std::string& host) const { return leaves_ + "/" + LeafDiskCache::fileName(key(host)); }

  static TempDir* caDir_;
  static std::shared_ptr<const Ca> ca_;
  TempDir tmp_;
  std::string leaves_;
};
TempDir* LeafDiskCacheTest::caDir_ = nullptr;
std::shared_ptr<const Ca> LeafDiskCacheTest::ca_;

TEST_F(LeafDiskCacheTest, WrittenLeavesLoadIntoAFreshCacheAndHitWithoutMinting) {
  auto minted = mintToDisk({"a.example", "b.example", "c.example"});
  ASSERT_EQ(minted.size(), 3u);
  EXPECT_EQ(fileMode(leaves_), 0700u);  // created by open()
  ASSERT_EQ(leafFiles(leaves_).size(), 3u);
  for (const char* h : {"a.example", "b.example", "c.example"}) {
    EXPECT_EQ(fileMode(pathOf(h)), 0600u) << h;
    std::string text = readAll(pathOf(h));
    EXPECT_EQ(text.rfind("# sekisho leaf cache v1\n# ca: " + ca_->id() + "\n", 0), 0u);
    EXPECT_NE(text.find("-----BEGIN CERTIFICATE-----"), std::string::npos);
    EXPECT_NE(text.find("-----BEGIN PRIVATE KEY-----"), std::string::npos);
  }

  CertCache fresh(100);
  auto disk = openDisk();
  ASSERT_TRUE(disk);
  LeafDiskLoadStats st = disk->loadInto(fresh, *ca_);
  EXPECT_EQ(st.loaded, 3u) << st.summary();
  EXPECT_EQ(st.dropped(), 0u) << st.summary();
  EXPECT_EQ(st.summary(), "loaded 3, dropped 0");
  EXPECT_EQ(fresh.size(), 3u);
  std::atomic<int> calls{0};
  const char* hosts[] = {"a.example", "b.example", "c.example"};
  for (size_t i = 0; i < 3; ++i) {
    auto r = fresh.getOrMint(key(hosts[i]), minter(hosts[i], &calls));
    ASSERT_TRUE(r);
    EXPECT_EQ(X509_cmp((*r)->cert.get(), minted[i]->cert.get()), 0) << hosts[i];
    EXPECT_EQ(serialHex((*r)->cert.get()), serialHex(minted[i]->cert.get()));
    EXPECT_EQ(EVP_PKEY_eq((*r)->key.get(), minted[i]->key.get()), 1);
  }
  EXPECT_EQ(calls.load(), 0);
  EXPECT_EQ(fresh.stats().hits, 3u);
  EXPECT_EQ(fresh.stats().mints, 0u);
  // Loaded leaves are not written again.
  disk->attachTo(fresh);
  disk->flush();
  EXPECT_EQ(disk->stats().written, 0u);
  EXPECT_EQ(disk->filesKnown(), 3u);
}

TEST_F(LeafDiskCacheTest, KeyBytesAndCaIdRoundTrip) {
  // Keys are arbitrary bytes ("block:" + name, a hex digest, ...): the file keeps them exactly.
  CertCache cache(10);
  auto disk = openDisk();
  ASSERT_TRUE(disk);
  disk->attachTo(cache);
  LeafKey odd{ca_->id(), std::string("block:x\n\0y", 10)};
  ASSERT_TRUE(cache.getOrMint(odd, minter("x.example")));
  disk->stop();
  CertCache fresh(10);
  auto again = openDisk();
  ASSERT_TRUE(again);
  EXPECT_EQ(again->loadInto(fresh, *ca_).loaded, 1u);
  EXPECT_NE(fresh.get(odd), nullptr);
  EXPECT_EQ(fresh.get(LeafKey{ca_->id(), "block:x"}), nullptr);
}

TEST_F(LeafDiskCacheTest, ExpiredOrNearlyExpiredLeavesAreDroppedAtLoad) {
  time_t now = time(nullptr);
  {
    CertCache cache(10);
    auto disk = openDisk();
    ASSERT_TRUE(disk);
    disk->attachTo(cache);
    // The origin certificate ends in 3 hours; the other leaf has the full 397 days.
    ASSERT_TRUE(cache.getOrMint(key("short.example"), minter("short.example", nullptr, now + 3 * 3600)));
    ASSERT_TRUE(cache.getOrMint(key("long.example"), minter("long.example")));
    disk->stop();
  }
  ASSERT_EQ(leafFiles(leaves_).size(), 2u);
  gNow = now + 2 * 3600 + 60;  // 59 minutes left: inside the 1 h margin
  CertCache fresh(10, CertCache::kDefaultExpiryMargin, fakeNow);
  auto disk = openDisk();
  LeafDiskLoadStats st = disk->loadInto(fresh, *ca_);
  EXPECT_EQ(st.loaded, 1u) << st.summary();
  EXPECT_EQ(st.expired, 1u) << st.summary();
  EXPECT_EQ(fresh.get(key("short.example")), nullptr);
  EXPECT_NE(fresh.get(key("long.example")), nullptr);
  EXPECT_EQ(leafFiles(leaves_), (std::set<std::string>{LeafDiskCache::fileName(key("long.example"))}));

  gNow = now + 400L * 86400;  // past every leaf
  CertCache later(10, CertCache::kDefaultExpiryMargin, fakeNow);
  st = disk->loadInto(later, *ca_);
  EXPECT_EQ(st.loaded, 0u);
  EXPECT_EQ(st.expired, 1u);
  EXPECT_TRUE(leafFiles(leaves_).empty());
}

TEST_F(LeafDiskCacheTest, LeafInsideTheMarginIsNeitherCachedNorWritten) {
  CertCache cache(10);
  auto disk = openDisk();
  ASSERT_TRUE(disk);
  disk->attachTo(cache);
  ASSERT_TRUE(cache.getOrMint(key("brief.example"), minter("brief.example", nullptr, time(nullptr) + 1800)));
  disk->flush();
  EXPECT_EQ(disk->stats().written, 0u);
  EXPECT_TRUE(leafFiles(leaves_).empty());
}

TEST_F(LeafDiskCacheTest, CorruptFilesAreDroppedAndNothingElseIsLost) {
  auto minted = mintToDisk({"garbage.example", "truncated.example", "mismatch.example", "good.example",
                            "donor.example", "renamed.example"});
  ASSERT_EQ(minted.size(), 6u);
  writeText(pathOf("garbage.example"), "\x01\x02 this is not a leaf\n");
  std::string t = readAll(pathOf("truncated.example"));
  writeText(pathOf("truncated.example"), t.substr(0, t.size() - 80));  // the key's PEM loses its end
  // mismatch.example's certificate with donor.example's key.
  std::string m = readAll(pathOf("mismatch.example")), donor = readAll(pathOf("donor.example"));
  size_t mk = m.find("-----BEGIN PRIVATE KEY-----"), dk = donor.find("-----BEGIN PRIVATE KEY-----");
  ASSERT_NE(mk, std::string::npos);
  ASSERT_NE(dk, std::string::npos);
  writeText(pathOf("mismatch.example"), m.substr(0, mk) + donor.substr(dk));
  // A valid file under another key's name would answer for the wrong host.
  std::string renamed = leaves_ + "/" + LeafDiskCache::fileName(key("elsewhere.example"));
  fs::rename(pathOf("renamed.example"), renamed);
  // Not ours: left alone. A temp file from an interrupted write: removed.
  writeText(leaves_ + "/README", "notes\n");
  writeText(leaves_ + "/.tmp-" + LeafDiskCache::fileName(key("x")) + ".7", "half a le");

  CertCache fresh(100);
  auto disk = openDisk();
  LeafDiskLoadStats st = disk->loadInto(fresh, *ca_);
  EXPECT_EQ(st.loaded, 2u) << st.summary();
  EXPECT_EQ(st.corrupt, 3u) << st.summary();
  EXPECT_EQ(st.keyMismatch, 1u) << st.summary();
  EXPECT_EQ(st.staleTemp, 1u) << st.summary();
  EXPECT_EQ(st.otherCa + st.expired + st.overBound, 0u) << st.summary();
  ASSERT_NE(fresh.get(key("good.example")), nullptr);
  EXPECT_EQ(X509_cmp(fresh.get(key("good.example"))->cert.get(), minted[3]->cert.get()), 0);
  EXPECT_NE(fresh.get(key("donor.example")), nullptr);
  for (const char* h : {"garbage.example", "truncated.example", "mismatch.example", "renamed.example",
                        "elsewhere.example"})
    EXPECT_EQ(fresh.get(key(h)), nullptr) << h;
  EXPECT_EQ(leafFiles(leaves_), (std::set<std::string>{"README", LeafDiskCache::fileName(key("good.example")),
                                                        LeafDiskCache::fileName(key("donor.example"))}));
}

TEST_F(LeafDiskCacheTest, LeavesOfAnotherCaAreDropped) {
  TempDir otherDir;
  auto other = newCa(otherDir);
  ASSERT_TRUE(other);
  {
    CertCache cache(10);
    auto disk = openDisk();
    ASSERT_TRUE(disk);
    disk->attachTo(cache);
    // Honestly labelled as the other CA's.
    ASSERT_TRUE(cache.getOrMint(LeafKey{other->id(), "old.example"}, minter("old.example", nullptr, 0, other.get())));
    // Labelled as the current CA's, but signed by the other one: the signature decides.
    ASSERT_TRUE(cache.getOrMint(key("forged.example"), minter("forged.example", nullptr, 0, other.get())));
    ASSERT_TRUE(cache.getOrMint(key("mine.example"), minter("mine.example")));
    disk->stop();
  }
  ASSERT_EQ(leafFiles(leaves_).size(), 3u);
  CertCache fresh(10);
  auto disk = openDisk();
  LeafDiskLoadStats st = disk->loadInto(fresh, *ca_);
  EXPECT_EQ(st.loaded, 1u) << st.summary();
  EXPECT_EQ(st.otherCa, 2u) << st.summary();
  EXPECT_EQ(fresh.get(key("forged.example")), nullptr);
  EXPECT_NE(fresh.get(key("mine.example")), nullptr);
  EXPECT_EQ(leafFiles(leaves_), (std::set<std::string>{LeafDiskCache::fileName(key("mine.example"))}));
}

TEST_F(LeafDiskCacheTest, DirectoryOthersCanReachIsRefused) {
  ASSERT_EQ(::mkdir(leaves_.c_str(), 0700), 0);
  ASSERT_EQ(::chmod(leaves_.c_str(), 0777), 0);
  LeafDiskCacheOptions o;
  o.dir = leaves_;
  auto r = LeafDiskCache::open(o);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, ErrKind::Config);
  EXPECT_NE(r.error().detail.find("mode 0777"), std::string::npos) << r.error().detail;
  EXPECT_NE(r.error().detail.find("chmod 700 " + leaves_), std::string::npos) << r.error().detail;
  ASSERT_EQ(::chmod(leaves_.c_str(), 0750), 0);  // group read is enough to refuse
  r = LeafDiskCache::open(o);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().detail.find("mode 0750"), std::string::npos) << r.error().detail;
  ASSERT_EQ(::chmod(leaves_.c_str(), 0700), 0);
  EXPECT_TRUE(LeafDiskCache::open(o));
}

TEST_F(LeafDiskCacheTest, UnusablePathsAreRefused) {
  LeafDiskCacheOptions o;
  o.dir = tmp_.file("a-file");
  writeText(o.dir, "x");
  auto r = LeafDiskCache::open(o);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().detail.find("expected a directory"), std::string::npos) << r.error().detail;
  o.dir = tmp_.file("missing-parent/leaves");
  r = LeafDiskCache::open(o);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().detail.find("cannot create"), std::string::npos) << r.error().detail;
  o.dir = "";
  EXPECT_FALSE(LeafDiskCache::open(o));
}

TEST_F(LeafDiskCacheTest, DirectoryNeverHoldsMoreThanTheBound) {
  CertCache cache(3);
  auto disk = openDisk(3);
  ASSERT_TRUE(disk);
  disk->attachTo(cache);
  for (int i = 0; i < 5; ++i) {
    std::string h = "h" + std::to_string(i) + ".example";
    ASSERT_TRUE(cache.getOrMint(key(h), minter(h)));
    disk->flush();
    EXPECT_LE(leafFiles(leaves_).size(), 3u) << i;
  }
  disk->stop();
  EXPECT_EQ(disk->stats().evicted, 2u);
  EXPECT_EQ(disk->filesKnown(), 3u);
  // The oldest two went.
  EXPECT_EQ(leafFiles(leaves_),
            (std::set<std::string>{LeafDiskCache::fileName(key("h2.example")),
                                   LeafDiskCache::fileName(key("h3.example")),
                                   LeafDiskCache::fileName(key("h4.example"))}));

  // A smaller bound at load keeps the newest files (by mtime) and deletes the rest.
  timespec times[2];
  for (int i = 2; i < 5; ++i) {
    times[0].tv_sec = times[1].tv_sec = time(nullptr) - 100 + i;
    times[0].tv_nsec = times[1].tv_nsec = 0;
    ASSERT_EQ(::utimensat(AT_FDCWD, pathOf("h" + std::to_string(i) + ".example").c_str(), times, 0), 0);
  }
  CertCache fresh(2);
  LeafDiskCacheOptions o;
  o.dir = leaves_;
  o.maxEntries = 2;
  auto small = LeafDiskCache::open(o);
  ASSERT_TRUE(small);
  LeafDiskLoadStats st = (*small)->loadInto(fresh, *ca_);
  EXPECT_EQ(st.loaded, 2u) << st.summary();
  EXPECT_EQ(st.overBound, 1u) << st.summary();
  EXPECT_EQ(fresh.get(key("h2.example")), nullptr);
  EXPECT_NE(fresh.get(key("h3.example")), nullptr);
  EXPECT_NE(fresh.get(key("h4.example")), nullptr);
  EXPECT_EQ(leafFiles(leaves_).size(), 2u);
  // Loaded files count against the bound: one more write evicts the oldest loaded one.
  (*small)->attachTo(fresh);
  ASSERT_TRUE(fresh.getOrMint(key("h5.example"), minter("h5.example")));
  (*small)->stop();
  EXPECT_EQ(leafFiles(leaves_),
            (std::set<std::string>{LeafDiskCache::fileName(key("h4.example")),
                                   LeafDiskCache::fileName(key("h5.example"))}));
}

TEST_F(LeafDiskCacheTest, StopWritesEverythingQueued) {
  std::vector<std::shared_ptr<const MintedLeaf>> leaves;
  for (int i = 0; i < 40; ++i) {
    auto m = mintLeaf(*ca_, LeafRequest{"q.example", {"q.example"}, {}, 0});
    ASSERT_TRUE(m);
    leaves.push_back(std::make_shared<const MintedLeaf>(std::move(*m)));
  }
  auto disk = openDisk();
  ASSERT_TRUE(disk);
  for (int i = 0; i < 40; ++i) EXPECT_TRUE(disk->enqueue(key("q" + std::to_string(i)), leaves[size_t(i)]));
  disk->stop();  // at once: the writer has not caught up yet, and must finish before returning
  EXPECT_EQ(disk->stats().written, 40u);
  EXPECT_EQ(leafFiles(leaves_).size(), 40u);
  EXPECT_FALSE(disk->enqueue(key("late"), leaves[0]));
  EXPECT_EQ(disk->stats().dropped, 1u);
  disk->stop();  // idempotent
}

TEST_F(LeafDiskCacheTest, FullQueueDropsAndCounts) {
  auto m = mintLeaf(*ca_, LeafRequest{"q.example", {"q.example"}, {}, 0});
  ASSERT_TRUE(m);
  auto leaf = std::make_shared<const MintedLeaf>(std::move(*m));
  auto disk = openDisk(1000, 2);
  ASSERT_TRUE(disk);
  size_t accepted = 0;
  for (int i = 0; i < 200; ++i) accepted += disk->enqueue(key("q" + std::to_string(i)), leaf) ? 1 : 0;
  disk->stop();
  LeafDiskStats st = disk->stats();
  EXPECT_GT(st.dropped, 0u);
  EXPECT_EQ(st.written, accepted);
  EXPECT_EQ(st.written + st.dropped, 200u);
  EXPECT_EQ(leafFiles(leaves_).size(), accepted);
}

TEST_F(LeafDiskCacheTest, DestructorDrainsToo) {
  auto m = mintLeaf(*ca_, LeafRequest{"d.example", {"d.example"}, {}, 0});
  ASSERT_TRUE(m);
  auto leaf = std::make_shared<const MintedLeaf>(std::move(*m));
  {
    auto disk = openDisk();
    ASSERT_TRUE(disk);
    for (int i = 0; i < 10; ++i) disk->enqueue(key("d" + std::to_string(i)), leaf);
  }
  EXPECT_EQ(leafFiles(leaves_).size(), 10u);
}

}  // namespace
