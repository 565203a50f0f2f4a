// tabby's native addon: the few syscalls Node does not expose.
//  - withNetns(path, fn): setns(2) into a network namespace on the calling thread, run fn
//    synchronously, always switch back (Go's netns.Do). Sockets opened inside fn stay in that netns.
//  - setsockoptInt / setsockoptBuffer / getsockoptInt: raw setsockopt on a socket fd
//    (TCP_MD5SIG for RFC 2385, IP_TTL/IP_MINTTL for GTSM RFC 5082).
//  - socketTcp / connectNonBlocking: create a TCP socket whose options can be set *before* connect
//    (TCP-MD5 must be in place before the SYN), then hand the fd to net.Socket({fd}).
//  - gettid / closeFd.
//  - nftOpen / nftRun: libnftables in the process (nft.cc).
//  - nlOpen / nlExchange / nlClose: rtnetlink exchanges on threads of their own (nl_worker.cc).
//  - heapPacer / heapPacerStats: when V8's major GC starts (heap_pacer.cc).
#include <napi.h>
#include "errno_error.h"
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <string.h>
#include <unistd.h>
#include <malloc.h>
#include <sys/socket.h>
#include <linux/filter.h>
#include <sys/syscall.h>
#include <sys/file.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <string>


static Napi::Value WithNetns(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsFunction()) {
    Napi::TypeError::New(env, "withNetns(path: string, fn: () => T)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  std::string path = info[0].As<Napi::String>();
  int target = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (target < 0) { errnoError(env, "open", errno, path).ThrowAsJavaScriptException(); return env.Undefined(); }
  std::string self = "/proc/self/task/" + std::to_string((long)syscall(SYS_gettid)) + "/ns/net";
  int original = open(self.c_str(), O_RDONLY | O_CLOEXEC);
  if (original < 0) { int e = errno; close(target); errnoError(env, "open", e, self).ThrowAsJavaScriptException(); return env.Undefined(); }
  if (setns(target, CLONE_NEWNET) != 0) {
    int e = errno; close(target); close(original);
    errnoError(env, "setns", e, path).ThrowAsJavaScriptException(); return env.Undefined();
  }
  close(target);
  Napi::Value result = info[1].As<Napi::Function>().Call({});
  // Always return to the original namespace, even when fn threw: a thread left in a pod's
  // namespace would silently program the wrong kernel afterwards.
  if (setns(original, CLONE_NEWNET) != 0) {
    int e = errno; close(original);
    fprintf(stderr, "tabby_native: FATAL cannot return to original netns: %s\n", strerror(e));
    abort();
  }
  close(original);
  if (env.IsExceptionPending()) return env.Undefined();
  return result;
}

static Napi::Value SetsockoptInt(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  int level = info[1].As<Napi::Number>().Int32Value();
  int opt = info[2].As<Napi::Number>().Int32Value();
  int value = info[3].As<Napi::Number>().Int32Value();
  if (setsockopt(fd, level, opt, &value, sizeof value) != 0) {
    errnoError(env, "setsockopt", errno).ThrowAsJavaScriptException();
  }
  return env.Undefined();
}

static Napi::Value GetsockoptInt(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  int level = info[1].As<Napi::Number>().Int32Value();
  int opt = info[2].As<Napi::Number>().Int32Value();
  int value = 0; socklen_t len = sizeof value;
  if (getsockopt(fd, level, opt, &value, &len) != 0) {
    errnoError(env, "getsockopt", errno).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return Napi::Number::New(env, value);
}

static Napi::Value SetsockoptBuffer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  int level = info[1].As<Napi::Number>().Int32Value();
  int opt = info[2].As<Napi::Number>().Int32Value();
  Napi::Buffer<uint8_t> buf = info[3].As<Napi::Buffer<uint8_t>>();
  if (setsockopt(fd, level, opt, buf.Data(), buf.Length()) != 0) {
    errnoError(env, "setsockopt", errno).ThrowAsJavaScriptException();
  }
  return env.Undefined();
}

// socketTcp(family: 4|6) -> fd (non-blocking, close-on-exec)
static Napi::Value SocketTcp(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int family = info[0].As<Napi::Number>().Int32Value() == 6 ? AF_INET6 : AF_INET;
  int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) { errnoError(env, "socket", errno).ThrowAsJavaScriptException(); return env.Undefined(); }
  return Napi::Number::New(env, fd);
}

