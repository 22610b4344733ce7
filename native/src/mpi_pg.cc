// Open MPI process group for strategies/ddp/mpi.ts, loaded at run time with dlopen
// (libmpi.so.40): nothing of MPI is needed to build. Open MPI's handles (MPI_COMM_WORLD,
// MPI_FLOAT, MPI_SUM...) are the addresses of its predefined objects (ompi_mpi_comm_world...),
// so dlsym gives them too.
//
// MPI is initialised once per process (it cannot be re-initialised after MPI_Finalize), on a
// dedicated communication thread (MPI_THREAD_FUNNELED: every MPI call is made from that
// thread), and only when strategies/ddp/mpi.ts saw mpirun's or PMIx's variables — MPI_Init in
// a process that no launcher started can abort it. Collectives return Promises settled through
// a thread-safe function, as in gloo_pg.cc; MPI errors abort the job (MPI's default handler),
// which is what mpirun is there to clean up.
#include <node_api.h>

#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

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

namespace {

typedef void* Handle;  // MPI_Comm, MPI_Datatype, MPI_Op are pointers in Open MPI

struct Mpi {
  void* lib = nullptr;
  int (*Init_thread)(int*, char***, int, int*) = nullptr;
  int (*Initialized)(int*) = nullptr;
  int (*Finalized)(int*) = nullptr;
  int (*Comm_rank)(Handle, int*) = nullptr;
  int (*Comm_size)(Handle, int*) = nullptr;
  int (*Allreduce)(const void*, void*, int, Handle, Handle, Handle) = nullptr;
  int (*Bcast)(void*, int, Handle, int, Handle) = nullptr;
  int (*Allgatherv)(const void*, int, Handle, void*, const int*, const int*, Handle, Handle) = nullptr;
  int (*Barrier)(Handle) = nullptr;
  int (*Finalize)() = nullptr;
  int (*Get_library_version)(char*, int*) = nullptr;
  Handle commWorld = nullptr, floatType = nullptr, byteType = nullptr, sumOp = nullptr;
  std::string error;
};

Mpi mpi;
const int kThreadFunneled = 1;  // MPI_THREAD_FUNNELED in Open MPI
void* const kInPlace = (void*)1;  // MPI_IN_PLACE in Open MPI

bool loadMpi(const std::string& path) {
  if (mpi.lib) return true;
  void* lib = dlopen(path.c_str(), RTLD_NOW | RTLD_GLOBAL);  // GLOBAL: Open MPI's plugins need its symbols
  if (!lib) {
    mpi.error = dlerror();
    return false;
  }
  bool ok = true;
  auto sym = [&](const char* name) {
    void* p = dlsym(lib, name);
    if (!p) {
      ok = false;
      mpi.error = std::string("missing symbol ") + name + " in " + path;
    }
    return p;
  };
  mpi.Init_thread = (int (*)(int*, char***, int, int*))sym("MPI_Init_thread");
  mpi.Initialized = (int (*)(int*))sym("MPI_Initialized");
  mpi.Finalized = (int (*)(int*))sym("MPI_Finalized");
  mpi.Comm_rank = (int (*)(Handle, int*))sym("MPI_Comm_rank");
  mpi.Comm_size = (int (*)(Handle, int*))sym("MPI_Comm_size");
  mpi.Allreduce = (int (*)(const void*, void*, int, Handle, Handle, Handle))sym("MPI_Allreduce");
  mpi.Bcast = (int (*)(void*, int, Handle, int, Handle))sym("MPI_Bcast");
  mpi.Allgatherv = (int (*)(const void*, int, Handle, void*, const int*, const int*, Handle, Handle))sym("MPI_Allgatherv");
  mpi.Barrier = (int (*)(Handle))sym("MPI_Barrier");
  mpi.Finalize = (int (*)())sym("MPI_Finalize");
  mpi.Get_library_version = (int (*)(char*, int*))sym("MPI_Get_library_version");
  mpi.commWorld = sym("ompi_mpi_comm_world");
  mpi.floatType = sym("ompi_mpi_float");
  mpi.byteType = sym("ompi_mpi_byte");
  mpi.sumOp = sym("ompi_mpi_op_sum");
  if (!ok) {
    dlclose(lib);
    return false;
  }
  mpi.lib = lib;
  return true;
}

std::atomic<bool> envGone{false};

struct Task {
  std::function<std::string()> run;  // returns an error message, empty on success
  bool silent = false;               // nobody waits for the result (finalize at exit)
  napi_deferred deferred = nullptr;
  std::vector<napi_ref> pins;
  std::string error, result;
};

// The one communication thread of this process.
struct Comm {
  std::thread thread;
  std::mutex mu;
  std::condition_variable cv, idle;
  std::deque<Task*> queue;
  bool busy = false;
  int pending = 0;  // JS thread only
  napi_threadsafe_function tsfn = nullptr;
  bool initialized = false;
  bool finalized = false;
  int rank = -1, size = 0;

