// rtnetlink exchanges off the JS thread. The kernel runs an rtnetlink request inside the sender's
// sendmsg (most of them holding RTNL, and a veth creation or a link group deletion takes milliseconds,
// longer when another process holds RTNL), so a request sent from the event loop stops every other
// piece of JS meanwhile. Here the sockets belong to a small pool of threads of their own:
//  - nlOpen(netnsPath?) -> {fd, port}: a NETLINK_ROUTE socket created inside that netns (setns around
//    socket(), as withNetns; default: the calling thread's), blocking, EXT_ACK and CAP_ACK on.
//  - nlExchange(fd, buf, lastSeq, timeoutMs, cb): queued; a thread sends buf in one sendmsg (one or many
//    requests), then reads until the message that ends sequence lastSeq (NLMSG_ERROR or NLMSG_DONE)
//    arrived. cb(null, replies, false) for each batch of datagrams read (a long dump is not held whole),
//    then cb(null, replies, true); cb(err, null, true) when sendmsg/recvmsg failed or nothing arrived
//    for timeoutMs (ETIMEDOUT). Replies are whole datagrams back to back (each a whole number of messages).
//  - nlClose(fd): queued too, so it runs after the fd's exchanges.
// The exchanges of one fd run one at a time and in order; those of different fds run in parallel.
// Callbacks run on the JS thread through node's callback scope (promises settle right after).
#include <napi.h>
#include "errno_error.h"
#include <uv.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <linux/netlink.h>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace {

constexpr int kThreads = 2;
// A chunk of replies goes to JS once it holds this much (a dump of a big table streams).
constexpr size_t kChunkBytes = 1 << 20;
constexpr size_t kRecvBytes = 256 << 10;

struct Job {
  int fd;
  bool close = false;
  std::vector<uint8_t> req;
  uint32_t lastSeq = 0;
  int timeoutMs = 30000;
  Napi::FunctionReference cb;  // touched on the JS thread only
};

struct Done {
  explicit Done(Job* j) : job(j) {}
  Job* job;
  int err = 0;
  const char* op = "";
  std::vector<uint8_t> replies;
  bool last = true;
};

// Never destroyed: the threads may still wait on these while the process exits.
struct State {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<Job*> queue;
  std::set<int> busy;  // fds with an exchange on a thread now
  std::mutex doneMu;
  std::deque<Done*> done;
  uv_async_t async;
  napi_env env = nullptr;
  napi_async_context ctx = nullptr;
  napi_ref resource = nullptr;
  int pending = 0;  // exchanges not yet finished (JS thread): the loop stays alive while > 0
};
State* st = nullptr;

void post(Done* d) {
  {
    std::lock_guard<std::mutex> l(st->doneMu);
    st->done.push_back(d);
  }
  uv_async_send(&st->async);
}

// Send, then read until the reply that ends lastSeq; posts chunks and the final result.
void exchange(Job* j) {
  int rc;
  do {
    rc = (int)send(j->fd, j->req.data(), j->req.size(), 0);
  } while (rc < 0 && errno == EINTR);
  if (rc < 0) {
    Done* d = new Done(j);
    d->err = errno;
    d->op = "sendmsg";
    post(d);
    return;
  }
  static thread_local std::vector<uint8_t> buf(kRecvBytes);
  Done* d = new Done(j);
  uint64_t deadline = uv_hrtime() / 1000000 + (uint64_t)j->timeoutMs;
  for (;;) {
    int64_t left = (int64_t)(deadline - uv_hrtime() / 1000000);
    pollfd p = {j->fd, POLLIN, 0};
    int n = left > 0 ? poll(&p, 1, (int)left) : 0;
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      d->err = n == 0 ? ETIMEDOUT : errno;
      d->op = "recvmsg";
      break;
    }
    ssize_t got = recv(j->fd, buf.data(), buf.size(), MSG_TRUNC | MSG_DONTWAIT);
    if (got < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      d->err = errno;
      d->op = "recvmsg";
      break;
    }
    deadline = uv_hrtime() / 1000000 + (uint64_t)j->timeoutMs;  // a long dump is not cut off half way
    if ((size_t)got > buf.size()) {
      d->err = EMSGSIZE;
      d->op = "recvmsg";
      break;
    }
    bool end = false;
    for (size_t o = 0; o + NLMSG_HDRLEN <= (size_t)got;) {
      auto* h = reinterpret_cast<nlmsghdr*>(buf.data() + o);
      if (h->nlmsg_len < NLMSG_HDRLEN || o + h->nlmsg_len > (size_t)got) break;
      if (h->nlmsg_seq == j->lastSeq && (h->nlmsg_type == NLMSG_ERROR || h->nlmsg_type == NLMSG_DONE)) end = true;
      o += NLMSG_ALIGN(h->nlmsg_len);
    }
    size_t at = d->replies.size();
    d->replies.resize(at + NLMSG_ALIGN((size_t)got), 0);
    memcpy(d->replies.data() + at, buf.data(), (size_t)got);
    if (end) break;
    if (d->replies.size() >= kChunkBytes) {
      d->last = false;
      post(d);
      d = new Done(j);
    }
  }
  post(d);
}

