// keyfleet's native port: OpenSSL's session-ticket and client-certificate
// callbacks on the SSL_CTX behind a Node SecureContext.
//
// Why native: Node exposes its ticket-KEY hook (which key seals and opens a
// ticket) but not SSL_CTX_set_session_ticket_cb (appdata carried in the
// session, a status and a decision for every offered ticket), nor
// SSL_CTX_set_client_cert_cb (a client choosing its certificate from the CA
// names in the server's CertificateRequest). Everything else stays in
// JavaScript: this file only moves facts in and a decision out.
//
// What it touches, and nothing more:
// - the SSL_CTX* that `secureContext.context._external` holds. That is a V8
//   External, which N-API cannot read, so the port uses the V8 API and must be
//   built against the headers of the Node that loads it;
// - on that SSL_CTX: the session-ticket callbacks, the client-certificate
//   callback, and one ex_data slot holding an integer id (JavaScript maps the
//   id to its handlers);
// - during a handshake: SSL_SESSION_set1/get0_ticket_appdata, and read-only
//   facts: SNI (or the raw server_name extension of the ClientHello being
//   processed), protocol version, session time and timeout, the SHA-256 of the
//   peer certificate, the CA names a server asked a client for;
// - for a chosen client certificate: SSL_use_certificate/PrivateKey and the
//   chain on that one SSL.
// No keys pass through here, no I/O, no threads.
//
// Rules kept on every path:
// - OpenSSL may call back from libuv's read path with no V8 context entered:
//   each call into JavaScript enters the environment's context, inside a
//   HandleScope and a TryCatch. A throw, or a return value of the wrong kind,
//   takes the safe answer (ABORT for a ticket decision, no appdata, no client
//   certificate) and is counted in failures().
// - No v8::Global lives in static storage (it would be destroyed after the
//   isolate at exit): the handles live in a per-environment PortState, reset
//   by the environment's cleanup hook. The PortState itself is never freed, so
//   a callback that fires after cleanup finds `alive == false`, not freed memory.
// - OpenSSL objects made here are freed on every path.

#include <node.h>
#include <node_buffer.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <v8.h>

#include <cstdint>
#include <mutex>
#include <vector>

namespace {

using v8::Array;
using v8::ArrayBufferView;
using v8::Context;
using v8::External;
using v8::Function;
using v8::FunctionCallbackInfo;
using v8::FunctionTemplate;
using v8::Global;
using v8::HandleScope;
using v8::Integer;
using v8::Isolate;
using v8::Local;
using v8::MaybeLocal;
using v8::Number;
using v8::Object;
using v8::String;
using v8::TryCatch;
using v8::Value;

// Matches the engine's ticket limit on appdata; anything larger is refused.
constexpr size_t kMaxAppdataBytes = 4096;
// A certificate or key handed back by the chooser; far above any real one.
constexpr size_t kMaxCredentialBytes = 64 * 1024;
constexpr uint32_t kMaxChainLength = 10;

// V8 14 (Node 26) tags External pointers; Node's own use the default tag.
void* ExternalValue(Local<External> external) {
#if V8_MAJOR_VERSION >= 14
  return external->Value(v8::kExternalPointerTypeTagDefault);
#else
  return external->Value();
#endif
}

Local<External> NewExternal(Isolate* isolate, void* value) {
#if V8_MAJOR_VERSION >= 14
  return External::New(isolate, value, v8::kExternalPointerTypeTagDefault);
#else
  return External::New(isolate, value);
#endif
}

// OpenSSL 3.4 (Node 24+) deprecates the long-based getter for a Y2038-safe one.
double SessionTimeOf(const SSL_SESSION* session) {
#if OPENSSL_VERSION_NUMBER >= 0x30300000L
  return static_cast<double>(SSL_SESSION_get_time_ex(session));
#else
  return static_cast<double>(SSL_SESSION_get_time(session));
#endif
}

struct PortState {
  Isolate* isolate = nullptr;
  Global<Context> context;
  Global<Function> on_generate;
  Global<Function> on_decrypt;
  Global<Function> on_client_cert;
  bool alive = true;
  double generate_failures = 0;
  double decrypt_failures = 0;
  double client_cert_failures = 0;
};

// What an SSL_CTX's ex_data slot holds: no V8 handle, so OpenSSL may free it
// whenever the context goes, even after the environment is gone.
struct ContextBinding {
  PortState* state;
  uint32_t id;
};

void FreeBinding(void*, void* ptr, CRYPTO_EX_DATA*, int, long, void*) {
  delete static_cast<ContextBinding*>(ptr);
}

int BindingIndex() {
  static int index = -1;
  static std::once_flag once;
  std::call_once(once, [] { index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, FreeBinding); });
  return index;
}

