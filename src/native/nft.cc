// libnftables in the process: what `nft -f -` does, without a process per transaction.
//  - nftOpen(netnsPath?): a libnftables context whose netlink socket lives in that netns (default: the
//    calling thread's). null when libnftables.so.1 cannot be loaded (the caller spawns nft instead).
//  - nftRun(handle, script, cb): one nft_run_cmd_from_buffer on a libuv worker thread — the same parser
//    and the same single batch as `nft -f -` (all or nothing) — then cb(err | null, errorText).
// The context keeps nft's cache of the table between transactions (nft re-reads it when the kernel's
// ruleset generation moved), which is what a fresh `nft` process spends most of its time rebuilding.
// libnftables is loaded with dlopen, so neither its headers nor a link-time dependency are needed.
#include <napi.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <mutex>
#include <string>

namespace {

struct Lib {
  void* (*ctxNew)(uint32_t);
  void (*ctxFree)(void*);
  int (*run)(void*, const char*);
  int (*bufferOutput)(void*);
  int (*bufferError)(void*);
  const char* (*getOutput)(void*);
  const char* (*getError)(void*);
};

// One lock for every libnftables call: its contexts are not documented as thread-safe, and the
// transactions of one process are serialised by the kernel's commit mutex anyway.
std::mutex mu;
std::string loadError;

const Lib* lib() {
  static Lib l;
  static bool tried = false, ok = false;
  if (tried) return ok ? &l : nullptr;
  tried = true;
  void* h = dlopen("libnftables.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    loadError = dlerror();
    return nullptr;
  }
  l.ctxNew = (void* (*)(uint32_t))dlsym(h, "nft_ctx_new");
  l.ctxFree = (void (*)(void*))dlsym(h, "nft_ctx_free");
  l.run = (int (*)(void*, const char*))dlsym(h, "nft_run_cmd_from_buffer");
  l.bufferOutput = (int (*)(void*))dlsym(h, "nft_ctx_buffer_output");
  l.bufferError = (int (*)(void*))dlsym(h, "nft_ctx_buffer_error");
  l.getOutput = (const char* (*)(void*))dlsym(h, "nft_ctx_get_output_buffer");
  l.getError = (const char* (*)(void*))dlsym(h, "nft_ctx_get_error_buffer");
  ok = l.ctxNew && l.ctxFree && l.run && l.bufferOutput && l.bufferError && l.getOutput && l.getError;
  if (!ok) loadError = "libnftables.so.1 lacks a symbol it should have";
  return ok ? &l : nullptr;
}

struct Handle {
  void* ctx;
  int nsFd;  // the netns the context belongs to; every call runs there
};

// Run fn with the calling thread in the netns `fd`, always switching back (a worker thread left in
// another netns would resolve names or open sockets in the wrong kernel afterwards).
template <typename F>
int inNetns(int fd, F fn) {
  int original = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (original < 0) return errno;
  if (setns(fd, CLONE_NEWNET) != 0) {
    int e = errno;
    close(original);
    return e;
  }
  fn();
  if (setns(original, CLONE_NEWNET) != 0) {
    fprintf(stderr, "tabby_native: FATAL cannot return to original netns: %s\n", strerror(errno));
    abort();
  }
  close(original);
  return 0;
}

Napi::Value NftOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Lib* l = lib();
  if (!l) return env.Null();
  std::string path = info.Length() > 0 && info[0].IsString() ? info[0].As<Napi::String>().Utf8Value() : "/proc/thread-self/ns/net";
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    Napi::Error::New(env, "nftOpen: open " + path + ": " + strerror(errno)).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  void* ctx = nullptr;
  int err;
  {
    std::lock_guard<std::mutex> g(mu);
    err = inNetns(fd, [&] { ctx = l->ctxNew(0); });  // NFT_CTX_DEFAULT: opens its netlink socket here
    if (ctx) {
      l->bufferOutput(ctx);
      l->bufferError(ctx);
    }
  }
  if (err || !ctx) {
    if (ctx) l->ctxFree(ctx);
    close(fd);
    Napi::Error::New(env, std::string("nftOpen: ") + (err ? strerror(err) : "nft_ctx_new failed")).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Handle* h = new Handle{ctx, fd};
  return Napi::External<Handle>::New(env, h, [](Napi::Env, Handle* h) {
    std::lock_guard<std::mutex> g(mu);
    lib()->ctxFree(h->ctx);
    close(h->nsFd);
    delete h;
  });
}

class RunWorker : public Napi::AsyncWorker {
 public:
  RunWorker(Napi::Function& cb, Napi::External<Handle> h, std::string script)
      : Napi::AsyncWorker(cb), h_(h.Data()), ref_(Napi::Persistent(h)), script_(std::move(script)) {}
  void Execute() override {
    std::lock_guard<std::mutex> g(mu);
    const Lib* l = lib();
    sysErr_ = inNetns(h_->nsFd, [&] {
      rc_ = l->run(h_->ctx, script_.c_str());
      const char* e = l->getError(h_->ctx);
      text_ = e ? e : "";
      l->getOutput(h_->ctx);  // drained: the buffer is per call
    });
  }
  void OnOK() override {
    Napi::Env env = Env();
    if (sysErr_) {
      Callback().Call({Napi::Error::New(env, std::string("nftRun: setns: ") + strerror(sysErr_)).Value(), Napi::String::New(env, "")});
      return;
    }
    Callback().Call({rc_ == 0 ? env.Null() : Napi::Error::New(env, "nft transaction failed").Value(), Napi::String::New(env, text_)});
  }

 private:
  Handle* h_;
  Napi::Reference<Napi::External<Handle>> ref_;  // keeps the context alive while the call runs
  std::string script_;
  std::string text_;
  int rc_ = -1;
  int sysErr_ = 0;
};

Napi::Value NftRun(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsExternal() || !info[1].IsString() || !info[2].IsFunction()) {
    Napi::TypeError::New(env, "nftRun(handle, script: string, cb: (err, errorText) => void)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Function cb = info[2].As<Napi::Function>();
  (new RunWorker(cb, info[0].As<Napi::External<Handle>>(), info[1].As<Napi::String>().Utf8Value()))->Queue();
  return env.Undefined();
}

Napi::Value NftLoadError(const Napi::CallbackInfo& info) {
  lib();
  return Napi::String::New(info.Env(), loadError);
}

}  // namespace

void InitNft(Napi::Env env, Napi::Object exports) {
  exports.Set("nftOpen", Napi::Function::New(env, NftOpen));
  exports.Set("nftRun", Napi::Function::New(env, NftRun));
  exports.Set("nftLoadError", Napi::Function::New(env, NftLoadError));
}
