// Gloo process group for strategies/ddp/gloo.ts. Compiled only when Gloo's headers were
// found at build time (native/gloo.cjs; LIGHTCLIP_GLOO is then defined for the whole
// addon and addon.cc calls registerGloo).
//
// Threading: every process group owns one communication thread with a FIFO of tasks. The
// JS thread validates arguments, pins the typed arrays (napi references), queues a task and
// returns a Promise; the task runs the Gloo collective on the communication thread — never
// the libuv pool, which image decoding shares — and hands the outcome back through a
// thread-safe function, which settles the Promise on the JS thread. Every task body runs
// inside try/catch: a Gloo exception becomes a rejected Promise, never a C++ exception
// crossing into V8.
//
// A collective that hangs (a stopped peer) keeps its thread blocked until Gloo's own
// timeout; the JS side may give up earlier (its timer, a death notice from the store) and
// call `glooAbandon`, which stops the group from keeping Node's event loop alive. Nothing
// here ever joins a thread that may be blocked: a group whose thread is busy is leaked.
#include <node_api.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gloo/allgatherv.h>
#include <gloo/allreduce.h>
#include <gloo/allreduce_halving_doubling.h>
#include <gloo/allreduce_ring_chunked.h>
#include <gloo/barrier.h>
#include <gloo/broadcast.h>
#include <gloo/common/error.h>
#include <gloo/config.h>
#include <gloo/reduce_scatter.h>
#include <gloo/rendezvous/context.h>
#include <gloo/rendezvous/file_store.h>
#include <gloo/rendezvous/prefix_store.h>
#include <gloo/rendezvous/store.h>
#include <gloo/transport/tcp/device.h>

namespace {

using Ms = std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

// ---- the key-value store client (server: strategies/ddp/store.ts) ----
//
// Frame: u32 length of the rest | u8 op | u32 request id | u16 key length | key | value,
// little-endian. Requests: SET (value), GET (value = u32 timeout ms; reply carries the
// value), WAIT (same, empty reply). Replies: OK, TIMEOUT, ERROR (value = message).
enum : uint8_t { OP_SET = 1, OP_GET = 2, OP_WAIT = 3, ST_OK = 100, ST_TIMEOUT = 101, ST_ERROR = 102 };

class TcpStore : public gloo::rendezvous::Store {
 public:
  TcpStore(const std::string& host, int port, Ms timeout) : host_(host), port_(port), timeout_(timeout) {
    const auto deadline = Clock::now() + timeout;
    for (;;) {
      fd_ = tryConnect();
      if (fd_ >= 0) break;
      if (Clock::now() > deadline) GLOO_THROW_IO_EXCEPTION("could not connect to the store at ", host_, ":", port_, ": ", strerror(errno));
      std::this_thread::sleep_for(Ms(50));
    }
  }
  ~TcpStore() override {
    if (fd_ >= 0) ::close(fd_);
  }

  void set(const std::string& key, const std::vector<char>& data) override {
    request(OP_SET, key, data, Ms(0));
  }
  std::vector<char> get(const std::string& key) override {
    return request(OP_GET, key, timeoutBytes(timeout_), timeout_);
  }
  void wait(const std::vector<std::string>& keys) override {
    wait(keys, timeout_);
  }
  void wait(const std::vector<std::string>& keys, const Ms& timeout) override {
    const auto deadline = Clock::now() + timeout;
    for (const auto& k : keys) {
      auto left = std::chrono::duration_cast<Ms>(deadline - Clock::now());
      if (left < Ms(1)) left = Ms(1);
      request(OP_WAIT, k, timeoutBytes(left), left);
    }
  }

 private:
  std::string host_;
  int port_;
  Ms timeout_;
  int fd_ = -1;
  uint32_t nextId_ = 1;

  static std::vector<char> timeoutBytes(Ms t) {
    uint32_t v = (uint32_t)std::min<int64_t>(t.count(), 0xffffffffLL);
    std::vector<char> out(4);
    for (int i = 0; i < 4; i++) out[i] = (char)((v >> (8 * i)) & 0xff);
    return out;
  }