ContextBinding* BindingOf(SSL_CTX* ctx) {
  int index = BindingIndex();
  if (ctx == nullptr || index < 0) return nullptr;
  return static_cast<ContextBinding*>(SSL_CTX_get_ex_data(ctx, index));
}

// The context the connection uses now (after SNI), else the one the callback
// was installed on: OpenSSL calls the session context's ticket callbacks.
ContextBinding* BindingFor(SSL* ssl, void* installed) {
  ContextBinding* own = BindingOf(SSL_get_SSL_CTX(ssl));
  return own != nullptr ? own : static_cast<ContextBinding*>(installed);
}

bool Usable(const ContextBinding* binding) {
  return binding != nullptr && binding->state->alive && !binding->state->isolate->IsExecutionTerminating();
}

Local<Value> BytesOrUndefined(Isolate* isolate, const unsigned char* data, size_t length) {
  if (data == nullptr) return v8::Undefined(isolate);
  Local<Object> buffer;
  if (!node::Buffer::Copy(isolate, reinterpret_cast<const char*>(data), length).ToLocal(&buffer)) {
    return v8::Undefined(isolate);
  }
  return buffer;
}

Local<Value> ServerNameOf(Isolate* isolate, SSL* ssl) {
  const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  if (name == nullptr) return v8::Undefined(isolate);
  Local<String> text;
  if (!String::NewFromUtf8(isolate, name).ToLocal(&text)) return v8::Undefined(isolate);
  return text;
}

// OpenSSL decrypts an offered ticket before it parses server_name, so during
// the decrypt callback SSL_get_servername is still empty: hand JavaScript the
// raw extension from the ClientHello being processed instead.
Local<Value> ServerNameExtensionOf(Isolate* isolate, SSL* ssl) {
  const unsigned char* data = nullptr;
  size_t length = 0;
  if (SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_server_name, &data, &length) != 1) return v8::Undefined(isolate);
  return BytesOrUndefined(isolate, data, length);
}

Local<Value> AppdataOf(Isolate* isolate, SSL_SESSION* session) {
  if (session == nullptr) return v8::Undefined(isolate);
  void* data = nullptr;
  size_t length = 0;
  if (SSL_SESSION_get0_ticket_appdata(session, &data, &length) != 1 || data == nullptr) {
    return v8::Undefined(isolate);
  }
  return BytesOrUndefined(isolate, static_cast<const unsigned char*>(data), length);
}

// The SHA-256 of a certificate's DER: the client identity policies compare.
Local<Value> FingerprintOf(Isolate* isolate, const X509* certificate) {
  if (certificate == nullptr) return v8::Undefined(isolate);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (X509_digest(certificate, EVP_sha256(), digest, &length) != 1) {
    ERR_clear_error();
    return v8::Undefined(isolate);
  }
  return BytesOrUndefined(isolate, digest, length);
}

int DefaultDecision(SSL_TICKET_STATUS status) {
  switch (status) {
    case SSL_TICKET_SUCCESS:
      return SSL_TICKET_RETURN_USE;
    case SSL_TICKET_SUCCESS_RENEW:
      return SSL_TICKET_RETURN_USE_RENEW;
    default:
      return SSL_TICKET_RETURN_IGNORE_RENEW;
  }
}

