// Fused multiply-add across statements, as -ffp-contract=fast did (no unsafeFlags: SwiftPM refuses them in dependencies).
#pragma clang fp contract(fast)
// The persistent thread pool shared by the GEMM, the attention heads and the row kernels. See vit_gemm.h.

#include "vit_gemm.h"

#include "gemm_kernels.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

//
// One job at a time. The job's claim word `ticket` holds (generation << 32 | next index): a thread takes a chunk of
// indices with a compare-and-swap that also checks the generation, so a late worker can never run a chunk of the next
// job with the previous job's function. `slots` is (generation << 32 | workers still allowed to join). The caller
// publishes a job by bumping `gen`; it returns once `done` == n, after which no thread touches fn/context again.

#define VKP_MAX_THREADS 64
#define VKP_SPIN_NS 50000 // idle workers (and a waiting caller) spin this long before sleeping

typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t wake;     // workers sleep here for a new generation
    pthread_cond_t finished; // the caller sleeps here for done == n
    _Atomic uint32_t gen;
    _Atomic uint64_t ticket;
    _Atomic uint64_t slots;
    _Atomic size_t done;
    _Atomic int sleepers;
    _Atomic int caller_waiting;
    _Atomic int busy; // a job is running (trylock for callers)
    _Atomic(void (*)(void *, size_t)) fn;
    _Atomic(void *) context;
    _Atomic size_t n;
    _Atomic size_t chunk;
    _Atomic int workers; // started so far (only grows, under lock)
} vkp_pool;

static vkp_pool pool = {
    .lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER, .finished = PTHREAD_COND_INITIALIZER};

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static inline uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/// Claims and runs chunks of generation g until none is left.
static void vkp_work(uint32_t g) {
    for (;;) {
        uint64_t t = atomic_load(&pool.ticket);
        if ((uint32_t)(t >> 32) != g) return;
        size_t n = atomic_load_explicit(&pool.n, memory_order_acquire);
        size_t chunk = atomic_load_explicit(&pool.chunk, memory_order_acquire);
        size_t i = (uint32_t)t;
        if (i >= n) return;
        size_t e = n - i < chunk ? n : i + chunk;
        if (!atomic_compare_exchange_weak(&pool.ticket, &t, ((uint64_t)g << 32) | (uint64_t)e)) continue;
        // The chunk [i, e) is ours and not done, so the caller is still inside this job: fn/context are this job's.
        void (*fn)(void *, size_t) = atomic_load_explicit(&pool.fn, memory_order_relaxed);
        void *context = atomic_load_explicit(&pool.context, memory_order_relaxed);
        for (size_t j = i; j < e; j++) fn(context, j);
        size_t before = atomic_fetch_add(&pool.done, e - i);
        if (before + (e - i) == n && atomic_load(&pool.caller_waiting)) {
            pthread_mutex_lock(&pool.lock);
            pthread_cond_signal(&pool.finished);
            pthread_mutex_unlock(&pool.lock);
        }
    }
}

static void *vkp_worker(void *start_gen) {
    // The generation current when this worker was created: a job published before the thread got going is still new.
    uint32_t seen = (uint32_t)(uintptr_t)start_gen;
    for (;;) {
        uint32_t g = atomic_load(&pool.gen);
        if (g == seen) {
            uint64_t start = now_ns();
            for (unsigned spins = 1;; spins++) {
                cpu_relax();
                if ((g = atomic_load(&pool.gen)) != seen) break;
                if ((spins & 255) == 0 && now_ns() - start > VKP_SPIN_NS) {
                    pthread_mutex_lock(&pool.lock);
                    atomic_fetch_add(&pool.sleepers, 1);
                    while ((g = atomic_load(&pool.gen)) == seen) pthread_cond_wait(&pool.wake, &pool.lock);
                    atomic_fetch_sub(&pool.sleepers, 1);
                    pthread_mutex_unlock(&pool.lock);
                    break;
                }
            }
        }
        seen = g;
        // Join generation g if it still has a free slot.
        uint64_t s = atomic_load(&pool.slots);
        int joined = 0;
        while ((uint32_t)(s >> 32) == g && (uint32_t)s > 0) {
            if (atomic_compare_exchange_weak(&pool.slots, &s, s - 1)) {
                joined = 1;
                break;
            }
        }
        if (joined) vkp_work(g);
    }
    return NULL;
}

