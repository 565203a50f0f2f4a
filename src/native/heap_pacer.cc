// The heap pacer: tabby-node's own start signal for V8's major GC, checked after every young-generation
// GC. V8 starts a major GC when the old generation has grown max(growth factor, 8 MB) over what survived
// the last one, and for external memory (ArrayBuffers) 64 MB over it: at an agent's 15–30 MB of live
// heap the 8 MB step, not the factor, sets the rhythm, and dead ArrayBuffers (grown typed-array
// columns, netlink and decode buffers) wait for the next major GC whatever their size. V8's step is
// 2 MB only while it optimises for memory, but then every major GC it starts is a memory-reducing one,
// after which its step is 8 MB again — why --optimize-for-size changed nothing here.
// The pacer asks for a major GC once the old generation or the external memory has grown by
// max(factor × what the last major GC left of it, minStep), checked after each young-generation GC; the
// request is made from an interrupt (a GC callback must not start a GC), see StartMajorGc. V8's own
// limits stay as they are.
// Only while the old generation is small (under maxOld after the last major GC): there V8's 8 MB step
// is the rhythm; above 8 MB / factor V8's own growth factor gives the same old-generation steps, and at a
// 1M-route table (100+ MB) paced GCs for the ArrayBuffers alone cost 1.5× the CPU (young buffers not yet
// swept count as growth). heapPacer(factor, minStep[, maxOld]) installs or reconfigures it (factor 0:
// off); heapPacerStats() counts what it asked for and the major GCs that ran (tests, diagnostics).
#include <napi.h>
#include <v8.h>
#include <string.h>
#include <algorithm>

namespace {

struct Pacer {
  bool installed = false;
  double factor = 0;
  double minStep = 0;
  // above this old generation (what the last major GC left) the pacer stands aside
  double maxOld = 0;
  // what the last major GC left (lowered as sweeping, which runs after it, frees more)
  size_t oldBase = 0;
  int64_t externalBase = 0;
  // external memory when the last major GC ended: V8's limit for it is 64 MB over this
  int64_t externalAtMajor = 0;
  bool requested = false;
  uint32_t requests = 0;
  uint32_t majors = 0;
};

Pacer pacer;

// old, large-object, code and map spaces: all but the young generation's
size_t OldGeneration(v8::Isolate* iso) {
  size_t sum = 0;
  v8::HeapSpaceStatistics s;
  for (size_t i = 0; i < iso->NumberOfHeapSpaces(); i++) {
    if (!iso->GetHeapSpaceStatistics(&s, i)) continue;
    if (strncmp(s.space_name(), "new_", 4) == 0) continue;
    sum += s.space_used_size();
  }
  return sum;
}

// V8's count of external memory (every ArrayBuffer's backing store is in it); a change of 0 only reads it
int64_t External(v8::Isolate* iso) { return iso->AdjustAmountOfExternalAllocatedMemory(0); }

// V8 starts an ordinary incremental major GC when its external memory passes its limit (64 MB over what
// the last major GC left): the pacer reports that much more for a moment and takes it back at once.
// (MemoryPressureNotification(kModerate) would start a memory-reducing one, and it drops the queued
// optimizing compiles: a GC-heavy test loop took twice the time it takes this way.) A major GC that ran
// since the pacer asked has reset `requested`: nothing to do then.
void StartMajorGc(v8::Isolate* iso, void*) {
  if (!pacer.requested) return;
  const int64_t limit = pacer.externalAtMajor + v8::internal::Internals::kExternalAllocationSoftLimit;
  const int64_t bump = std::max<int64_t>(limit - External(iso), 0) + 1;
  iso->AdjustAmountOfExternalAllocatedMemory(bump);
  iso->AdjustAmountOfExternalAllocatedMemory(-bump);
}

double Step(double base) { return std::max(pacer.minStep, base * pacer.factor); }

void OnGcEnd(v8::Isolate* iso, v8::GCType type, v8::GCCallbackFlags, void*) {
  if (pacer.factor <= 0) return;
  if (type & v8::kGCTypeMarkSweepCompact) {
    pacer.majors++;
    pacer.oldBase = OldGeneration(iso);
    pacer.externalBase = pacer.externalAtMajor = External(iso);
    pacer.requested = false;
    return;
  }
  if (!(type & (v8::kGCTypeScavenge | v8::kGCTypeMinorMarkCompact))) return;
  size_t old = OldGeneration(iso);
  int64_t ext = External(iso);
  if (pacer.requested) return;
  if (pacer.maxOld > 0 && pacer.oldBase > pacer.maxOld) return;
  pacer.oldBase = std::min(pacer.oldBase, old);
  pacer.externalBase = std::min(pacer.externalBase, ext);
  if (old > pacer.oldBase + Step(pacer.oldBase) || ext > pacer.externalBase + Step(pacer.externalBase)) {
    pacer.requested = true;
    pacer.requests++;
    iso->RequestInterrupt(StartMajorGc, nullptr);
  }
}

Napi::Value HeapPacer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsNumber()) {
    Napi::TypeError::New(env, "heapPacer(factor, minStep[, maxOld])").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  v8::Isolate* iso = v8::Isolate::GetCurrent();
  pacer.factor = info[0].As<Napi::Number>().DoubleValue();
  pacer.minStep = info[1].As<Napi::Number>().DoubleValue();
  pacer.maxOld = info.Length() >= 3 && info[2].IsNumber() ? info[2].As<Napi::Number>().DoubleValue() : 0;
  pacer.oldBase = OldGeneration(iso);
  pacer.externalBase = pacer.externalAtMajor = External(iso);
  pacer.requested = false;
  if (!pacer.installed) {
    iso->AddGCEpilogueCallback(OnGcEnd, nullptr, v8::kGCTypeAll);
    pacer.installed = true;
  }
  return Napi::Boolean::New(env, true);
}

Napi::Value HeapPacerStats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("requests", Napi::Number::New(env, pacer.requests));
  o.Set("majors", Napi::Number::New(env, pacer.majors));
  return o;
}

}  // namespace

void InitHeapPacer(Napi::Env env, Napi::Object exports) {
  exports.Set("heapPacer", Napi::Function::New(env, HeapPacer));
  exports.Set("heapPacerStats", Napi::Function::New(env, HeapPacerStats));
}