// Calls one handler inside the environment's context; empty on a throw.
MaybeLocal<Value> CallHandler(PortState* state, const Global<Function>& handler, int argc, Local<Value>* argv) {
  Isolate* isolate = state->isolate;
  Local<Context> context = state->context.Get(isolate);
  return handler.Get(isolate)->Call(context, v8::Undefined(isolate), argc, argv);
}

int OnGenerateTicket(SSL* ssl, void* installed) {
  ContextBinding* binding = BindingFor(ssl, installed);
  // Returning 0 would fail the handshake; a ticket without appdata is the safe side.
  if (!Usable(binding)) return 1;
  PortState* state = binding->state;
  Isolate* isolate = state->isolate;
  HandleScope handle_scope(isolate);
  Context::Scope context_scope(state->context.Get(isolate));
  TryCatch try_catch(isolate);
  SSL_SESSION* session = SSL_get_session(ssl);
  if (session == nullptr || state->on_generate.IsEmpty()) return 1;
  Local<Value> argv[] = {
      Integer::NewFromUnsigned(isolate, binding->id),
      ServerNameOf(isolate, ssl),
      Integer::New(isolate, SSL_version(ssl)),
      AppdataOf(isolate, session),
      FingerprintOf(isolate, SSL_get0_peer_certificate(ssl)),
  };
  Local<Value> result;
  if (!CallHandler(state, state->on_generate, 5, argv).ToLocal(&result)) {
    state->generate_failures++;
    return 1;
  }
  if (result->IsUndefined() || result->IsNull()) return 1;
  if (!result->IsArrayBufferView()) {
    state->generate_failures++;
    return 1;
  }
  Local<ArrayBufferView> view = result.As<ArrayBufferView>();
  size_t length = view->ByteLength();
  if (length > kMaxAppdataBytes) {
    state->generate_failures++;
    return 1;
  }
  std::vector<unsigned char> bytes(length);
  if (length > 0) view->CopyContents(bytes.data(), length);
  if (SSL_SESSION_set1_ticket_appdata(session, bytes.data(), length) != 1) {
    ERR_clear_error();
    state->generate_failures++;
  }
  return 1;
}

SSL_TICKET_RETURN OnDecryptTicket(SSL* ssl, SSL_SESSION* session, const unsigned char* key_name,
                                  size_t key_name_length, SSL_TICKET_STATUS status, void* installed) {
  ContextBinding* binding = BindingFor(ssl, installed);
  if (!Usable(binding)) return DefaultDecision(status);
  PortState* state = binding->state;
  Isolate* isolate = state->isolate;
  HandleScope handle_scope(isolate);
  Context::Scope context_scope(state->context.Get(isolate));
  TryCatch try_catch(isolate);
  if (state->on_decrypt.IsEmpty()) return DefaultDecision(status);
  Local<Value> argv[] = {
      Integer::NewFromUnsigned(isolate, binding->id),
      Integer::New(isolate, status),
      BytesOrUndefined(isolate, key_name_length > 0 ? key_name : nullptr, key_name_length),
      AppdataOf(isolate, session),
      ServerNameOf(isolate, ssl),
      ServerNameExtensionOf(isolate, ssl),
      Integer::New(isolate, SSL_version(ssl)),
      session ? Number::New(isolate, SessionTimeOf(session)).As<Value>()
              : v8::Undefined(isolate).As<Value>(),
      session ? Number::New(isolate, static_cast<double>(SSL_SESSION_get_timeout(session))).As<Value>()
              : v8::Undefined(isolate).As<Value>(),
      FingerprintOf(isolate, session ? SSL_SESSION_get0_peer(session) : nullptr),
  };
  Local<Value> result;
  if (!CallHandler(state, state->on_decrypt, 10, argv).ToLocal(&result) || !result->IsInt32()) {
    state->decrypt_failures++;
    return SSL_TICKET_RETURN_ABORT;
  }
  int decision = result.As<Integer>()->Value();
  if (decision < SSL_TICKET_RETURN_ABORT || decision > SSL_TICKET_RETURN_USE_RENEW) {
    state->decrypt_failures++;
    return SSL_TICKET_RETURN_ABORT;
  }
  return decision;
}

