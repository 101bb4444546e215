/*
 * bench_cores.c - what a second thread can give on this machine at the
 * moment: about 2x when the machine is quiet, less when other work takes the
 * CPUs or the caches, so it tells whether a "two workers / one" figure was
 * taken on a quiet machine.
 *
 *   bench_cores [-r ROUNDS] [CPU_A CPU_B]
 *
 * Three loops, each timed alone on CPU_A, then as two copies at once on
 * CPU_A and CPU_B, in turn ROUNDS times (default 5); the scaling is twice
 * the lone time over the pair's wall time (2.0: the second thread costs the
 * first nothing). The loops stand for the three kinds of work in the censor:
 *
 *   chain   one dependent multiply-xorshift chain: waits on its own latency,
 *           uses few of the core's units (the parsers' byte loops);
 *   ilp     eight independent chains: keeps the core's ALUs busy (the
 *           kernel's copies, checksums and the network stack's bookkeeping);
 *   dram    a pointer chase over 64 MB on 2 MB pages: waits on memory (the
 *           flow table and the name matcher's lookups).
 *
 * Two cores of their own give about 2.0 for all three. Two hardware threads
 * of one core (SMT) give about 2.0 for chain and dram, and much less for
 * ilp: the two threads share one core's execution units. lscpu inside a VM
 * does not always say which it is; this does.
 *
 * Prints one line per loop and a last line `key chain=X ilp=Y dram=Z`
 * (medians of the rounds) for bench/run.sh.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "mono.h"

enum { CHASE_BYTES = 64 << 20, LINE = 64 };

struct job {
    int cpu, kind;
    uint64_t result;
};

static uint64_t *chase; /* CHASE_BYTES / 8 words; word i of each line points to the next line */

static uint64_t loop_chain(void)
{
    uint64_t x = 1;
    for (uint64_t i = 0; i < 300000000ull; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        x ^= x >> 7;
    }
    return x;
}

static uint64_t loop_ilp(void)
{
    uint64_t x[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    for (uint64_t i = 0; i < 150000000ull; i++)
        for (int k = 0; k < 8; k++)
            x[k] = (x[k] ^ (x[k] >> 7)) + 0x9e3779b97f4a7c15ull;
    return x[0] ^ x[1] ^ x[2] ^ x[3] ^ x[4] ^ x[5] ^ x[6] ^ x[7];
}

static uint64_t loop_dram(void)
{
    uint64_t at = 0;
    for (uint64_t i = 0; i < 4000000ull; i++)
        at = chase[at];
    return at;
}

static void *run(void *arg)
{
    struct job *j = arg;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(j->cpu, &set);
    pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
    j->result = j->kind == 0 ? loop_chain() : j->kind == 1 ? loop_ilp() : loop_dram();
    return NULL;
}

/* Wall seconds of |n| copies of loop |kind| at once, on cpus[0..n). */
static double timed(int kind, const int *cpus, int n)
{
    pthread_t t[2];
    struct job j[2];
    uint64_t t0 = sd_mono_ns();
    for (int i = 0; i < n; i++) {
        j[i] = (struct job){.cpu = cpus[i], .kind = kind};
        if (pthread_create(&t[i], NULL, run, &j[i]) != 0) {
            perror("bench_cores: pthread_create");
            exit(1);
        }
    }
    for (int i = 0; i < n; i++)
        pthread_join(t[i], NULL);
    volatile uint64_t sink = j[0].result;
    (void)sink;
    return (double)(sd_mono_ns() - t0) / 1e9;
}

/* A random cyclic order of the lines (Sattolo's shuffle), so that the
 * prefetchers cannot guess the next one. */
static int make_chase(void)
{
    size_t lines = CHASE_BYTES / LINE, step = LINE / sizeof(uint64_t);
    chase = mmap(NULL, CHASE_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (chase == MAP_FAILED)
        return -1;
    madvise(chase, CHASE_BYTES, MADV_HUGEPAGE);
    uint32_t *order = malloc(lines * sizeof(*order));
    if (!order)
        return -1;
    for (size_t i = 0; i < lines; i++)
        order[i] = (uint32_t)i;
    uint64_t r = 0x2545f4914f6cdd1dull;
    for (size_t i = lines - 1; i > 0; i--) {
        r ^= r << 13, r ^= r >> 7, r ^= r << 17;
        size_t k = (size_t)(r % i);
        uint32_t x = order[i];
        order[i] = order[k];
        order[k] = x;
    }
    for (size_t i = 0; i < lines; i++)
        chase[order[i] * step] = order[(i + 1) % lines] * step;
    free(order);
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    int rounds = 5, cpus[2] = {0, 1}, ai = 1;
    if (ai + 1 < argc && !strcmp(argv[ai], "-r")) {
        rounds = atoi(argv[ai + 1]);
        ai += 2;
    }
    if (ai + 1 < argc) {
        cpus[0] = atoi(argv[ai]);
        cpus[1] = atoi(argv[ai + 1]);
        ai += 2;
    }
    if (ai != argc || rounds < 1 || rounds > 100) {
        fprintf(stderr, "usage: bench_cores [-r ROUNDS] [CPU_A CPU_B]\n");
        return 2;
    }
    if (make_chase() < 0) {
        perror("bench_cores: memory for the chase");
        return 1;
    }
    static const char *const names[] = {"chain", "ilp", "dram"};
    double med[3];
    for (int k = 0; k < 3; k++) {
        double s[100];
        timed(k, cpus, 1); /* warm: page faults, frequency */
        for (int r = 0; r < rounds; r++) {
            double one = timed(k, cpus, 1), two = timed(k, cpus, 2);
            s[r] = 2 * one / two;
        }
        qsort(s, (size_t)rounds, sizeof(s[0]), cmp_double);
        med[k] = rounds % 2 ? s[rounds / 2] : (s[rounds / 2 - 1] + s[rounds / 2]) / 2;
        printf("%-5s two threads / one on CPUs %d and %d: %.2fx (median of %d; lowest %.2f, highest %.2f)\n", names[k],
               cpus[0], cpus[1], med[k], rounds, s[0], s[rounds - 1]);
        fflush(stdout);
    }
    printf("key chain=%.3f ilp=%.3f dram=%.3f\n", med[0], med[1], med[2]);
    return 0;
}
