// The helper that lends a foreground embedding the second core (carma_team in CEncoderKernels.h).
//
// One job at a time, handed over by an atomic state: the owner posts a job, runs its own half, then
// either takes the job back (the helper had not started it: it was asleep, or its core was busy)
// or waits for the helper to finish it. So a helper that is slow to arrive costs nothing but the
// post; it never makes the owner wait for a job nobody has begun. While owned, the helper spins
// between jobs (they come every few tens of microseconds); when released, it sleeps on a condition
// variable and uses no CPU.

#include "CEncoderKernels.h"
#include "internal.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#if defined(__x86_64__)
#include <immintrin.h>
#define RELAX() _mm_pause()
#else
#define RELAX() ((void)0)
#endif

enum { IDLE, POSTED, TAKEN, DONE };

struct carma_team {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    atomic_int owned;   // 1 while a caller holds the team
    atomic_int active;  // the helper spins for jobs while 1
    atomic_int stop;
    atomic_int state;   // the current job's
    carma_job job;
    void *argument;
    int result;
};

static void *helper(void *context) {
    carma_team *team = context;
    for (;;) {
        pthread_mutex_lock(&team->lock);
        while (!atomic_load(&team->active) && !atomic_load(&team->stop)) pthread_cond_wait(&team->wake, &team->lock);
        pthread_mutex_unlock(&team->lock);
        if (atomic_load(&team->stop)) return NULL;
        while (atomic_load_explicit(&team->active, memory_order_acquire)) {
            int posted = POSTED;
            if (atomic_load_explicit(&team->state, memory_order_acquire) == POSTED
                && atomic_compare_exchange_strong(&team->state, &posted, TAKEN)) {
                team->result = team->job(team->argument);
                atomic_store_explicit(&team->state, DONE, memory_order_release);
            } else {
                RELAX();
            }
        }
    }
}

carma_team *carma_team_create(void) {
    carma_team *team = calloc(1, sizeof *team);
    if (!team) return NULL;
    pthread_mutex_init(&team->lock, NULL);
    pthread_cond_init(&team->wake, NULL);
    if (pthread_create(&team->thread, NULL, helper, team) != 0) {
        pthread_cond_destroy(&team->wake);
        pthread_mutex_destroy(&team->lock);
        free(team);
        return NULL;
    }
    return team;
}

void carma_team_destroy(carma_team *team) {
    if (!team) return;
    pthread_mutex_lock(&team->lock);
    atomic_store(&team->stop, 1);
    pthread_cond_signal(&team->wake);
    pthread_mutex_unlock(&team->lock);
    pthread_join(team->thread, NULL);
    pthread_cond_destroy(&team->wake);
    pthread_mutex_destroy(&team->lock);
    free(team);
}

int carma_team_acquire(carma_team *team) {
    int unowned = 0;
    if (!team || !atomic_compare_exchange_strong(&team->owned, &unowned, 1)) return 0;
    atomic_store(&team->state, IDLE);
    pthread_mutex_lock(&team->lock);
    atomic_store(&team->active, 1);
    pthread_cond_signal(&team->wake);
    pthread_mutex_unlock(&team->lock);
    return 1;
}

void carma_team_release(carma_team *team) {
    atomic_store(&team->active, 0);
    atomic_store(&team->owned, 0);
}

void carma_team_post(carma_team *team, carma_job job, void *argument) {
    team->job = job;
    team->argument = argument;
    atomic_store_explicit(&team->state, POSTED, memory_order_release);
}

int carma_team_finish(carma_team *team) {
    int posted = POSTED;
    int result;
    if (atomic_compare_exchange_strong(&team->state, &posted, TAKEN)) {
        result = team->job(team->argument);
    } else {
        while (atomic_load_explicit(&team->state, memory_order_acquire) != DONE) RELAX();
        result = team->result;
    }
    atomic_store_explicit(&team->state, IDLE, memory_order_release);
    return result;
}
