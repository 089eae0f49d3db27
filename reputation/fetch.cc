#include "reputation/fetch.h"

#include <curl/curl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <mutex>

namespace sekisho::reputation {

namespace {

struct Sink {
  FILE* f = nullptr;
  size_t bytes = 0, max = 0;
  bool tooBig = false, writeFailed = false;
};

size_t onData(char* data, size_t size, size_t n, void* arg) {
  auto* s = static_cast<Sink*>(arg);
  size_t len = size * n;
  if (s->bytes + len > s->max) {
    s->tooBig = true;
    return 0;  // aborts the transfer with CURLE_WRITE_ERROR
  }
  if (std::fwrite(data, 1, len, s->f) != len) {
    s->writeFailed = true;
    return 0;
  }
  s->bytes += len;
  return len;
}

int onProgress(void*, curl_off_t total, curl_off_t done, curl_off_t, curl_off_t) {
  if (total > 0)
    std::fprintf(stderr, "\rdownloading %3d%% (%lld / %lld bytes)", int(done * 100 / total),
                 static_cast<long long>(done), static_cast<long long>(total));
  else
    std::fprintf(stderr, "\rdownloading %lld bytes", static_cast<long long>(done));
  return 0;
}

}  // namespace

bool isFetchUrl(std::string_view s) noexcept { return s.starts_with("http://") || s.starts_with("https://"); }

Result<std::string> fetchToTempFile(const std::string& url, const std::string& dir, const FetchOptions& opts) {
  if (!isFetchUrl(url)) return fail(ErrKind::Config, Side::Config, "'" + url + "' is not an http:// or https:// URL");
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  std::string path = (dir.empty() ? std::string("/tmp") : dir) + "/sekisho-feed-XXXXXX";
  int fd = ::mkstemp(path.data());
  if (fd < 0) return fail(ErrKind::Io, Side::Internal, "cannot create a temporary file in '" + dir + "'");
  Sink sink;
  sink.f = ::fdopen(fd, "wb");
  sink.max = opts.maxBytes;
  if (!sink.f) {
    ::close(fd);
    ::unlink(path.c_str());
    return fail(ErrKind::Io, Side::Internal, "cannot open '" + path + "'");
  }
  CURL* c = curl_easy_init();
  char errbuf[CURL_ERROR_SIZE] = "";
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(c, CURLOPT_MAXREDIRS, 5L);
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
  if (!opts.caFile.empty()) curl_easy_setopt(c, CURLOPT_CAINFO, opts.caFile.c_str());
  curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, opts.connectTimeoutSec);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, opts.totalTimeoutSec);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1024L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, opts.stallSec);
  curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, curl_off_t(opts.maxBytes));
  curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");  // gzip/deflate if the server offers it
  curl_easy_setopt(c, CURLOPT_USERAGENT, "sekisho-feed-fetch/1");
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &onData);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &sink);
  if (opts.progress) {
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, &onProgress);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  }
  CURLcode rc = curl_easy_perform(c);
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_cleanup(c);
  if (opts.progress) std::fprintf(stderr, "\r\033[K");
  bool closed = std::fclose(sink.f) == 0;
  auto bad = [&](const std::string& why) {
    ::unlink(path.c_str());
    return fail(ErrKind::Io, Side::Upstream, "download of '" + url + "' failed: " + why);
  };
  if (sink.tooBig || rc == CURLE_FILESIZE_EXCEEDED)
    return bad("larger than " + std::to_string(opts.maxBytes) + " bytes");
  if (sink.writeFailed || !closed) return bad("cannot write '" + path + "'");
  if (rc == CURLE_HTTP_RETURNED_ERROR) return bad("HTTP status " + std::to_string(status));
  if (rc != CURLE_OK) return bad(errbuf[0] ? errbuf : curl_easy_strerror(rc));
  return path;
}

}  // namespace sekisho::reputation