  int tryConnect() {
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
    addrinfo* res = nullptr;
    if (getaddrinfo(host_.c_str(), std::to_string(port_).c_str(), &hints, &res) != 0 || !res) {
      GLOO_THROW_INVALID_OPERATION_EXCEPTION("store address ", host_, " is not a numeric IP (resolve it first)");
    }
    int fd = ::socket(res->ai_family, SOCK_STREAM, 0);
    if (fd >= 0 && ::connect(fd, res->ai_addr, res->ai_addrlen) != 0) {
      int e = errno;
      ::close(fd);
      fd = -1;
      errno = e;
    }
    freeaddrinfo(res);
    if (fd >= 0) {
      int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    return fd;
  }

  void writeAll(const char* p, size_t n) {
    while (n > 0) {
      ssize_t w = ::send(fd_, p, n, MSG_NOSIGNAL);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) GLOO_THROW_IO_EXCEPTION("store connection to ", host_, ":", port_, " failed while sending: ", strerror(errno));
      p += w;
      n -= (size_t)w;
    }
  }
  void readAll(char* p, size_t n, Clock::time_point deadline) {
    while (n > 0) {
      auto left = std::chrono::duration_cast<Ms>(deadline - Clock::now()).count();
      if (left < 1) GLOO_THROW_IO_EXCEPTION("the store at ", host_, ":", port_, " did not answer in time");
      timeval tv{(time_t)(left / 1000), (suseconds_t)((left % 1000) * 1000)};
      setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      ssize_t r = ::recv(fd_, p, n, 0);
      if (r < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) continue;
      if (r == 0) GLOO_THROW_IO_EXCEPTION("the store at ", host_, ":", port_, " closed the connection (rank 0 is gone?)");
      if (r < 0) GLOO_THROW_IO_EXCEPTION("store connection to ", host_, ":", port_, " failed: ", strerror(errno));
      p += r;
      n -= (size_t)r;
    }
  }

  std::vector<char> request(uint8_t op, const std::string& key, const std::vector<char>& value, Ms wait) {
    const uint32_t id = nextId_++;
    const uint32_t len = 1 + 4 + 2 + (uint32_t)key.size() + (uint32_t)value.size();
    std::vector<char> f(4 + len);
    size_t o = 0;
    auto u32 = [&](uint32_t v) { for (int i = 0; i < 4; i++) f[o++] = (char)((v >> (8 * i)) & 0xff); };
    u32(len);
    f[o++] = (char)op;
    u32(id);
    f[o++] = (char)(key.size() & 0xff);
    f[o++] = (char)((key.size() >> 8) & 0xff);
    memcpy(&f[o], key.data(), key.size());
    o += key.size();
    if (!value.empty()) memcpy(&f[o], value.data(), value.size());
    writeAll(f.data(), f.size());
    // The server answers a blocking GET/WAIT when it times out: allow it a margin.
    const auto deadline = Clock::now() + wait + Ms(10000);
    unsigned char hdr[4];
    readAll((char*)hdr, 4, deadline);
    const uint32_t rlen = hdr[0] | (hdr[1] << 8) | (hdr[2] << 16) | ((uint32_t)hdr[3] << 24);
    if (rlen < 7 || rlen > (1u << 30)) GLOO_THROW_IO_EXCEPTION("malformed reply from the store at ", host_, ":", port_);
    std::vector<char> body(rlen);
    readAll(body.data(), rlen, deadline);
    const uint8_t rop = (uint8_t)body[0];
    const size_t klen = (uint8_t)body[5] | ((uint8_t)body[6] << 8);
    std::vector<char> out(body.begin() + 7 + klen, body.end());
    if (rop == ST_OK) return out;
    if (rop == ST_TIMEOUT) GLOO_THROW_IO_EXCEPTION("rendezvous: key '", key, "' was not set in the store within ", wait.count(), " ms");
    GLOO_THROW_IO_EXCEPTION("store error for key '", key, "': ", std::string(out.begin(), out.end()));
  }
};

// ---- the process group ----

std::atomic<bool> envGone{false};

struct Pinned {
  napi_ref ref = nullptr;
  void* data = nullptr;
  size_t bytes = 0;
};

struct Task {
  std::function<void(Task&)> run;
  napi_deferred deferred = nullptr;
  std::vector<Pinned> pins;
  std::string error;
  bool failed = false;
  std::string result;  // connect: a description of the device
};

struct Group {
  std::shared_ptr<gloo::Context> ctx;
  std::thread thread;
  std::mutex mu;
  std::condition_variable cv;
  std::deque<Task*> queue;
  bool stopping = false;
  bool busy = false;
  int pending = 0;  // touched on the JS thread only
  bool abandoned = false;
  bool closed = false;
  napi_threadsafe_function tsfn = nullptr;

