#include "tls-mitm/ticket_keys.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <cstring>
#include <mutex>

namespace sekisho::mitm {

namespace {

struct Key {
  unsigned char name[16];
  unsigned char aes[32];
  unsigned char hmac[32];
  bool valid = false;
};

struct Keys {
  std::mutex mu;
  Key current, previous;
  time_t rotated = 0;
  time_t every = 12 * 3600;

  bool fresh(Key& k) {
    k.valid = RAND_bytes(k.name, sizeof k.name) == 1 && RAND_bytes(k.aes, sizeof k.aes) == 1 &&
              RAND_bytes(k.hmac, sizeof k.hmac) == 1;
    return k.valid;
  }
  // With mu held: rotates when the current key is older than `every`.
  void maybeRotate(time_t now) {
    if (current.valid && now - rotated < every) return;
    Key next;
    if (!fresh(next)) return;
    previous = current;
    current = next;
    rotated = now;
  }
};

Keys& keys() {
  static Keys k;
  return k;
}

bool setMac(EVP_MAC_CTX* hctx, const unsigned char* key) {
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, const_cast<unsigned char*>(key), 32),
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, const_cast<char*>("SHA256"), 0),
      OSSL_PARAM_construct_end()};
  return EVP_MAC_CTX_set_params(hctx, params) == 1;
}

int onTicketKey(SSL*, unsigned char keyName[16], unsigned char* iv, EVP_CIPHER_CTX* cctx, EVP_MAC_CTX* hctx,
                int enc) {
  Keys& k = keys();
  std::lock_guard lk(k.mu);
  k.maybeRotate(time(nullptr));
  if (enc) {
    if (!k.current.valid || RAND_bytes(iv, EVP_MAX_IV_LENGTH) != 1) return -1;
    memcpy(keyName, k.current.name, 16);
    if (EVP_EncryptInit_ex(cctx, EVP_aes_256_cbc(), nullptr, k.current.aes, iv) != 1) return -1;
    return setMac(hctx, k.current.hmac) ? 1 : -1;
  }
  const Key* use = nullptr;
  int ret = 0;
  if (k.current.valid && memcmp(keyName, k.current.name, 16) == 0) {
    use = &k.current;
    ret = 1;
  } else if (k.previous.valid && memcmp(keyName, k.previous.name, 16) == 0) {
    use = &k.previous;
    ret = 2;  // accepted, and a new ticket under the current key is issued
  }
  if (!use) return 0;  // unknown or retired key: a full handshake
  if (!setMac(hctx, use->hmac)) return -1;
  if (EVP_DecryptInit_ex(cctx, EVP_aes_256_cbc(), nullptr, use->aes, iv) != 1) return -1;
  return ret;
}

}  // namespace

bool installTicketKeys(SSL_CTX* ctx, time_t rotateSeconds) {
  Keys& k = keys();
  {
    std::lock_guard lk(k.mu);
    k.every = rotateSeconds > 0 ? rotateSeconds : 12 * 3600;
    k.maybeRotate(time(nullptr));
    if (!k.current.valid) return false;
  }
  return SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, &onTicketKey) == 1;
}

}  // namespace sekisho::mitm