/// Starts workers until there are `want` (capped); returns how many there are.
static int vkp_ensure_workers(int want) {
    if (want > VKP_MAX_THREADS - 1) want = VKP_MAX_THREADS - 1;
    int have = atomic_load(&pool.workers);
    if (have >= want) return have;
    pthread_mutex_lock(&pool.lock);
    while (pool.workers < want) {
        pthread_t thread;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        pthread_attr_setstacksize(&attr, 1 << 20);
        int rc = pthread_create(&thread, &attr, vkp_worker, (void *)(uintptr_t)atomic_load(&pool.gen));
        pthread_attr_destroy(&attr);
        if (rc != 0) break;
        pool.workers++;
    }
    have = pool.workers;
    pthread_mutex_unlock(&pool.lock);
    return have;
}

int vk_pool_workers(void) { return atomic_load(&pool.workers); }

static void vkp_serial(size_t begin, size_t end, void (*fn)(void *, size_t), void *context) {
    for (size_t i = begin; i < end; i++) fn(context, i);
}

/// Runs fn over [0, n) in chunks of `chunk` indices on up to `threads` threads.
static void vkp_run(size_t n, int threads, size_t chunk, void (*fn)(void *, size_t), void *context) {
    if (n == 0) return;
    if (threads > VKP_MAX_THREADS) threads = VKP_MAX_THREADS;
    if (chunk == 0) chunk = 1;
    size_t chunks = (n + chunk - 1) / chunk;
    if ((size_t)threads > chunks) threads = (int)chunks;
    int expected = 0;
    if (threads <= 1 || !atomic_compare_exchange_strong(&pool.busy, &expected, 1)) {
        vkp_serial(0, n, fn, context);
        return;
    }
    // The ticket holds 32-bit indices; ranges this large never occur in the engine: run them serially.
    if (n > ((size_t)1 << 31)) {
        atomic_store(&pool.busy, 0);
        vkp_serial(0, n, fn, context);
        return;
    }
    int workers = vkp_ensure_workers(threads - 1);
    if (workers <= 0) {
        atomic_store(&pool.busy, 0);
        vkp_serial(0, n, fn, context);
        return;
    }
    if (threads - 1 > workers) threads = workers + 1;

    uint32_t g = atomic_load(&pool.gen) + 1;
    // The new generation's claim word first: a worker still in vkp_work for the previous job may read this job's n
    // and chunk, but (release / acquire) its claim with the previous generation's ticket then fails.
    atomic_store(&pool.ticket, (uint64_t)g << 32);
    atomic_store_explicit(&pool.fn, fn, memory_order_relaxed);
    atomic_store_explicit(&pool.context, context, memory_order_relaxed);
    atomic_store_explicit(&pool.n, n, memory_order_release);
    atomic_store_explicit(&pool.chunk, chunk, memory_order_release);
    atomic_store(&pool.done, 0);
    atomic_store(&pool.slots, ((uint64_t)g << 32) | (uint32_t)(threads - 1));
    atomic_store(&pool.gen, g);
    if (atomic_load(&pool.sleepers) > 0) {
        pthread_mutex_lock(&pool.lock);
        pthread_cond_broadcast(&pool.wake);
        pthread_mutex_unlock(&pool.lock);
    }

    vkp_work(g);

    if (atomic_load(&pool.done) != n) {
        uint64_t start = now_ns();
        for (unsigned spins = 1; atomic_load(&pool.done) != n; spins++) {
            cpu_relax();
            if ((spins & 255) == 0 && now_ns() - start > VKP_SPIN_NS) {
                pthread_mutex_lock(&pool.lock);
                atomic_store(&pool.caller_waiting, 1);
                while (atomic_load(&pool.done) != n) pthread_cond_wait(&pool.finished, &pool.lock);
                atomic_store(&pool.caller_waiting, 0);
                pthread_mutex_unlock(&pool.lock);
                break;
            }
        }
    }
    atomic_store(&pool.busy, 0);
}

void vk_parallel_for(size_t n, int threads, void (*fn)(void *context, size_t i), void *context) {
    if (n == 0) return;
    if (threads < 1) threads = 1;
    // A few chunks per thread: dynamic balance (other processes share the cores) at a small claiming cost.
    size_t chunk = threads > 1 ? n / ((size_t)threads * 4) : n;
    vkp_run(n, threads, chunk ? chunk : 1, fn, context);
}


void vk_parallel_tasks(size_t n, int threads, void (*fn)(void *context, size_t i), void *context) {
    vkp_run(n, threads, 1, fn, context);
}