  void loop() {
    for (;;) {
      Task* t;
      {
        std::unique_lock<std::mutex> lk(mu);
        cv.wait(lk, [&] { return stopping || !queue.empty(); });
        if (queue.empty()) return;
        t = queue.front();
        queue.pop_front();
        busy = true;
      }
      try {
        t->run(*t);
      } catch (const std::exception& e) {
        t->failed = true;
        t->error = e.what();
      } catch (...) {
        t->failed = true;
        t->error = "unknown error in Gloo";
      }
      {
        std::lock_guard<std::mutex> lk(mu);
        busy = false;
      }
      // After Node's environment is gone (process exit) the thread-safe function is too:
      // calling it would abort the process, so the result is dropped.
      if (envGone.load() || napi_call_threadsafe_function(tsfn, t, napi_tsfn_blocking) != napi_ok) delete t;
    }
  }
};

napi_value undefinedValue(napi_env env) {
  napi_value u;
  napi_get_undefined(env, &u);
  return u;
}

void throwError(napi_env env, const std::string& msg) {
  napi_throw_error(env, nullptr, msg.c_str());
}

// Settles a finished task's Promise (JS thread).
void onDone(napi_env env, napi_value /*js_cb*/, void* context, void* data) {
  Group* g = static_cast<Group*>(context);
  Task* t = static_cast<Task*>(data);
  if (env != nullptr) {
    for (auto& p : t->pins) napi_delete_reference(env, p.ref);
    if (t->failed) {
      napi_value msg, err;
      napi_create_string_utf8(env, t->error.c_str(), NAPI_AUTO_LENGTH, &msg);
      napi_create_error(env, nullptr, msg, &err);
      napi_reject_deferred(env, t->deferred, err);
    } else {
      napi_value r;
      napi_create_string_utf8(env, t->result.c_str(), NAPI_AUTO_LENGTH, &r);
      napi_resolve_deferred(env, t->deferred, r);
    }
    if (--g->pending == 0 && !g->abandoned) napi_unref_threadsafe_function(env, g->tsfn);
  }
  delete t;
}

void finalizeGroup(napi_env /*env*/, void* data, void* /*hint*/) {
  Group* g = static_cast<Group*>(data);
  bool idle;
  {
    std::lock_guard<std::mutex> lk(g->mu);
    idle = !g->busy && g->queue.empty();
    g->stopping = true;
  }
  g->cv.notify_all();
  // Never join a thread that may be blocked inside Gloo; such a group is leaked on purpose.
  if (idle && g->thread.joinable()) g->thread.join();
  else if (g->thread.joinable()) g->thread.detach();
  // The context and its device thread live until exit either way: their destructors join
  // Gloo's own loop thread, which is safe only once the group is idle.
  if (idle) {
    g->ctx.reset();
    delete g;
  }
}

Group* groupArg(napi_env env, napi_value v) {
  void* p = nullptr;
  if (napi_get_value_external(env, v, &p) != napi_ok || !p) {
    throwError(env, "gloo: bad process-group handle");
    return nullptr;
  }
  return static_cast<Group*>(p);
}

bool pin(napi_env env, napi_value v, Pinned* out) {
  bool is = false;
  napi_is_typedarray(env, v, &is);
  if (!is) {
    throwError(env, "gloo: expected a typed array");
    return false;
  }
  napi_typedarray_type type;
  size_t length = 0, offset = 0;
  napi_value ab;
  void* data = nullptr;
  napi_get_typedarray_info(env, v, &type, &length, &data, &ab, &offset);
  size_t elem = 1;
  switch (type) {
    case napi_float32_array: case napi_int32_array: case napi_uint32_array: elem = 4; break;
    case napi_float64_array: case napi_bigint64_array: case napi_biguint64_array: elem = 8; break;
    case napi_int16_array: case napi_uint16_array: elem = 2; break;
    default: elem = 1;
  }
  napi_create_reference(env, v, 1, &out->ref);
  out->data = data;
  out->bytes = length * elem;
  return true;
}

// Queues `run` on the group's thread; returns its Promise.
napi_value submit(napi_env env, Group* g, Task* t) {
  napi_value promise;
  napi_create_promise(env, &t->deferred, &promise);
  if (g->closed) {
    for (auto& p : t->pins) napi_delete_reference(env, p.ref);
    napi_value msg, err;
    napi_create_string_utf8(env, "gloo: the process group is closed", NAPI_AUTO_LENGTH, &msg);
    napi_create_error(env, nullptr, msg, &err);
    napi_reject_deferred(env, t->deferred, err);
    delete t;
    return promise;
  }
  if (g->pending++ == 0 && !g->abandoned) napi_ref_threadsafe_function(env, g->tsfn);
  {
    std::lock_guard<std::mutex> lk(g->mu);
    g->queue.push_back(t);
  }
  g->cv.notify_one();
  return promise;
}

struct CbArgs {
  napi_value v[10];
  size_t n = 10;
  CbArgs(napi_env env, napi_callback_info info) { napi_get_cb_info(env, info, &n, v, nullptr, nullptr); }
};

double num(napi_env env, napi_value v) {
  double d = 0;
  napi_get_value_double(env, v, &d);
  return d;
}

std::string str(napi_env env, napi_value v) {
  size_t len = 0;
  napi_get_value_string_utf8(env, v, nullptr, 0, &len);
  std::string s(len, '\0');
  napi_get_value_string_utf8(env, v, &s[0], len + 1, &len);
  return s;
}

// glooCreate() -> handle: a group with its thread, not yet connected.
napi_value Create(napi_env env, napi_callback_info /*info*/) {
  Group* g = new Group();
  napi_value name;
  napi_create_string_utf8(env, "lightclip-gloo", NAPI_AUTO_LENGTH, &name);
  if (napi_create_threadsafe_function(env, nullptr, nullptr, name, 0, 1, nullptr, nullptr, g, onDone, &g->tsfn) != napi_ok) {
    delete g;
    throwError(env, "gloo: could not create the completion channel");
    return nullptr;
  }
  napi_unref_threadsafe_function(env, g->tsfn);
  static bool hooked = false;
  if (!hooked) {
    hooked = true;
    napi_add_env_cleanup_hook(env, [](void*) { envGone = true; }, nullptr);
  }
  g->thread = std::thread([g] { g->loop(); });
  napi_value h;
  napi_create_external(env, g, finalizeGroup, nullptr, &h);
  return h;
}

// glooConnect(h, rank, size, hostname, iface, storeKind ('tcp'|'file'), storeHost|path, storePort, prefix, timeoutMs)
napi_value Connect(napi_env env, napi_callback_info info) {
  CbArgs a(env, info);
  if (a.n < 10) { throwError(env, "gloo.connect: 10 arguments expected"); return nullptr; }
  Group* g = groupArg(env, a.v[0]);
  if (!g) return nullptr;
  const int rank = (int)num(env, a.v[1]), size = (int)num(env, a.v[2]);
  const std::string hostname = str(env, a.v[3]), iface = str(env, a.v[4]), kind = str(env, a.v[5]), where = str(env, a.v[6]);
  const int port = (int)num(env, a.v[7]);
  const std::string prefix = str(env, a.v[8]);
  const Ms timeout((int64_t)num(env, a.v[9]));
  Task* t = new Task();
  t->run = [g, rank, size, hostname, iface, kind, where, port, prefix, timeout](Task& task) {
    gloo::transport::tcp::attr attr;
    if (!iface.empty()) attr.iface = iface;
    else attr.hostname = hostname;
    auto dev = gloo::transport::tcp::CreateDevice(attr);
    auto ctx = std::make_shared<gloo::rendezvous::Context>(rank, size);
    ctx->setTimeout(timeout);
    std::unique_ptr<gloo::rendezvous::Store> base;
    if (kind == "file") base.reset(new gloo::rendezvous::FileStore(where));
    else base.reset(new TcpStore(where, port, timeout));
    gloo::rendezvous::PrefixStore store(prefix, *base);
    ctx->connectFullMesh(store, dev);
    g->ctx = ctx;
    task.result = dev->str();
  };
  return submit(env, g, t);
}

// Algorithm codes shared with strategies/ddp/gloo.ts.
enum : int { ALG_RING = 0, ALG_BCUBE = 1, ALG_RING_CHUNKED = 2, ALG_HALVING_DOUBLING = 3 };

void sumFloats(void* c, const void* a, const void* b, size_t n) {
  float* o = static_cast<float*>(c);
  const float* x = static_cast<const float*>(a);
  const float* y = static_cast<const float*>(b);
  for (size_t i = 0; i < n; i++) o[i] = x[i] + y[i];
}

std::shared_ptr<gloo::Context> contextOf(Group* g) {
  if (!g->ctx) GLOO_THROW_INVALID_OPERATION_EXCEPTION("the process group is not connected");
  return g->ctx;
}

// glooAllReduce(h, Float32Array, algorithm, tag, timeoutMs, divisor): in-place sum, then ÷ divisor
// (dividing, not multiplying by 1/N: exact whenever the sum is).
napi_value AllReduce(napi_env env, napi_callback_info info) {
  CbArgs a(env, info);
  Group* g = groupArg(env, a.v[0]);
  if (!g) return nullptr;
  Task* t = new Task();
  t->pins.resize(1);
  if (!pin(env, a.v[1], &t->pins[0])) { delete t; return nullptr; }
  const int alg = (int)num(env, a.v[2]);
  const uint32_t tag = (uint32_t)num(env, a.v[3]);
  const Ms timeout((int64_t)num(env, a.v[4]));
  const float div = (float)num(env, a.v[5]);
  t->run = [g, alg, tag, timeout, div](Task& task) {
    auto ctx = contextOf(g);
    float* data = static_cast<float*>(task.pins[0].data);
    const size_t n = task.pins[0].bytes / 4;
    if (n == 0) return;
    if (alg == ALG_RING_CHUNKED || alg == ALG_HALVING_DOUBLING) {
      // The classic algorithms use the context's timeout and slots of their own.
      std::vector<float*> ptrs{data};
      if (alg == ALG_RING_CHUNKED) gloo::AllreduceRingChunked<float>(ctx, ptrs, (int)n).run();
      else gloo::AllreduceHalvingDoubling<float>(ctx, ptrs, (int)n).run();
    } else {
      gloo::AllreduceOptions o(ctx);
      o.setOutput(data, n);
      o.setAlgorithm(alg == ALG_BCUBE ? gloo::AllreduceOptions::Algorithm::BCUBE : gloo::AllreduceOptions::Algorithm::RING);
      o.setReduceFunction(sumFloats);
      o.setTag(tag);
      o.setTimeout(timeout);
      gloo::allreduce(o);
    }
    if (div != 1.0f) for (size_t i = 0; i < n; i++) data[i] = data[i] / div;
  };
  return submit(env, g, t);
}

// glooBroadcast(h, typedArray, root, tag, timeoutMs)
napi_value Broadcast(napi_env env, napi_callback_info info) {
  CbArgs a(env, info);
  Group* g = groupArg(env, a.v[0]);
  if (!g) return nullptr;
  Task* t = new Task();
  t->pins.resize(1);
  if (!pin(env, a.v[1], &t->pins[0])) { delete t; return nullptr; }
  const int root = (int)num(env, a.v[2]);
  const uint32_t tag = (uint32_t)num(env, a.v[3]);
  const Ms timeout((int64_t)num(env, a.v[4]));
  t->run = [g, root, tag, timeout](Task& task) {
    auto ctx = contextOf(g);
    if (task.pins[0].bytes == 0) return;
    gloo::BroadcastOptions o(ctx);
    uint8_t* p = static_cast<uint8_t*>(task.pins[0].data);
    if (ctx->rank == root) o.setInput(p, task.pins[0].bytes);
    o.setOutput(p, task.pins[0].bytes);
    o.setRoot(root);
    o.setTag(tag);
    o.setTimeout(timeout);
    gloo::broadcast(o);
  };
  return submit(env, g, t);
}

// glooAllGatherv(h, input bytes, output bytes, Float64Array bytes per rank, tag, timeoutMs)
napi_value AllGatherv(napi_env env, napi_callback_info info) {
  CbArgs a(env, info);
  Group* g = groupArg(env, a.v[0]);
  if (!g) return nullptr;
  Task* t = new Task();
  t->pins.resize(3);
  if (!pin(env, a.v[1], &t->pins[0]) || !pin(env, a.v[2], &t->pins[1]) || !pin(env, a.v[3], &t->pins[2])) {
    for (auto& p : t->pins) if (p.ref) napi_delete_reference(env, p.ref);
    delete t;
    return nullptr;
  }
  const uint32_t tag = (uint32_t)num(env, a.v[4]);
  const Ms timeout((int64_t)num(env, a.v[5]));
  t->run = [g, tag, timeout](Task& task) {
    auto ctx = contextOf(g);
    const double* counts = static_cast<const double*>(task.pins[2].data);
    std::vector<size_t> elements((size_t)ctx->size);
    size_t total = 0;
    for (int r = 0; r < ctx->size; r++) total += (elements[r] = (size_t)counts[r]);
    if (total == 0) return;
    if (total != task.pins[1].bytes || elements[ctx->rank] != task.pins[0].bytes) GLOO_THROW_INVALID_OPERATION_EXCEPTION("allgatherv: buffer sizes disagree with the counts");
    // Gloo's allgatherv rejects empty input pointers; a zero-length contribution still needs a valid one.
    static uint8_t dummy;
    uint8_t* in = task.pins[0].bytes ? static_cast<uint8_t*>(task.pins[0].data) : &dummy;
    gloo::AllgathervOptions o(ctx);
    o.setInput(in, task.pins[0].bytes);
    o.setOutput(static_cast<uint8_t*>(task.pins[1].data), elements);
    o.setTag(tag);
    o.setTimeout(timeout);
    gloo::allgatherv(o);
  };
  return submit(env, g, t);
}

// glooReduceScatter(h, Float32Array data, Int32Array counts per rank, divisor): data[0:counts[rank]] = this rank's block of the sum.
napi_value ReduceScatter(napi_env env, napi_callback_info info) {
  CbArgs a(env, info);
  Group* g = groupArg(env, a.v[0]);
  if (!g) return nullptr;
  Task* t = new Task();
  t->pins.resize(2);
  if (!pin(env, a.v[1], &t->pins[0]) || !pin(env, a.v[2], &t->pins[1])) {
    for (auto& p : t->pins) if (p.ref) napi_delete_reference(env, p.ref);
    delete t;
    return nullptr;
  }
  const float div = (float)num(env, a.v[3]);
  t->run = [g, div](Task& task) {
    auto ctx = contextOf(g);
    float* data = static_cast<float*>(task.pins[0].data);
    const int32_t* c = static_cast<const int32_t*>(task.pins[1].data);
    std::vector<int> counts(c, c + ctx->size);
    const int n = (int)(task.pins[0].bytes / 4);
    std::vector<float*> ptrs{data};
    gloo::ReduceScatterHalvingDoubling<float>(ctx, ptrs, n, counts).run();
    if (div != 1.0f) for (int i = 0; i < counts[ctx->rank]; i++) data[i] = data[i] / div;
  };
  return submit(env, g, t);
}

// glooBarrier(h, tag, timeoutMs)
napi_value Barrier(napi_env env, napi_callback_info info) {
  CbArgs a(env, info);
  Group* g = groupArg(env, a.v[0]);
  if (!g) return nullptr;
  const uint32_t tag = (uint32_t)num(env, a.v[1]);
  const Ms timeout((int64_t)num(env, a.v[2]));
  Task* t = new Task();
  t->run = [g, tag, timeout](Task&) {
    gloo::BarrierOptions o(contextOf(g));
    o.setTag(tag);
    o.setTimeout(timeout);
    gloo::barrier(o);
  };
  return submit(env, g, t);
}

// glooAbandon(h): the JS side gave up on this group; it no longer keeps the event loop alive.
napi_value Abandon(napi_env env, napi_callback_info info) {
  CbArgs a(env, info);
  Group* g = groupArg(env, a.v[0]);
  if (!g) return nullptr;
  if (!g->abandoned && g->pending > 0) napi_unref_threadsafe_function(env, g->tsfn);
  g->abandoned = true;
  g->closed = true;
  return undefinedValue(env);
}

// glooClose(h) -> true when the group was idle and its connections are closed; false when a
// collective is still running (the group is then abandoned and left to the process exit).
napi_value Close(napi_env env, napi_callback_info info) {
  CbArgs a(env, info);
  Group* g = groupArg(env, a.v[0]);
  if (!g) return nullptr;
  bool idle;
  {
    std::lock_guard<std::mutex> lk(g->mu);
    idle = !g->busy && g->queue.empty();
  }
  g->closed = true;
  if (idle) {
    if (g->ctx) {
      try {
        g->ctx->closeConnections();
      } catch (...) {
        // closing is best effort
      }
      g->ctx.reset();
    }
  } else if (!g->abandoned) {
    if (g->pending > 0) napi_unref_threadsafe_function(env, g->tsfn);
    g->abandoned = true;
  }
  napi_value r;
  napi_get_boolean(env, idle, &r);
  return r;
}

}  // namespace

namespace lc {

void registerGloo(napi_env env, napi_value exports) {
  const struct { const char* name; napi_callback cb; } fns[] = {
      {"glooCreate", Create},   {"glooConnect", Connect},           {"glooAllReduce", AllReduce},
      {"glooBroadcast", Broadcast}, {"glooAllGatherv", AllGatherv}, {"glooReduceScatter", ReduceScatter},
      {"glooBarrier", Barrier}, {"glooAbandon", Abandon},           {"glooClose", Close},
  };
  for (const auto& f : fns) {
    napi_value fn;
    napi_create_function(env, f.name, NAPI_AUTO_LENGTH, f.cb, nullptr, &fn);
    napi_set_named_property(env, exports, f.name, fn);
  }
  napi_value v;
  napi_create_string_utf8(env, std::to_string(GLOO_VERSION_MAJOR).append(".").append(std::to_string(GLOO_VERSION_MINOR)).append(".").append(std::to_string(GLOO_VERSION_PATCH)).c_str(), NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, exports, "glooVersion", v);
}

}  // namespace lc