// A non-blocking, close-on-exec UDP socket (BFD: options and a filter go on before Node wraps it).
static Napi::Value SocketUdp(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int family = info[0].As<Napi::Number>().Int32Value() == 6 ? AF_INET6 : AF_INET;
  int fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) { errnoError(env, "socket", errno).ThrowAsJavaScriptException(); return env.Undefined(); }
  return Napi::Number::New(env, fd);
}

// RFC 5881 §5 / RFC 5082: accept only datagrams whose IP TTL (IPv6 hop limit) is exactly `ttl`.
// A classic BPF socket filter reading the network header (SKF_NET_OFF): the kernel drops the rest,
// so nothing with a lower TTL ever reaches the process (IP_MINTTL does not apply to UDP).
static Napi::Value AttachTtlFilter(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  bool v6 = info[1].As<Napi::Number>().Int32Value() == 6;
  unsigned ttl = info[2].As<Napi::Number>().Uint32Value();
  struct sock_filter code[] = {
    BPF_STMT(BPF_LD | BPF_B | BPF_ABS, (__u32)(SKF_NET_OFF + (v6 ? 7 : 8))),  // IPv4 TTL / IPv6 hop limit
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ttl, 0, 1),
    BPF_STMT(BPF_RET | BPF_K, 0xFFFFFFFF),  // accept
    BPF_STMT(BPF_RET | BPF_K, 0),           // drop
  };
  struct sock_fprog prog = { (unsigned short)(sizeof(code) / sizeof(code[0])), code };
  if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog)) != 0) {
    errnoError(env, "setsockopt", errno, "SO_ATTACH_FILTER").ThrowAsJavaScriptException();
  }
  return env.Undefined();
}

static bool fillSockaddr(const std::string& ip, int port, sockaddr_storage* ss, socklen_t* len) {
  memset(ss, 0, sizeof *ss);
  auto* v4 = reinterpret_cast<sockaddr_in*>(ss);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(ss);
  if (inet_pton(AF_INET, ip.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET; v4->sin_port = htons(port); *len = sizeof *v4; return true;
  }
  if (inet_pton(AF_INET6, ip.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6; v6->sin6_port = htons(port); *len = sizeof *v6; return true;
  }
  return false;
}

// bindFd(fd, ip, port)
static Napi::Value BindFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  std::string ip = info[1].As<Napi::String>();
  int port = info[2].As<Napi::Number>().Int32Value();
  sockaddr_storage ss; socklen_t len;
  if (!fillSockaddr(ip, port, &ss, &len)) { Napi::TypeError::New(env, "bad address " + ip).ThrowAsJavaScriptException(); return env.Undefined(); }
  int one = 1; setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) errnoError(env, "bind", errno, ip).ThrowAsJavaScriptException();
  return env.Undefined();
}

// connectNonBlocking(fd, ip, port) -> true when connected at once, false when in progress
static Napi::Value ConnectNonBlocking(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  std::string ip = info[1].As<Napi::String>();
  int port = info[2].As<Napi::Number>().Int32Value();
  sockaddr_storage ss; socklen_t len;
  if (!fillSockaddr(ip, port, &ss, &len)) { Napi::TypeError::New(env, "bad address " + ip).ThrowAsJavaScriptException(); return env.Undefined(); }
  if (connect(fd, reinterpret_cast<sockaddr*>(&ss), len) == 0) return Napi::Boolean::New(env, true);
  if (errno == EINPROGRESS) return Napi::Boolean::New(env, false);
  errnoError(env, "connect", errno, ip).ThrowAsJavaScriptException();
  return env.Undefined();
}

// socketError(fd) -> pending SO_ERROR (0 when the non-blocking connect succeeded)
static Napi::Value SocketError(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  int err = 0; socklen_t len = sizeof err;
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
  return Napi::Number::New(env, err);
}

static Napi::Value CloseFd(const Napi::CallbackInfo& info) {
  close(info[0].As<Napi::Number>().Int32Value());
  return info.Env().Undefined();
}

static Napi::Value Gettid(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), (double)syscall(SYS_gettid));
}

// flock(fd, op) -> true when the lock was taken/changed, false when it is held elsewhere (EWOULDBLOCK).
// op: "sh" | "ex" | "un"; always non-blocking (LOCK_NB) so the event loop never waits in the kernel.
// The kernel drops the lock when the holder dies (unlike lock files) — used by the file datastore.
static Napi::Value Flock(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsString()) {
    Napi::TypeError::New(env, "flock(fd: number, op: 'sh'|'ex'|'un')").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  int fd = info[0].As<Napi::Number>().Int32Value();
  std::string op = info[1].As<Napi::String>();
  int how = op == "ex" ? LOCK_EX : op == "sh" ? LOCK_SH : op == "un" ? LOCK_UN : -1;
  if (how < 0) { Napi::TypeError::New(env, "flock: op must be sh, ex or un").ThrowAsJavaScriptException(); return env.Undefined(); }
  int rc;
  do { rc = flock(fd, how | LOCK_NB); } while (rc != 0 && errno == EINTR);
  if (rc == 0) return Napi::Boolean::New(env, true);
  if (errno == EWOULDBLOCK) return Napi::Boolean::New(env, false);
  errnoError(env, "flock", errno).ThrowAsJavaScriptException();
  return env.Undefined();
}

