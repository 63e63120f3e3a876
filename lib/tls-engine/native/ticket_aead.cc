// keyfleet's native port, second part: the ticket codec's AEAD,
// XChaCha20-Poly1305 (draft-irtf-cfrg-xchacha), in one call per ticket.
//
// Why native: through node:crypto a seal is six calls into C++ (a cipher
// object, setAAD, update, final, getAuthTag, and the JavaScript HChaCha20
// before them), and making the cipher object alone was the largest cost of
// generating or opening a ticket. Here it is one call: HChaCha20 in C, then
// OpenSSL's chacha20-poly1305 on a context reused per thread.
//
// What it touches, and nothing more: the four byte views it is given (key,
// nonce, additional data, input), one EVP_CIPHER_CTX per thread (reset after
// every call, so no key schedule outlives it; freed when the thread ends), and
// a 32-byte subkey on the stack that is wiped (OPENSSL_cleanse) before return.
// No state between calls, no I/O, and no calls into JavaScript, so no handle
// scope or TryCatch is needed here: the only V8 objects made are the returned
// Buffer, inside the caller's scope. Bad sizes give `undefined`, a failed tag gives `undefined`:
// nothing throws. The JavaScript side checks at load that this produces the
// reference implementation's bytes and uses node:crypto when it does not load.

#include <node.h>
#include <node_buffer.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <v8.h>

#include <cstdint>
#include <cstring>

namespace keyfleet_aead {

using v8::Context;
using v8::FunctionCallbackInfo;
using v8::Isolate;
using v8::Local;
using v8::Object;
using v8::Value;

constexpr size_t kKeyBytes = 32;
constexpr size_t kNonceBytes = 24;
constexpr size_t kTagBytes = 16;

inline uint32_t Rotl(uint32_t v, int c) { return (v << c) | (v >> (32 - c)); }
inline uint32_t Load32(const uint8_t* p) {
  return uint32_t(p[0]) | (uint32_t(p[1]) << 8) | (uint32_t(p[2]) << 16) | (uint32_t(p[3]) << 24);
}
inline void Store32(uint8_t* p, uint32_t v) {
  p[0] = uint8_t(v);
  p[1] = uint8_t(v >> 8);
  p[2] = uint8_t(v >> 16);
  p[3] = uint8_t(v >> 24);
}

#define KF_QUARTER(a, b, c, d) \
  a += b;                      \
  d = Rotl(d ^ a, 16);         \
  c += d;                      \
  b = Rotl(b ^ c, 12);         \
  a += b;                      \
  d = Rotl(d ^ a, 8);          \
  c += d;                      \
  b = Rotl(b ^ c, 7);

// HChaCha20: the ChaCha20 rounds over constants | key | nonce[0..16], without
// the final addition; the subkey is words 0..3 and 12..15.
void HChaCha20(uint8_t subkey[32], const uint8_t key[32], const uint8_t nonce16[16]) {
  uint32_t x[16] = {0x61707865, 0x3320646e, 0x79622d32, 0x6b206574};
  for (int i = 0; i < 8; i++) x[4 + i] = Load32(key + 4 * i);
  for (int i = 0; i < 4; i++) x[12 + i] = Load32(nonce16 + 4 * i);
  for (int round = 0; round < 10; round++) {
    KF_QUARTER(x[0], x[4], x[8], x[12])
    KF_QUARTER(x[1], x[5], x[9], x[13])
    KF_QUARTER(x[2], x[6], x[10], x[14])
    KF_QUARTER(x[3], x[7], x[11], x[15])
    KF_QUARTER(x[0], x[5], x[10], x[15])
    KF_QUARTER(x[1], x[6], x[11], x[12])
    KF_QUARTER(x[2], x[7], x[8], x[13])
    KF_QUARTER(x[3], x[4], x[9], x[14])
  }
  for (int i = 0; i < 4; i++) Store32(subkey + 4 * i, x[i]);
  for (int i = 0; i < 4; i++) Store32(subkey + 16 + 4 * i, x[12 + i]);
  OPENSSL_cleanse(x, sizeof x);
}
#undef KF_QUARTER

// One context per thread (workers each have their own), made on first use and
// freed when the thread ends.
struct ThreadCipher {
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  ~ThreadCipher() { EVP_CIPHER_CTX_free(ctx); }
};

// Resets the context when a call returns, on every path: the key schedule of
// the subkey is wiped (OpenSSL frees cipher data with cleanse) instead of
// lingering until the next ticket.
struct UsedContext {
  EVP_CIPHER_CTX* ctx;
  explicit UsedContext(EVP_CIPHER_CTX* c) : ctx(c) {}
  ~UsedContext() {
    if (ctx != nullptr) EVP_CIPHER_CTX_reset(ctx);
  }
  UsedContext(const UsedContext&) = delete;
  UsedContext& operator=(const UsedContext&) = delete;
};

EVP_CIPHER_CTX* ThreadContext() {
  thread_local ThreadCipher cipher;
  return cipher.ctx;
}

struct Bytes {
  const uint8_t* data = nullptr;
  size_t length = 0;
  bool ok = false;
};

Bytes BytesOf(Local<Value> value) {
  Bytes bytes;
  if (!value->IsArrayBufferView()) return bytes;
  bytes.data = reinterpret_cast<const uint8_t*>(node::Buffer::Data(value));
  bytes.length = node::Buffer::Length(value);
  bytes.ok = true;
  return bytes;
}

// Prepares the context for chacha20-poly1305 under HChaCha20(key, nonce[0..16])
// with the IETF nonce 0^4 | nonce[16..24], and feeds the additional data.
bool Begin(EVP_CIPHER_CTX* ctx, int encrypt, const Bytes& key, const Bytes& nonce, const Bytes& aad) {
  uint8_t subkey[32];
  uint8_t iv[12] = {0};
  HChaCha20(subkey, key.data, nonce.data);
  std::memcpy(iv + 4, nonce.data + 16, 8);
  bool ok = EVP_CipherInit_ex(ctx, EVP_chacha20_poly1305(), nullptr, subkey, iv, encrypt) == 1;
  OPENSSL_cleanse(subkey, sizeof subkey);
  int length = 0;
  if (ok && aad.length > 0) ok = EVP_CipherUpdate(ctx, nullptr, &length, aad.data, int(aad.length)) == 1;
  return ok;
}

// xchachaSeal(key, nonce, aad, plaintext) → ciphertext | tag, or undefined.
void Seal(const FunctionCallbackInfo<Value>& args) {
  Isolate* isolate = args.GetIsolate();
  if (args.Length() < 4) return;
  Bytes key = BytesOf(args[0]), nonce = BytesOf(args[1]), aad = BytesOf(args[2]), input = BytesOf(args[3]);
  if (!key.ok || !nonce.ok || !aad.ok || !input.ok) return;
  if (key.length != kKeyBytes || nonce.length != kNonceBytes || input.length > (1u << 30)) return;
  EVP_CIPHER_CTX* ctx = ThreadContext();
  if (ctx == nullptr) return;
  UsedContext used(ctx);
  if (!Begin(ctx, 1, key, nonce, aad)) return;
  Local<Object> out;
  if (!node::Buffer::New(isolate, input.length + kTagBytes).ToLocal(&out)) return;
  auto* data = reinterpret_cast<uint8_t*>(node::Buffer::Data(out));
  int written = 0, tail = 0;
  if (EVP_CipherUpdate(ctx, data, &written, input.data, int(input.length)) != 1) return;
  if (EVP_CipherFinal_ex(ctx, data + written, &tail) != 1) return;
  if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, int(kTagBytes), data + input.length) != 1) return;
  args.GetReturnValue().Set(out);
}