bool ReadBytes(Local<Value> value, std::vector<unsigned char>* out) {
  if (!value->IsArrayBufferView()) return false;
  Local<ArrayBufferView> view = value.As<ArrayBufferView>();
  size_t length = view->ByteLength();
  if (length == 0 || length > kMaxCredentialBytes) return false;
  out->resize(length);
  view->CopyContents(out->data(), length);
  return true;
}

X509* ParseCertificate(Local<Value> value) {
  std::vector<unsigned char> der;
  if (!ReadBytes(value, &der)) return nullptr;
  const unsigned char* cursor = der.data();
  X509* certificate = d2i_X509(nullptr, &cursor, static_cast<long>(der.size()));
  // Trailing bytes mean the caller handed something other than one certificate.
  if (certificate != nullptr && cursor != der.data() + der.size()) {
    X509_free(certificate);
    return nullptr;
  }
  return certificate;
}

EVP_PKEY* ParsePrivateKey(Local<Value> value) {
  std::vector<unsigned char> pem;
  if (!ReadBytes(value, &pem)) return nullptr;
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  if (bio == nullptr) return nullptr;
  EVP_PKEY* key = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  return key;
}

// Puts the chosen leaf, key and chain on this one connection. On success the
// leaf and key are handed to OpenSSL (which frees them after use).
bool UseClientCredentials(Isolate* isolate, Local<Context> context, SSL* ssl, Local<Object> chosen, X509** x509,
                          EVP_PKEY** pkey) {
  Local<Value> cert_value;
  Local<Value> key_value;
  Local<Value> chain_value;
  if (!chosen->Get(context, String::NewFromUtf8Literal(isolate, "cert")).ToLocal(&cert_value) ||
      !chosen->Get(context, String::NewFromUtf8Literal(isolate, "key")).ToLocal(&key_value) ||
      !chosen->Get(context, String::NewFromUtf8Literal(isolate, "chain")).ToLocal(&chain_value)) {
    return false;
  }
  X509* leaf = ParseCertificate(cert_value);
  EVP_PKEY* key = ParsePrivateKey(key_value);
  bool ok = leaf != nullptr && key != nullptr && SSL_use_certificate(ssl, leaf) == 1 &&
            SSL_use_PrivateKey(ssl, key) == 1 && SSL_check_private_key(ssl) == 1;
  if (ok && chain_value->IsArray()) {
    Local<Array> chain = chain_value.As<Array>();
    if (chain->Length() > kMaxChainLength) ok = false;
    for (uint32_t i = 0; ok && i < chain->Length(); i++) {
      Local<Value> entry;
      X509* intermediate = chain->Get(context, i).ToLocal(&entry) ? ParseCertificate(entry) : nullptr;
      // SSL_add1_chain_cert takes its own reference.
      ok = intermediate != nullptr && SSL_add1_chain_cert(ssl, intermediate) == 1;
      X509_free(intermediate);
    }
  }
  if (!ok) {
    X509_free(leaf);
    EVP_PKEY_free(key);
    ERR_clear_error();
    return false;
  }
  *x509 = leaf;
  *pkey = key;
  return true;
}

int OnClientCertificate(SSL* ssl, X509** x509, EVP_PKEY** pkey) {
  ContextBinding* binding = BindingOf(SSL_get_SSL_CTX(ssl));
  if (!Usable(binding)) return 0;
  PortState* state = binding->state;
  Isolate* isolate = state->isolate;
  HandleScope handle_scope(isolate);
  Local<Context> context = state->context.Get(isolate);
  Context::Scope context_scope(context);
  TryCatch try_catch(isolate);
  if (state->on_client_cert.IsEmpty()) return 0;
  // A client's list is the one the server sent: TLS 1.2's CertificateRequest
  // or TLS 1.3's certificate_authorities extension.
  const STACK_OF(X509_NAME)* names = SSL_get_client_CA_list(ssl);
  int count = names != nullptr ? sk_X509_NAME_num(names) : 0;
  Local<Array> issuers = Array::New(isolate, count > 0 ? count : 0);
  for (int i = 0; i < count; i++) {
    unsigned char* der = nullptr;
    int length = i2d_X509_NAME(sk_X509_NAME_value(names, i), &der);
    if (length > 0) {
      if (issuers->Set(context, static_cast<uint32_t>(i), BytesOrUndefined(isolate, der, length)).IsNothing()) {
        OPENSSL_free(der);
        state->client_cert_failures++;
        return 0;
      }
    }
    OPENSSL_free(der);
  }
  Local<Value> argv[] = {Integer::NewFromUnsigned(isolate, binding->id), issuers};
  Local<Value> result;
  if (!CallHandler(state, state->on_client_cert, 2, argv).ToLocal(&result)) {
    state->client_cert_failures++;
    return 0;
  }
  if (result->IsUndefined() || result->IsNull()) return 0;
  if (!result->IsObject() || !UseClientCredentials(isolate, context, ssl, result.As<Object>(), x509, pkey)) {
    state->client_cert_failures++;
    return 0;
  }
  return 1;
}