// udpSourceFor(ip, port) -> the local address the kernel picks toward ip (UDP connect + getsockname;
// a UDP connect sends no packet). Synchronous, so it can run inside withNetns (autodetection can-reach).
static Napi::Value UdpSourceFor(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsNumber()) {
    Napi::TypeError::New(env, "udpSourceFor(ip: string, port: number)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  std::string ip = info[0].As<Napi::String>();
  int port = info[1].As<Napi::Number>().Int32Value();
  sockaddr_storage ss; socklen_t len;
  if (!fillSockaddr(ip, port, &ss, &len)) { Napi::TypeError::New(env, "bad address " + ip).ThrowAsJavaScriptException(); return env.Undefined(); }
  int fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) { errnoError(env, "socket", errno).ThrowAsJavaScriptException(); return env.Undefined(); }
  if (connect(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    int e = errno; close(fd); errnoError(env, "connect", e, ip).ThrowAsJavaScriptException(); return env.Undefined();
  }
  sockaddr_storage local; socklen_t llen = sizeof local;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&local), &llen) != 0) {
    int e = errno; close(fd); errnoError(env, "getsockname", e).ThrowAsJavaScriptException(); return env.Undefined();
  }
  close(fd);
  char buf[INET6_ADDRSTRLEN] = {0};
  const void* src = local.ss_family == AF_INET6 ? (const void*)&reinterpret_cast<sockaddr_in6*>(&local)->sin6_addr
                                                : (const void*)&reinterpret_cast<sockaddr_in*>(&local)->sin_addr;
  inet_ntop(local.ss_family, src, buf, sizeof buf);
  return Napi::String::New(env, buf);
}

// ---- dataplane additions: named network namespaces (like `ip netns add/del`), permanent setns,
// ---- and finding the fd of a netlink socket by its port id (to set SO_RCVBUFFORCE/NETLINK_EXT_ACK).
#include <sys/mount.h>
#include <sys/stat.h>
#include <dirent.h>
#include <linux/netlink.h>

static const char* kNetnsRunDir = "/var/run/netns";

// Make /var/run/netns a shared mount point (as iproute2 does) so bind mounts propagate.
static int prepareNetnsDir(std::string* failedOp) {
  if (mkdir(kNetnsRunDir, 0755) != 0 && errno != EEXIST) { *failedOp = "mkdir"; return errno; }
  if (mount("", kNetnsRunDir, "none", MS_SHARED | MS_REC, nullptr) == 0) return 0;
  if (errno != EINVAL) { *failedOp = "mount --make-shared"; return errno; }
  if (mount(kNetnsRunDir, kNetnsRunDir, "none", MS_BIND | MS_REC, nullptr) != 0) { *failedOp = "mount --bind"; return errno; }
  if (mount("", kNetnsRunDir, "none", MS_SHARED | MS_REC, nullptr) != 0) { *failedOp = "mount --make-shared"; return errno; }
  return 0;
}