// xchachaOpen(key, nonce, aad, ciphertext | tag) → plaintext, or undefined.
void Open(const FunctionCallbackInfo<Value>& args) {
  Isolate* isolate = args.GetIsolate();
  if (args.Length() < 4) return;
  Bytes key = BytesOf(args[0]), nonce = BytesOf(args[1]), aad = BytesOf(args[2]), sealed = BytesOf(args[3]);
  if (!key.ok || !nonce.ok || !aad.ok || !sealed.ok) return;
  if (key.length != kKeyBytes || nonce.length != kNonceBytes || sealed.length < kTagBytes) return;
  if (sealed.length > (1u << 30)) return;
  size_t body = sealed.length - kTagBytes;
  EVP_CIPHER_CTX* ctx = ThreadContext();
  if (ctx == nullptr) return;
  UsedContext used(ctx);
  if (!Begin(ctx, 0, key, nonce, aad)) return;
  uint8_t tag[kTagBytes];
  std::memcpy(tag, sealed.data + body, kTagBytes);
  if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, int(kTagBytes), tag) != 1) return;
  Local<Object> out;
  if (!node::Buffer::New(isolate, body).ToLocal(&out)) return;
  auto* data = reinterpret_cast<uint8_t*>(node::Buffer::Data(out));
  int written = 0, tail = 0;
  if (EVP_CipherUpdate(ctx, data, &written, sealed.data, int(body)) != 1) return;
  // A wrong tag fails here: the plaintext written so far is wiped and not returned.
  if (EVP_CipherFinal_ex(ctx, data + written, &tail) != 1) {
    OPENSSL_cleanse(data, body);
    return;
  }
  args.GetReturnValue().Set(out);
}

}  // namespace keyfleet_aead

// Called from the addon's init (keyfleet_tls.cc).
void RegisterTicketAead(v8::Local<v8::Context> context, v8::Local<v8::Object> exports) {
  // Context::GetIsolate is gone in the V8 of Node 26; the init runs on the isolate it registers in.
  v8::Isolate* isolate = v8::Isolate::GetCurrent();
  auto set = [&](const char* name, v8::FunctionCallback callback) {
    v8::Local<v8::Function> fn;
    if (v8::FunctionTemplate::New(isolate, callback)->GetFunction(context).ToLocal(&fn)) {
      exports->Set(context, v8::String::NewFromUtf8(isolate, name).ToLocalChecked(), fn).Check();
    }
  };
  set("xchachaSeal", keyfleet_aead::Seal);
  set("xchachaOpen", keyfleet_aead::Open);
}