  void loop() {
    for (;;) {
      Task* t;
      {
        std::unique_lock<std::mutex> lk(mu);
        cv.wait(lk, [&] { return !queue.empty(); });
        t = queue.front();
        queue.pop_front();
        busy = true;
      }
      try {
        t->error = t->run();
      } catch (const std::exception& e) {
        t->error = e.what();
      } catch (...) {
        t->error = "unknown error in MPI";
      }
      {
        std::lock_guard<std::mutex> lk(mu);
        busy = false;
      }
      idle.notify_all();
      // After Node's environment is gone the thread-safe function is too: calling it would abort.
      if (t->silent || envGone.load()) delete t;
      else napi_call_threadsafe_function(tsfn, t, napi_tsfn_blocking);
    }
  }
};

Comm* comm = nullptr;

void onDone(napi_env env, napi_value, void*, void* data) {
  Task* t = static_cast<Task*>(data);
  if (env) {
    for (auto r : t->pins) napi_delete_reference(env, r);
    if (!t->error.empty()) {
      napi_value msg, err;
      napi_create_string_utf8(env, t->error.c_str(), NAPI_AUTO_LENGTH, &msg);
      napi_create_error(env, nullptr, msg, &err);
      napi_reject_deferred(env, t->deferred, err);
    } else {
      napi_value r;
      napi_create_string_utf8(env, t->result.c_str(), NAPI_AUTO_LENGTH, &r);
      napi_resolve_deferred(env, t->deferred, r);
    }
    if (--comm->pending == 0) napi_unref_threadsafe_function(env, comm->tsfn);
  }
  delete t;
}

bool ensureComm(napi_env env) {
  if (comm) return true;
  comm = new Comm();
  napi_value name;
  napi_create_string_utf8(env, "lightclip-mpi", NAPI_AUTO_LENGTH, &name);
  if (napi_create_threadsafe_function(env, nullptr, nullptr, name, 0, 1, nullptr, nullptr, nullptr, onDone, &comm->tsfn) != napi_ok) {
    napi_throw_error(env, nullptr, "mpi: could not create the completion channel");
    return false;
  }
  napi_unref_threadsafe_function(env, comm->tsfn);
  napi_add_env_cleanup_hook(env, [](void*) { envGone = true; }, nullptr);
  comm->thread = std::thread([] { comm->loop(); });
  comm->thread.detach();  // lives as long as the process; never joined
  return true;
}

napi_value submit(napi_env env, Task* t) {
  napi_value promise;
  napi_create_promise(env, &t->deferred, &promise);
  if (comm->pending++ == 0) napi_ref_threadsafe_function(env, comm->tsfn);
  {
    std::lock_guard<std::mutex> lk(comm->mu);
    comm->queue.push_back(t);
  }
  comm->cv.notify_one();
  return promise;
}

struct CbArgs {
  napi_value v[8];
  size_t n = 8;
  CbArgs(napi_env env, napi_callback_info info) { napi_get_cb_info(env, info, &n, v, nullptr, nullptr); }
};

double num(napi_env env, napi_value v) {
  double d = 0;
  napi_get_value_double(env, v, &d);
  return d;
}

bool pin(napi_env env, napi_value v, Task* t, void** data, size_t* bytes) {
  bool is = false;
  napi_is_typedarray(env, v, &is);
  if (!is) {
    napi_throw_type_error(env, nullptr, "mpi: expected a typed array");
    return false;
  }
  napi_typedarray_type type;
  size_t length = 0, offset = 0;
  napi_value ab;
  napi_get_typedarray_info(env, v, &type, &length, data, &ab, &offset);
  size_t elem = (type == napi_float32_array || type == napi_int32_array || type == napi_uint32_array) ? 4 : (type == napi_float64_array) ? 8 : 1;
  *bytes = length * elem;
  napi_ref r;
  napi_create_reference(env, v, 1, &r);
  t->pins.push_back(r);
  return true;
}

std::string check(int rc, const char* what) {
  return rc == 0 ? std::string() : std::string(what) + " failed with MPI error code " + std::to_string(rc);
}

// mpiLoad(path) -> null, or why it cannot be loaded
napi_value Load(napi_env env, napi_callback_info info) {
  CbArgs a(env, info);
  size_t len = 0;
  napi_get_value_string_utf8(env, a.v[0], nullptr, 0, &len);
  std::string path(len, '\0');
  napi_get_value_string_utf8(env, a.v[0], &path[0], len + 1, &len);
  napi_value r;
  if (loadMpi(path)) napi_get_null(env, &r);
  else napi_create_string_utf8(env, mpi.error.c_str(), NAPI_AUTO_LENGTH, &r);
  return r;
}

// mpiInit() -> Promise<"rank size version">: MPI_Init_thread on the communication thread, once.
napi_value InitMpi(napi_env env, napi_callback_info) {
  if (!mpi.lib) {
    napi_throw_error(env, nullptr, "mpi: libmpi is not loaded");
    return nullptr;
  }
  if (!ensureComm(env)) return nullptr;
  Task* t = new Task();
  t->run = [t]() -> std::string {
    if (!comm->initialized) {
      if (comm->finalized) return "MPI was finalized in this process and cannot be initialised again";
      // Open MPI's default all-reduce rules pick algorithms that are ~10x slower than its
      // ring for 2 ranks x 40 MB here: ask for the ring unless the user chose otherwise.
      setenv("OMPI_MCA_coll_tuned_use_dynamic_rules", "1", 0);
      setenv("OMPI_MCA_coll_tuned_allreduce_algorithm", "4", 0);
      int provided = 0;
      std::string e = check(mpi.Init_thread(nullptr, nullptr, kThreadFunneled, &provided), "MPI_Init_thread");
      if (!e.empty()) return e;
      comm->initialized = true;
      mpi.Comm_rank(mpi.commWorld, &comm->rank);
      mpi.Comm_size(mpi.commWorld, &comm->size);
    }
    char version[8192] = {0};
    int vlen = 0;
    mpi.Get_library_version(version, &vlen);
    std::string v(version, strnlen(version, sizeof version));
    const size_t nl = v.find_first_of(",\n");
    if (nl != std::string::npos) v = v.substr(0, nl);
    t->result = std::to_string(comm->rank) + " " + std::to_string(comm->size) + " " + v;
    return "";
  };
  return submit(env, t);
}

// mpiAllReduce(Float32Array, divisor): in-place sum, then ÷ divisor.
napi_value AllReduce(napi_env env, napi_callback_info info) {
  CbArgs a(env, info);
  Task* t = new Task();
  void* data = nullptr;
  size_t bytes = 0;
  if (!comm || !pin(env, a.v[0], t, &data, &bytes)) { delete t; return nullptr; }
  const float div = (float)num(env, a.v[1]);
  t->run = [data, bytes, div]() -> std::string {
    const size_t n = bytes / 4;
    if (n == 0) return "";
    if (n > 0x7fffffff) return "MPI_Allreduce: more than 2^31 - 1 floats";
    std::string e = check(mpi.Allreduce(kInPlace, data, (int)n, mpi.floatType, mpi.sumOp, mpi.commWorld), "MPI_Allreduce");
    if (e.empty() && div != 1.0f) {
      float* f = static_cast<float*>(data);
      for (size_t i = 0; i < n; i++) f[i] = f[i] / div;
    }
    return e;
  };
  return submit(env, t);
}

// mpiBroadcast(typedArray, root)
napi_value Broadcast(napi_env env, napi_callback_info info) {
  CbArgs a(env, info);
  Task* t = new Task();
  void* data = nullptr;
  size_t bytes = 0;
  if (!comm || !pin(env, a.v[0], t, &data, &bytes)) { delete t; return nullptr; }
  const int root = (int)num(env, a.v[1]);
  t->run = [data, bytes, root]() -> std::string {
    if (bytes == 0) return "";
    if (bytes > 0x7fffffff) return "MPI_Bcast: more than 2^31 - 1 bytes";
    return check(mpi.Bcast(data, (int)bytes, mpi.byteType, root, mpi.commWorld), "MPI_Bcast");
  };
  return submit(env, t);
}

// mpiAllGatherv(input bytes, output bytes, Float64Array bytes per rank)
napi_value AllGatherv(napi_env env, napi_callback_info info) {
  CbArgs a(env, info);
  Task* t = new Task();
  void *in = nullptr, *out = nullptr, *cnt = nullptr;
  size_t inBytes = 0, outBytes = 0, cntBytes = 0;
  if (!comm || !pin(env, a.v[0], t, &in, &inBytes) || !pin(env, a.v[1], t, &out, &outBytes) || !pin(env, a.v[2], t, &cnt, &cntBytes)) {
    for (auto r : t->pins) napi_delete_reference(env, r);
    delete t;
    return nullptr;
  }
  t->run = [in, inBytes, out, cnt, cntBytes]() -> std::string {
    const size_t n = cntBytes / 8;
    std::vector<int> counts(n), displs(n);
    size_t off = 0;
    for (size_t r = 0; r < n; r++) {
      const double c = static_cast<const double*>(cnt)[r];
      if (c > 0x7fffffff || off > 0x7fffffff) return "MPI_Allgatherv: more than 2^31 - 1 bytes";
      counts[r] = (int)c;
      displs[r] = (int)off;
      off += (size_t)c;
    }
    static char dummy;
    return check(mpi.Allgatherv(inBytes ? in : &dummy, (int)inBytes, mpi.byteType, out ? out : &dummy, counts.data(), displs.data(), mpi.byteType, mpi.commWorld), "MPI_Allgatherv");
  };
  return submit(env, t);
}

napi_value Barrier(napi_env env, napi_callback_info) {
  if (!comm) return nullptr;
  Task* t = new Task();
  t->run = []() -> std::string { return check(mpi.Barrier(mpi.commWorld), "MPI_Barrier"); };
  return submit(env, t);
}

// mpiAbandon(): a collective that will never finish must not keep the event loop alive.
napi_value Abandon(napi_env env, napi_callback_info) {
  if (comm && comm->pending > 0) napi_unref_threadsafe_function(env, comm->tsfn);
  napi_value u;
  napi_get_undefined(env, &u);
  return u;
}

// mpiFinalizeSync(waitMs) -> true when MPI_Finalize ran. Called from process 'exit': waits (at
// most waitMs) for the communication thread to be idle, then finalizes there.
napi_value FinalizeSync(napi_env env, napi_callback_info info) {
  CbArgs a(env, info);
  const int ms = (int)num(env, a.v[0]);
  napi_value r;
  if (!comm || !comm->initialized || comm->finalized) {
    napi_get_boolean(env, false, &r);
    return r;
  }
  // Heap state shared with the task: on a timeout the task may still run after we return.
  struct Sync {
    std::mutex m;
    std::condition_variable cv;
    bool done = false;
  };
  auto sync = std::make_shared<Sync>();
  Task* t = new Task();
  t->silent = true;
  t->run = [sync]() -> std::string {
    int fin = 0;
    mpi.Finalized(&fin);
    if (!fin) mpi.Finalize();
    comm->finalized = true;
    {
      std::lock_guard<std::mutex> lk(sync->m);
      sync->done = true;
    }
    sync->cv.notify_all();
    return "";
  };
  {
    std::lock_guard<std::mutex> lk(comm->mu);
    comm->queue.push_back(t);
  }
  comm->cv.notify_one();
  std::unique_lock<std::mutex> lk(sync->m);
  const bool ok = sync->cv.wait_for(lk, std::chrono::milliseconds(ms), [&] { return sync->done; });
  napi_get_boolean(env, ok, &r);
  return r;
}

}  // namespace

namespace lc {

void registerMpi(napi_env env, napi_value exports) {
  const struct { const char* name; napi_callback cb; } fns[] = {
      {"mpiLoad", Load},           {"mpiInit", InitMpi},     {"mpiAllReduce", AllReduce},
      {"mpiBroadcast", Broadcast}, {"mpiAllGatherv", AllGatherv}, {"mpiBarrier", Barrier},
      {"mpiFinalizeSync", FinalizeSync}, {"mpiAbandon", Abandon},
  };
  for (const auto& f : fns) {
    napi_value fn;
    napi_create_function(env, f.name, NAPI_AUTO_LENGTH, f.cb, nullptr, &fn);
    napi_set_named_property(env, exports, f.name, fn);
  }
}

}  // namespace lc