PortState* StateOf(const FunctionCallbackInfo<Value>& info) {
  return static_cast<PortState*>(ExternalValue(info.Data().As<External>()));
}

void ThrowTypeError(Isolate* isolate, const char* message) {
  isolate->ThrowException(v8::Exception::TypeError(String::NewFromUtf8(isolate, message).ToLocalChecked()));
}

// SSL_CTX* from `secureContext.context._external`, or null after throwing.
SSL_CTX* ContextArgument(const FunctionCallbackInfo<Value>& info) {
  if (info.Length() < 1 || !info[0]->IsExternal()) {
    ThrowTypeError(info.GetIsolate(), "expected a SecureContext's native _external");
    return nullptr;
  }
  SSL_CTX* ctx = static_cast<SSL_CTX*>(ExternalValue(info[0].As<External>()));
  if (ctx == nullptr) ThrowTypeError(info.GetIsolate(), "the SecureContext holds no SSL_CTX");
  return ctx;
}

// Stores the context's id, or updates the binding already in the slot in
// place: the ticket callback's `arg` may point at it, so it is never freed
// while the context lives (OpenSSL frees it with the context).
ContextBinding* Bind(PortState* state, SSL_CTX* ctx, uint32_t id) {
  int index = BindingIndex();
  if (index < 0) return nullptr;
  ContextBinding* previous = BindingOf(ctx);
  if (previous != nullptr) {
    previous->state = state;
    previous->id = id;
    return previous;
  }
  auto* binding = new ContextBinding{state, id};
  if (SSL_CTX_set_ex_data(ctx, index, binding) != 1) {
    delete binding;
    return nullptr;
  }
  return binding;
}

bool IdArgument(const FunctionCallbackInfo<Value>& info, uint32_t* id) {
  if (info.Length() < 2 || !info[1]->IsUint32()) {
    ThrowTypeError(info.GetIsolate(), "expected a context id (uint32)");
    return false;
  }
  *id = info[1].As<v8::Uint32>()->Value();
  return true;
}

// setHandlers(onGenerate, onDecrypt, onClientCertificate)
void SetHandlers(const FunctionCallbackInfo<Value>& info) {
  PortState* state = StateOf(info);
  Isolate* isolate = info.GetIsolate();
  if (info.Length() < 3 || !info[0]->IsFunction() || !info[1]->IsFunction() || !info[2]->IsFunction()) {
    ThrowTypeError(isolate, "setHandlers(onGenerate, onDecrypt, onClientCertificate) takes three functions");
    return;
  }
  state->on_generate.Reset(isolate, info[0].As<Function>());
  state->on_decrypt.Reset(isolate, info[1].As<Function>());
  state->on_client_cert.Reset(isolate, info[2].As<Function>());
}

// installTicketCallbacks(external, id): true when installed.
void InstallTicketCallbacks(const FunctionCallbackInfo<Value>& info) {
  SSL_CTX* ctx = ContextArgument(info);
  uint32_t id = 0;
  if (ctx == nullptr || !IdArgument(info, &id)) return;
  ContextBinding* binding = Bind(StateOf(info), ctx, id);
  bool ok = binding != nullptr && SSL_CTX_set_session_ticket_cb(ctx, OnGenerateTicket, OnDecryptTicket, binding) == 1;
  info.GetReturnValue().Set(ok);
}