void threadMain() {
  for (;;) {
    Job* j = nullptr;
    {
      std::unique_lock<std::mutex> l(st->mu);
      for (;;) {
        for (auto it = st->queue.begin(); it != st->queue.end(); ++it) {
          if (!st->busy.count((*it)->fd)) {
            j = *it;
            st->queue.erase(it);
            break;
          }
        }
        if (j) break;
        st->cv.wait(l);
      }
      st->busy.insert(j->fd);
    }
    // The JS thread frees the job once its last result is posted: keep what is needed after that.
    int fd = j->fd;
    if (j->close) {
      close(fd);
      post(new Done(j));
    } else {
      exchange(j);
    }
    // This thread looks at the queue again before it waits: a job held back for this fd is taken then.
    std::lock_guard<std::mutex> l(st->mu);
    st->busy.erase(fd);
  }
}

// Runs on the JS thread: hand every finished chunk to its callback.
void onDone(uv_async_t*) {
  std::deque<Done*> got;
  {
    std::lock_guard<std::mutex> l(st->doneMu);
    got.swap(st->done);
  }
  Napi::Env env(st->env);
  for (Done* d : got) {
    Job* j = d->job;
    bool last = d->last;
    if (last && --st->pending == 0) uv_unref(reinterpret_cast<uv_handle_t*>(&st->async));
    if (!j->cb.IsEmpty()) {
      Napi::HandleScope scope(env);
      Napi::Value err = d->err ? errnoError(env, d->op, d->err).Value() : env.Null();
      Napi::Value replies = env.Null();
      if (!d->replies.empty()) replies = Napi::Buffer<uint8_t>::Copy(env, d->replies.data(), d->replies.size());
      napi_value argv[3] = {err, replies, Napi::Boolean::New(env, last)};
      napi_value result;
      // node's callback scope: the promise jobs this callback queues run when it returns
      napi_value resource;
      napi_get_reference_value(env, st->resource, &resource);
      napi_status s = napi_make_callback(env, st->ctx, resource, j->cb.Value(), 3, argv, &result);
      if (s == napi_pending_exception) {
        napi_value ex;
        napi_get_and_clear_last_exception(env, &ex);
        napi_fatal_exception(env, ex);
      }
    }
    delete d;
    if (last) delete j;
  }
}

void start(Napi::Env env) {
  if (st) return;
  st = new State();
  uv_loop_t* loop = nullptr;
  napi_get_uv_event_loop(env, &loop);
  uv_async_init(loop, &st->async, onDone);
  uv_unref(reinterpret_cast<uv_handle_t*>(&st->async));
  st->env = env;
  Napi::Object resource = Napi::Object::New(env);
  napi_create_reference(env, resource, 1, &st->resource);
  napi_async_init(env, resource, Napi::String::New(env, "tabby:netlink"), &st->ctx);
  for (int i = 0; i < kThreads; i++) std::thread(threadMain).detach();
}