// createNetns(name) -> path: a new network namespace bind-mounted at /var/run/netns/<name>.
// The calling thread unshares into the new netns, bind-mounts it, and returns to where it was.
static Napi::Value CreateNetns(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) { Napi::TypeError::New(env, "createNetns(name: string)").ThrowAsJavaScriptException(); return env.Undefined(); }
  std::string name = info[0].As<Napi::String>();
  if (name.empty() || name.find('/') != std::string::npos || name == "." || name == "..") {
    Napi::TypeError::New(env, "createNetns: invalid name \"" + name + "\"").ThrowAsJavaScriptException(); return env.Undefined();
  }
  std::string failedOp;
  int err = prepareNetnsDir(&failedOp);
  if (err) { errnoError(env, failedOp.c_str(), err, kNetnsRunDir).ThrowAsJavaScriptException(); return env.Undefined(); }
  std::string path = std::string(kNetnsRunDir) + "/" + name;
  int fd = open(path.c_str(), O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0);
  if (fd < 0) { errnoError(env, "open", errno, path).ThrowAsJavaScriptException(); return env.Undefined(); }
  close(fd);
  std::string self = "/proc/self/task/" + std::to_string((long)syscall(SYS_gettid)) + "/ns/net";
  int original = open(self.c_str(), O_RDONLY | O_CLOEXEC);
  if (original < 0) { int e = errno; unlink(path.c_str()); errnoError(env, "open", e, self).ThrowAsJavaScriptException(); return env.Undefined(); }
  if (unshare(CLONE_NEWNET) != 0) {
    int e = errno; close(original); unlink(path.c_str());
    errnoError(env, "unshare", e, "CLONE_NEWNET").ThrowAsJavaScriptException(); return env.Undefined();
  }
  int mountErr = mount(self.c_str(), path.c_str(), "none", MS_BIND, nullptr) == 0 ? 0 : errno;
  if (setns(original, CLONE_NEWNET) != 0) {
    fprintf(stderr, "tabby_native: FATAL cannot return to original netns: %s\n", strerror(errno));
    abort();
  }
  close(original);
  if (mountErr) { unlink(path.c_str()); errnoError(env, "mount --bind", mountErr, path).ThrowAsJavaScriptException(); return env.Undefined(); }
  return Napi::String::New(env, path);
}

// deleteNetns(name) -> boolean (false when it did not exist): unmount and remove /var/run/netns/<name>.
static Napi::Value DeleteNetns(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) { Napi::TypeError::New(env, "deleteNetns(name: string)").ThrowAsJavaScriptException(); return env.Undefined(); }
  std::string name = info[0].As<Napi::String>();
  if (name.empty() || name.find('/') != std::string::npos) { Napi::TypeError::New(env, "deleteNetns: invalid name").ThrowAsJavaScriptException(); return env.Undefined(); }
  std::string path = std::string(kNetnsRunDir) + "/" + name;
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return Napi::Boolean::New(env, false);
  umount2(path.c_str(), MNT_DETACH);  // EINVAL: not mounted (half-created) — remove the file anyway
  if (unlink(path.c_str()) != 0 && errno != ENOENT) { errnoError(env, "unlink", errno, path).ThrowAsJavaScriptException(); return env.Undefined(); }
  return Napi::Boolean::New(env, true);
}

// enterNetns(path): setns the calling thread into the netns for good (a process that lives in one netns).
static Napi::Value EnterNetns(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) { Napi::TypeError::New(env, "enterNetns(path: string)").ThrowAsJavaScriptException(); return env.Undefined(); }
  std::string path = info[0].As<Napi::String>();
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) { errnoError(env, "open", errno, path).ThrowAsJavaScriptException(); return env.Undefined(); }
  if (setns(fd, CLONE_NEWNET) != 0) { int e = errno; close(fd); errnoError(env, "setns", e, path).ThrowAsJavaScriptException(); return env.Undefined(); }
  close(fd);
  return env.Undefined();
}

// netlinkFd(portId) -> fd of this process's AF_NETLINK socket bound to that port id, or -1.
static Napi::Value NetlinkFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t port = info[0].As<Napi::Number>().Uint32Value();
  DIR* d = opendir("/proc/self/fd");
  if (!d) { errnoError(env, "opendir", errno, "/proc/self/fd").ThrowAsJavaScriptException(); return env.Undefined(); }
  int found = -1;
  int dfd = dirfd(d);
  while (struct dirent* e = readdir(d)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    int fd = atoi(e->d_name);
    if (fd == dfd) continue;
    struct sockaddr_nl addr; socklen_t len = sizeof addr;
    memset(&addr, 0, sizeof addr);
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) continue;
    if (addr.nl_family == AF_NETLINK && addr.nl_pid == port) { found = fd; break; }
  }
  closedir(d);
  return Napi::Number::New(env, found);
}

// flockWait(fd, op, cb): a blocking flock(2) on a libuv worker thread; cb(null) once the lock is held
// (or changed), cb(error) on failure. The kernel queues the waiters, so a busy lock is handed on
// without the sleep-and-retry unfairness of polling with LOCK_NB. One pending call per fd at a time.
class FlockWorker : public Napi::AsyncWorker {
 public:
  FlockWorker(Napi::Function& cb, int fd, int how) : Napi::AsyncWorker(cb), fd_(fd), how_(how) {}
  void Execute() override {
    int rc;
    do { rc = flock(fd_, how_); } while (rc != 0 && errno == EINTR);
    err_ = rc == 0 ? 0 : errno;
  }
  void OnOK() override {
    Napi::Env env = Env();
    Napi::Value arg = err_ ? errnoError(env, "flock", err_).Value() : env.Null();
    Callback().Call({arg});
  }
 private:
  int fd_, how_, err_ = 0;
};

