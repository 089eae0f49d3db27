// Writing a whole buffer to a descriptor (files the CA and the leaf cache create).
#pragma once
#include <unistd.h>

#include <cerrno>
#include <string_view>

namespace sekisho {

// Writes all of `data` to `fd`, retrying short writes and EINTR. False on the first failure,
// with errno as write(2) left it.
inline bool writeAll(int fd, std::string_view data) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t w = ::write(fd, data.data() + off, data.size() - off);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    off += size_t(w);
  }
  return true;
}

}  // namespace sekisho