// installClientCertificateCallback(external, id): true when installed.
void InstallClientCertificateCallback(const FunctionCallbackInfo<Value>& info) {
  SSL_CTX* ctx = ContextArgument(info);
  uint32_t id = 0;
  if (ctx == nullptr || !IdArgument(info, &id)) return;
  bool ok = Bind(StateOf(info), ctx, id) != nullptr;
  if (ok) SSL_CTX_set_client_cert_cb(ctx, OnClientCertificate);
  info.GetReturnValue().Set(ok);
}

// contextTimeout(external): SSL_CTX_get_timeout, which lets the loader check
// that `_external` really is this context's SSL_CTX before installing anything.
void ContextTimeout(const FunctionCallbackInfo<Value>& info) {
  SSL_CTX* ctx = ContextArgument(info);
  if (ctx == nullptr) return;
  info.GetReturnValue().Set(Number::New(info.GetIsolate(), static_cast<double>(SSL_CTX_get_timeout(ctx))));
}

// failures(): calls whose JavaScript threw or answered with the wrong kind of value.
void Failures(const FunctionCallbackInfo<Value>& info) {
  PortState* state = StateOf(info);
  Isolate* isolate = info.GetIsolate();
  Local<Context> context = isolate->GetCurrentContext();
  Local<Object> counts = Object::New(isolate);
  bool ok = counts->Set(context, String::NewFromUtf8Literal(isolate, "generate"), Number::New(isolate, state->generate_failures))
                .FromMaybe(false) &&
            counts->Set(context, String::NewFromUtf8Literal(isolate, "decrypt"), Number::New(isolate, state->decrypt_failures))
                .FromMaybe(false) &&
            counts->Set(context, String::NewFromUtf8Literal(isolate, "clientCertificate"),
                        Number::New(isolate, state->client_cert_failures))
                .FromMaybe(false);
  if (ok) info.GetReturnValue().Set(counts);
}

void Cleanup(void* arg) {
  auto* state = static_cast<PortState*>(arg);
  state->alive = false;
  state->on_generate.Reset();
  state->on_decrypt.Reset();
  state->on_client_cert.Reset();
  state->context.Reset();
}

void Export(Local<Context> context, Local<Object> exports, PortState* state, const char* name,
            v8::FunctionCallback callback) {
  Isolate* isolate = state->isolate;
  Local<FunctionTemplate> tmpl = FunctionTemplate::New(isolate, callback, NewExternal(isolate, state));
  Local<Function> fn;
  if (tmpl->GetFunction(context).ToLocal(&fn)) {
    exports->Set(context, String::NewFromUtf8(isolate, name).ToLocalChecked(), fn).Check();
  }
}

}  // namespace

// ticket_aead.cc: the codec's XChaCha20-Poly1305 in one call.
void RegisterTicketAead(v8::Local<v8::Context> context, v8::Local<v8::Object> exports);

NODE_MODULE_INIT(/* exports, module, context */) {
  Isolate* isolate = Isolate::GetCurrent();
  // Never freed: see the header (a late callback must find alive == false).
  auto* state = new PortState();
  state->isolate = isolate;
  state->context.Reset(isolate, context);
  node::AddEnvironmentCleanupHook(isolate, Cleanup, state);
  Export(context, exports, state, "setHandlers", SetHandlers);
  Export(context, exports, state, "installTicketCallbacks", InstallTicketCallbacks);
  Export(context, exports, state, "installClientCertificateCallback", InstallClientCertificateCallback);
  Export(context, exports, state, "contextTimeout", ContextTimeout);
  Export(context, exports, state, "failures", Failures);
  RegisterTicketAead(context, exports);
  exports
      ->Set(context, String::NewFromUtf8Literal(isolate, "openssl"),
            String::NewFromUtf8(isolate, OpenSSL_version(OPENSSL_VERSION)).ToLocalChecked())
      .Check();
}