void enqueue(Job* j) {
  {
    std::lock_guard<std::mutex> l(st->mu);
    st->queue.push_back(j);
  }
  st->cv.notify_one();  // one waiter is enough: one whose fd is busy leaves the job to that fd's thread
}

Napi::Value NlOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = info.Length() > 0 && info[0].IsString() ? info[0].As<Napi::String>().Utf8Value() : "";
  int original = -1;
  if (!path.empty()) {
    int target = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (target < 0) {
      errnoError(env, "open", errno, path).ThrowAsJavaScriptException();
      return env.Undefined();
    }
    std::string self = "/proc/self/task/" + std::to_string((long)syscall(SYS_gettid)) + "/ns/net";
    original = open(self.c_str(), O_RDONLY | O_CLOEXEC);
    if (original < 0 || setns(target, CLONE_NEWNET) != 0) {
      int e = errno;
      close(target);
      if (original >= 0) close(original);
      errnoError(env, original < 0 ? "open" : "setns", e, path).ThrowAsJavaScriptException();
      return env.Undefined();
    }
    close(target);
  }
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  int socketErr = errno;
  if (original >= 0) {
    // A thread left in a pod's netns would program the wrong kernel afterwards.
    if (setns(original, CLONE_NEWNET) != 0) {
      fprintf(stderr, "tabby_native: FATAL cannot return to original netns: %s\n", strerror(errno));
      abort();
    }
    close(original);
  }
  if (fd < 0) {
    errnoError(env, "socket", socketErr, "AF_NETLINK").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  // The replies of a batch queue up while the kernel still works through it (the thread reads after
  // its sendmsg returns): room for a few thousand errors.
  int one = 1, sndbuf = 4 << 20, rcvbuf = 4 << 20;
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf) != 0) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof one);  // old kernels: no reason text
  setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof one);
  if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf, sizeof sndbuf) != 0) setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
  sockaddr_nl addr = {};
  addr.nl_family = AF_NETLINK;
  socklen_t len = sizeof addr;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    int e = errno;
    close(fd);
    errnoError(env, "bind", e, "AF_NETLINK").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  start(env);
  Napi::Object out = Napi::Object::New(env);
  out.Set("fd", Napi::Number::New(env, fd));
  out.Set("port", Napi::Number::New(env, addr.nl_pid));
  return out;
}

Napi::Value NlExchange(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 5 || !info[0].IsNumber() || !info[1].IsBuffer() || !info[2].IsNumber() || !info[3].IsNumber() || !info[4].IsFunction()) {
    Napi::TypeError::New(env, "nlExchange(fd, buf, lastSeq, timeoutMs, cb)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  start(env);
  Job* j = new Job();
  j->fd = info[0].As<Napi::Number>().Int32Value();
  Napi::Buffer<uint8_t> b = info[1].As<Napi::Buffer<uint8_t>>();
  j->req.assign(b.Data(), b.Data() + b.Length());
  j->lastSeq = info[2].As<Napi::Number>().Uint32Value();
  j->timeoutMs = info[3].As<Napi::Number>().Int32Value();
  j->cb = Napi::Persistent(info[4].As<Napi::Function>());
  if (st->pending++ == 0) uv_ref(reinterpret_cast<uv_handle_t*>(&st->async));
  enqueue(j);
  return env.Undefined();
}

Napi::Value NlClose(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) {
    Napi::TypeError::New(env, "nlClose(fd)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  start(env);
  Job* j = new Job();
  j->fd = info[0].As<Napi::Number>().Int32Value();
  j->close = true;
  if (st->pending++ == 0) uv_ref(reinterpret_cast<uv_handle_t*>(&st->async));
  enqueue(j);
  return env.Undefined();
}

}  // namespace

void InitNlWorker(Napi::Env env, Napi::Object exports) {
  exports.Set("nlOpen", Napi::Function::New(env, NlOpen));
  exports.Set("nlExchange", Napi::Function::New(env, NlExchange));
  exports.Set("nlClose", Napi::Function::New(env, NlClose));
}
