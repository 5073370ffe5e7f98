// Runs kernels on the emulated device (see device.h for what is modelled). One "device" thread executes every
// launch, block after block; a block's threads are fibers that run until they reach a barrier, a warp operation
// or the end, and the scheduler releases a barrier once every live thread of the block waits at it. Launches from
// any host thread are handed to the device thread one at a time, and the caller waits for the grid to finish.
//
// Shared memory: __shared__ variables are static thread_local, and only kernels run on the device thread, so this
// module's thread-local block on that thread is the device's shared memory; it is filled with 0xFF before each block.
// (So nothing that runs on the device thread may keep thread_local state in this module: the scheduler keeps none but
// the anchor that locates the block, and runtime_api.cpp's per-thread last error is only used by host threads.)
#include "cuda/emulation/device.h"

#include <link.h>
#include <pthread.h>
#include <csetjmp>
#include <csignal>
#include <sys/mman.h>
#if !defined(__x86_64__)
#include <ucontext.h>
#endif
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <new>
#include <string>
#include <thread>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/common_interface_defs.h>
#define GRADCORE_ASAN_FIBERS 1
#endif

namespace gradcore::cuda::emulation {

void record_launch_error(cudaError_t err);  // runtime_api.cpp: the launching thread's last error
void record_kernel_fault(cudaError_t err);  // runtime_api.cpp: a sticky error, as a corrupted CUDA context

namespace {

// Fiber context switches. On x86-64, a few instructions that save the callee-saved registers and the floating-point
// control words on the stack and swap stack pointers (glibc's swapcontext also saves and restores the signal mask:
// two system calls per switch, which made them most of the emulator's time). Elsewhere, ucontext.
#if defined(__x86_64__)
struct FiberContext {
  void* sp = nullptr;
};
extern "C" void gradcore_emulation_switch(void** save_sp, void* load_sp);
asm(R"(
  .text
  .globl gradcore_emulation_switch
  .hidden gradcore_emulation_switch
  .type gradcore_emulation_switch, @function
gradcore_emulation_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  subq $8, %rsp
  stmxcsr (%rsp)
  fnstcw 4(%rsp)
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  ldmxcsr (%rsp)
  fldcw 4(%rsp)
  addq $8, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size gradcore_emulation_switch, .-gradcore_emulation_switch
)");
void switch_context(FiberContext& save, const FiberContext& load) { gradcore_emulation_switch(&save.sp, load.sp); }
// A context that starts entry() on the stack [stack, stack + size): its first switch "returns" into entry with the
// stack aligned as after a call; entry never returns.
void make_context(FiberContext& c, char* stack, size_t size, void (*entry)()) {
  uintptr_t top = (reinterpret_cast<uintptr_t>(stack) + size) & ~uintptr_t(15);
  uint64_t* return_slot = reinterpret_cast<uint64_t*>(top - 16);  // 16-aligned
  *return_slot = reinterpret_cast<uint64_t>(entry);
  uint64_t* sp = return_slot - 7;  // six callee-saved registers, then the control words
  for (int i = 1; i < 7; ++i) sp[i] = 0;
  uint32_t mxcsr;
  uint16_t fpcw;
  asm volatile("stmxcsr %0" : "=m"(mxcsr));
  asm volatile("fnstcw %0" : "=m"(fpcw));
  std::memcpy(reinterpret_cast<char*>(sp), &mxcsr, 4);
  std::memcpy(reinterpret_cast<char*>(sp) + 4, &fpcw, 2);
  c.sp = sp;
}
#else
struct FiberContext {
  ucontext_t context;
};
void switch_context(FiberContext& save, FiberContext& load) { swapcontext(&save.context, &load.context); }
void make_context(FiberContext& c, char* stack, size_t size, void (*entry)()) {
  getcontext(&c.context);
  c.context.uc_stack.ss_sp = stack;
  c.context.uc_stack.ss_size = size;
  c.context.uc_link = nullptr;
  makecontext(&c.context, entry, 0);
}
#endif

constexpr size_t kStackBytes = 256 * 1024;  // room for ASan's larger frames; a guard page below each stack

enum class Wait { ready, barrier, warp, done };

struct FiberThread {
  FiberContext context;
  char* stack = nullptr;  // usable region [stack, stack + kStackBytes), a PROT_NONE page below it
  Wait wait = Wait::ready;
  uint3 index{};
  int lane = 0, warp = 0;
  // The pending warp operation.
  WarpOp op = WarpOp::sync;
  unsigned mask = 0;
  uint64_t bits = 0, result = 0;
  int arg = 0, width = 32;
#if GRADCORE_ASAN_FIBERS
  void* fake_stack = nullptr;
#endif
};

struct Grid {
  const char* kernel = "";
  dim3 grid, block;
  size_t shared_bytes = 0;
  void (*body)(void*) = nullptr;
  void* context = nullptr;
};

// Device-thread state (plain globals: only the device thread touches them while a grid runs).
const Grid* running = nullptr;
uint3 current_block{};
std::vector<FiberThread> threads;
int current = -1;
FiberContext scheduler_context;
#if GRADCORE_ASAN_FIBERS
const void* scheduler_stack_bottom = nullptr;
size_t scheduler_stack_size = 0;
#endif
std::atomic<bool> reversed_order{false};
std::vector<double> dynamic_shared;  // the launch's dynamic shared memory (doubles: aligned for any element type)
constexpr size_t kMaxSharedBytes = 48 * 1024;  // per block, without the opt-in attribute

[[noreturn]] void device_abort(const std::string& what) {
  std::fprintf(stderr, "gradcore emulated CUDA device: kernel %s, block (%u,%u,%u): %s\n",
               running ? running->kernel : "?", current_block.x, current_block.y, current_block.z, what.c_str());
  std::fflush(stderr);
  std::abort();
}

std::string thread_name(const FiberThread& t) {
  return "thread (" + std::to_string(t.index.x) + "," + std::to_string(t.index.y) + "," + std::to_string(t.index.z) + ")";
}

char* new_stack() {
  const size_t page = (size_t)sysconf(_SC_PAGESIZE);
  void* base = mmap(nullptr, kStackBytes + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (base == MAP_FAILED) device_abort("cannot map a fiber stack");
  mprotect(base, page, PROT_NONE);  // a stack overflow faults instead of corrupting the neighbour
  return static_cast<char*>(base) + page;
}

// Switches from the scheduler to fiber t and back (when t yields or finishes).
void switch_to(int t) {
  current = t;
  FiberThread& f = threads[t];
#if GRADCORE_ASAN_FIBERS
  void* fake = nullptr;
  __sanitizer_start_switch_fiber(&fake, f.stack, kStackBytes);
#endif
  switch_context(scheduler_context, f.context);
#if GRADCORE_ASAN_FIBERS
  __sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
#endif
  current = -1;
}

// Called on a fiber: back to the scheduler until it resumes this fiber.
void yield_to_scheduler() {
  FiberThread& f = threads[current];
#if GRADCORE_ASAN_FIBERS
  __sanitizer_start_switch_fiber(&f.fake_stack, scheduler_stack_bottom, scheduler_stack_size);
#endif
  switch_context(f.context, scheduler_context);
#if GRADCORE_ASAN_FIBERS
  __sanitizer_finish_switch_fiber(f.fake_stack, nullptr, nullptr);
#endif
}

void fiber_main() {
#if GRADCORE_ASAN_FIBERS
  __sanitizer_finish_switch_fiber(nullptr, &scheduler_stack_bottom, &scheduler_stack_size);
#endif
  running->body(running->context);
  threads[current].wait = Wait::done;
#if GRADCORE_ASAN_FIBERS
  __sanitizer_start_switch_fiber(nullptr, scheduler_stack_bottom, scheduler_stack_size);  // this fiber ends
#endif
  switch_context(threads[current].context, scheduler_context);  // never resumed
}

// This module's thread-local block on the calling (device) thread: the emulated shared memory.
struct TlsBlock {
  char* data = nullptr;
  size_t size = 0;
};
thread_local volatile char tls_anchor;  // touched first, so that the block exists on the device thread

TlsBlock find_shared_memory() {
  tls_anchor = 1;
  struct Search {
    uintptr_t code;  // an address inside this module
    TlsBlock found;
    bool module_found = false;
  } search{reinterpret_cast<uintptr_t>(&find_shared_memory), {}};
  dl_iterate_phdr(
      [](dl_phdr_info* info, size_t, void* data) -> int {
        Search& s = *static_cast<Search*>(data);
        bool ours = false;
        for (int i = 0; i < info->dlpi_phnum; ++i) {
          const ElfW(Phdr)& ph = info->dlpi_phdr[i];
          if (ph.p_type == PT_LOAD && s.code >= info->dlpi_addr + ph.p_vaddr &&
              s.code < info->dlpi_addr + ph.p_vaddr + ph.p_memsz)
            ours = true;
        }
        if (!ours) return 0;
        s.module_found = true;
        for (int i = 0; i < info->dlpi_phnum; ++i)
          if (info->dlpi_phdr[i].p_type == PT_TLS) {
            s.found.data = static_cast<char*>(info->dlpi_tls_data);
            s.found.size = info->dlpi_phdr[i].p_memsz;
          }
        return 1;
      },
      &search);
  if (!search.module_found || !search.found.data)
    device_abort("cannot find this module's thread-local block, which holds the emulated shared memory");
  return search.found;
}

// Releases one group of lanes of warp w waiting at a warp operation with the same mask, if all have arrived.
// Returns true if it released any.
bool release_warp(int first, int count) {
  bool released = false;
  for (int i = first; i < first + count; ++i) {
    FiberThread& t = threads[i];
    if (t.wait != Wait::warp) continue;
    const unsigned mask = t.mask;
    unsigned arrived = 0, present = 0;
    bool complete = true;
    for (int j = first; j < first + count; ++j) {
      const FiberThread& u = threads[j];
      present |= 1u << u.lane;
      if (!(mask >> u.lane & 1u)) continue;
      if (u.wait == Wait::warp && u.mask == mask && u.op == t.op) arrived |= 1u << u.lane;
      else if (u.wait == Wait::done)
        device_abort(thread_name(t) + " waits at a warp operation whose mask names lane " + std::to_string(u.lane) +
                     ", which has exited");
      else complete = false;
    }
    if ((mask & ~present) != 0u)
      device_abort(thread_name(t) + " uses a warp mask naming lanes that do not exist in its warp (block too small)");
    if (!complete) continue;
    // Every lane of the mask is here: compute the results, then let them run.
    for (int j = first; j < first + count; ++j) {
      FiberThread& u = threads[j];
      if (!(arrived >> u.lane & 1u)) continue;
      const int width = u.width, segment = u.lane / width * width;
      int source = u.lane;
      switch (u.op) {
        case WarpOp::shfl_idx: source = segment + ((u.arg % width) + width) % width; break;
        case WarpOp::shfl_up: source = u.lane - u.arg >= segment ? u.lane - u.arg : u.lane; break;
        case WarpOp::shfl_down: source = u.lane + u.arg < segment + width ? u.lane + u.arg : u.lane; break;
        case WarpOp::shfl_xor: source = (u.lane ^ u.arg) < segment + width ? (u.lane ^ u.arg) : u.lane; break;
        default: break;
      }
      if (u.op == WarpOp::ballot || u.op == WarpOp::any || u.op == WarpOp::all) {
        unsigned ballot = 0;
        for (int k = first; k < first + count; ++k)
          if ((arrived >> threads[k].lane & 1u) && threads[k].bits) ballot |= 1u << threads[k].lane;
        u.result = u.op == WarpOp::ballot ? ballot : u.op == WarpOp::any ? (ballot != 0) : (ballot == arrived);
      } else if (u.op != WarpOp::sync) {
        if (!(arrived >> source & 1u))
          device_abort(thread_name(u) + " shuffles from lane " + std::to_string(source) + ", outside the mask");
        u.result = threads[first + source].bits;
      }
    }
    for (int j = first; j < first + count; ++j)
      if (arrived >> threads[j].lane & 1u) threads[j].wait = Wait::ready;
    released = true;
  }
  return released;
}

void run_block(const Grid& g, uint3 block_idx, const TlsBlock& shared) {
  current_block = block_idx;
  if (shared.data) std::memset(shared.data, 0xFF, shared.size);  // the block's shared memory starts as NaN bytes
  if (!dynamic_shared.empty()) std::memset(dynamic_shared.data(), 0xFF, dynamic_shared.size() * sizeof(double));
  const int n = (int)(g.block.x * g.block.y * g.block.z);
  if ((int)threads.size() < n) threads.resize(n);
  for (int i = 0; i < n; ++i) {
    FiberThread& t = threads[i];
    if (!t.stack) t.stack = new_stack();
    t.index = {(unsigned)i % g.block.x, (unsigned)i / g.block.x % g.block.y, (unsigned)i / (g.block.x * g.block.y)};
    t.lane = i % 32;
    t.warp = i / 32;
    t.wait = Wait::ready;
    make_context(t.context, t.stack, kStackBytes, fiber_main);
  }
  const bool reversed = reversed_order.load();
  for (;;) {
    // Run every ready thread until it waits or ends.
    for (int k = 0; k < n; ++k) {
      const int i = reversed ? n - 1 - k : k;
      if (threads[i].wait == Wait::ready) switch_to(i);
    }
    int done = 0, at_barrier = 0, at_warp = 0;
    for (int i = 0; i < n; ++i) {
      done += threads[i].wait == Wait::done;
      at_barrier += threads[i].wait == Wait::barrier;
      at_warp += threads[i].wait == Wait::warp;
    }
    if (done == n) return;
    bool released = false;
    for (int w = 0; w * 32 < n; ++w) released |= release_warp(w * 32, std::min(32, n - w * 32));
    if (released) continue;
    if (at_barrier > 0 && at_warp == 0 && done == 0) {
      for (int i = 0; i < n; ++i) threads[i].wait = Wait::ready;
      continue;
    }
    // Nothing can proceed: name who waits where.
    std::string who;
    for (int i = 0; i < n && who.size() < 400; ++i)
      if (threads[i].wait == Wait::done) {
        who = thread_name(threads[i]) + " exited";
        break;
      }
    device_abort("deadlock: " + std::to_string(at_barrier) + " thread(s) wait at __syncthreads, " +
                 std::to_string(at_warp) + " at a warp operation, " + std::to_string(done) + " have exited" +
                 (who.empty() ? std::string() : " (" + who + ")") +
                 ": a thread skipped a barrier that the rest of its block reached");
  }
}

// A kernel that touches memory it may not (an illegal address, a fiber's stack overflowing into its guard page)
// faults on the device thread: the handler jumps back to the grid's start, which abandons the grid and leaves a
// sticky cudaErrorIllegalAddress, as a GPU would. Faults anywhere else go to the handler that was there before.
sigjmp_buf fault_jump;
volatile sig_atomic_t in_kernel = 0;
pthread_t device_thread_id;
void* volatile fault_address = nullptr;
struct sigaction previous_segv, previous_bus;

void on_fault(int sig, siginfo_t* info, void*) {
  if (in_kernel && pthread_equal(pthread_self(), device_thread_id)) {
    in_kernel = 0;
    fault_address = info->si_addr;
#if GRADCORE_ASAN_FIBERS
    __sanitizer_start_switch_fiber(nullptr, nullptr, 0);
#endif
    siglongjmp(fault_jump, 1);
  }
  sigaction(sig, sig == SIGSEGV ? &previous_segv : &previous_bus, nullptr);  // not ours: it faults again, there
}

void install_fault_handler() {
  device_thread_id = pthread_self();
  static std::vector<char> alternate_stack(1 << 16);  // the handler must run when a fiber's stack is exhausted
  stack_t ss{};
  ss.ss_sp = alternate_stack.data();
  ss.ss_size = alternate_stack.size();
  sigaltstack(&ss, nullptr);
  static bool installed = false;  // once per process image (a forked child inherits the handler)
  if (installed) return;
  installed = true;
  struct sigaction action {};
  action.sa_sigaction = on_fault;
  action.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigemptyset(&action.sa_mask);
  sigaction(SIGSEGV, &action, &previous_segv);
  sigaction(SIGBUS, &action, &previous_bus);
}

void run_grid_on_device_thread(const Grid& g) {
  static const TlsBlock shared = find_shared_memory();  // device thread only
  running = &g;
  dynamic_shared.assign((g.shared_bytes + sizeof(double) - 1) / sizeof(double), 0.0);
  if (sigsetjmp(fault_jump, 1)) {
#if GRADCORE_ASAN_FIBERS
    __sanitizer_finish_switch_fiber(nullptr, nullptr, nullptr);
#endif
    std::fprintf(stderr, "gradcore emulated CUDA device: kernel %s, block (%u,%u,%u), %s: illegal address %p\n",
                 g.kernel, current_block.x, current_block.y, current_block.z,
                 current >= 0 ? thread_name(threads[current]).c_str() : "?", fault_address);
    record_kernel_fault(cudaErrorIllegalAddress);
    current = -1;
    running = nullptr;
    return;
  }
  const uint64_t blocks = (uint64_t)g.grid.x * g.grid.y * g.grid.z;
  const bool reversed = reversed_order.load();
  in_kernel = 1;
  for (uint64_t k = 0; k < blocks; ++k) {
    const uint64_t b = reversed ? blocks - 1 - k : k;
    run_block(g, {(unsigned)(b % g.grid.x), (unsigned)(b / g.grid.x % g.grid.y), (unsigned)(b / ((uint64_t)g.grid.x * g.grid.y))},
              shared);
  }
  in_kernel = 0;
  running = nullptr;
}

// The device thread and its one-slot queue.
struct DeviceThread {
  std::mutex launch_mutex;  // one launch at a time, from any host thread
  std::mutex m;
  std::condition_variable cv;
  const Grid* pending = nullptr;
  bool finished = false;
  std::thread worker;

  DeviceThread() {
    worker = std::thread([this] {
      install_fault_handler();
      for (;;) {
        std::unique_lock<std::mutex> lock(m);
        cv.wait(lock, [this] { return pending != nullptr; });
        const Grid* g = pending;
        lock.unlock();
        run_grid_on_device_thread(*g);
        lock.lock();
        pending = nullptr;
        finished = true;
        cv.notify_all();
      }
    });
    worker.detach();  // lives as long as the process; never joined at exit
  }

  void run(const Grid& g) {
    std::lock_guard<std::mutex> one_at_a_time(launch_mutex);
    std::unique_lock<std::mutex> lock(m);
    pending = &g;
    finished = false;
    cv.notify_all();
    cv.wait(lock, [this] { return finished; });
  }
};

// Never destroyed: the thread may outlive static destructors. A child process made by fork() has no device thread
// (only the forking thread is copied), so it starts a fresh one at its first launch.
DeviceThread* device = nullptr;
std::mutex device_mutex;

DeviceThread& device_thread() {
  static const bool fork_handler = [] {
    pthread_atfork(nullptr, nullptr, [] { new (&device_mutex) std::mutex(); device = nullptr; });
    return true;
  }();
  (void)fork_handler;
  std::lock_guard<std::mutex> lock(device_mutex);
  if (!device) device = new DeviceThread();
  return *device;
}

bool valid_configuration(dim3 grid, dim3 block) {
  const uint64_t threads_per_block = (uint64_t)block.x * block.y * block.z;
  return grid.x >= 1 && grid.y >= 1 && grid.z >= 1 && grid.x <= 2147483647u && grid.y <= 65535 && grid.z <= 65535 &&
         block.x >= 1 && block.y >= 1 && block.z >= 1 && block.x <= 1024 && block.y <= 1024 && block.z <= 64 &&
         threads_per_block <= 1024;
}

}  // namespace

void* dynamic_shared_memory() { return dynamic_shared.empty() ? nullptr : dynamic_shared.data(); }

uint3 thread_index() { return threads[current].index; }
uint3 block_index() { return current_block; }
dim3 block_dim() { return running->block; }
dim3 grid_dim() { return running->grid; }

void block_barrier() {
  FiberThread& t = threads[current];
  t.wait = Wait::barrier;
  yield_to_scheduler();
}

uint64_t warp_exchange(WarpOp op, unsigned mask, uint64_t bits, int arg, int width) {
  FiberThread& t = threads[current];
  if (width < 1 || width > 32 || (width & (width - 1)) != 0)
    device_abort(thread_name(t) + ": warp shuffle width " + std::to_string(width) + " is not a power of 2 up to 32");
  if (!(mask >> t.lane & 1u))
    device_abort(thread_name(t) + " calls a warp operation whose mask does not name its own lane");
  t.wait = Wait::warp;
  t.op = op;
  t.mask = mask;
  t.bits = bits;
  t.arg = arg;
  t.width = width;
  yield_to_scheduler();
  return threads[current].result;
}

void run_grid(const char* kernel_name, dim3 grid, dim3 block, size_t shared_bytes, void (*body)(void*),
              void* context) {
  if (!valid_configuration(grid, block)) {
    record_launch_error(cudaErrorInvalidConfiguration);
    return;
  }
  if (shared_bytes > kMaxSharedBytes) {
    record_launch_error(cudaErrorInvalidValue);
    return;
  }
  Grid g{kernel_name, grid, block, shared_bytes, body, context};
  device_thread().run(g);
}

void set_thread_order(bool reversed) { reversed_order.store(reversed); }
bool thread_order_reversed() { return reversed_order.load(); }

}  // namespace gradcore::cuda::emulation

void __syncthreads() { ::gradcore::cuda::emulation::block_barrier(); }