static Napi::Value FlockWait(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsNumber() || !info[1].IsString() || !info[2].IsFunction()) {
    Napi::TypeError::New(env, "flockWait(fd: number, op: 'sh'|'ex', cb: (err) => void)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  int fd = info[0].As<Napi::Number>().Int32Value();
  std::string op = info[1].As<Napi::String>();
  int how = op == "ex" ? LOCK_EX : op == "sh" ? LOCK_SH : -1;
  if (how < 0) { Napi::TypeError::New(env, "flockWait: op must be sh or ex").ThrowAsJavaScriptException(); return env.Undefined(); }
  Napi::Function cb = info[2].As<Napi::Function>();
  (new FlockWorker(cb, fd, how))->Queue();
  return env.Undefined();
}

// malloc_trim(0): hand the free pages of every malloc arena back to the kernel. glibc returns only the
// top of the main heap by itself, so the buffers of start-up or of a bulk route change stay resident
// as free-list holes; the agent calls this when it goes quiet. true: memory was released.
static Napi::Value MallocTrim(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), malloc_trim(0) != 0);
}

// mallocTune(mmapThreshold, trimThreshold[, arenaMax]): fixed malloc thresholds (bytes), at most arenaMax arenas. Left to itself glibc raises
// its mmap threshold to the size of every mmapped block freed (up to 32 MB), so after the first large
// buffer is freed, buffers of up to that size come from the heap and leave holes there; fixed, large
// buffers are mmapped and unmapped when freed. true when both were set.
static Napi::Value MallocTune(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsNumber()) {
    Napi::TypeError::New(env, "mallocTune(mmapThreshold, trimThreshold)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  int a = mallopt(M_MMAP_THRESHOLD, info[0].As<Napi::Number>().Int32Value());
  int b = mallopt(M_TRIM_THRESHOLD, info[1].As<Napi::Number>().Int32Value());
  // optional arenaMax: at most this many malloc arenas (glibc: 8 per core, one per thread that allocates
  // while another holds the lock) — only threads that have not allocated yet are held to it
  int c = 1;
  if (info.Length() >= 3 && info[2].IsNumber() && info[2].As<Napi::Number>().Int32Value() > 0)
    c = mallopt(M_ARENA_MAX, info[2].As<Napi::Number>().Int32Value());
  return Napi::Boolean::New(env, a == 1 && b == 1 && c == 1);
}

void InitNft(Napi::Env env, Napi::Object exports);
void InitNlWorker(Napi::Env env, Napi::Object exports);
void InitHeapPacer(Napi::Env env, Napi::Object exports);

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  InitNft(env, exports);
  InitNlWorker(env, exports);
  InitHeapPacer(env, exports);
  exports.Set("withNetns", Napi::Function::New(env, WithNetns));
  exports.Set("mallocTrim", Napi::Function::New(env, MallocTrim));
  exports.Set("mallocTune", Napi::Function::New(env, MallocTune));
  exports.Set("setsockoptInt", Napi::Function::New(env, SetsockoptInt));
  exports.Set("getsockoptInt", Napi::Function::New(env, GetsockoptInt));
  exports.Set("setsockoptBuffer", Napi::Function::New(env, SetsockoptBuffer));
  exports.Set("socketTcp", Napi::Function::New(env, SocketTcp));
  exports.Set("socketUdp", Napi::Function::New(env, SocketUdp));
  exports.Set("attachTtlFilter", Napi::Function::New(env, AttachTtlFilter));
  exports.Set("bindFd", Napi::Function::New(env, BindFd));
  exports.Set("connectNonBlocking", Napi::Function::New(env, ConnectNonBlocking));
  exports.Set("socketError", Napi::Function::New(env, SocketError));
  exports.Set("closeFd", Napi::Function::New(env, CloseFd));
  exports.Set("gettid", Napi::Function::New(env, Gettid));
  exports.Set("flock", Napi::Function::New(env, Flock));
  exports.Set("flockWait", Napi::Function::New(env, FlockWait));
  exports.Set("udpSourceFor", Napi::Function::New(env, UdpSourceFor));
  exports.Set("createNetns", Napi::Function::New(env, CreateNetns));
  exports.Set("deleteNetns", Napi::Function::New(env, DeleteNetns));
  exports.Set("enterNetns", Napi::Function::New(env, EnterNetns));
  exports.Set("netlinkFd", Napi::Function::New(env, NetlinkFd));
  return exports;
}

NODE_API_MODULE(tabby_native, Init)
