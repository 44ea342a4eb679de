// Thread priority for the background embedder's extra threads. In C because Linux sets a
// thread's niceness by its kernel thread id, which only the gettid system call gives (glibc's
// wrapper is not visible to Swift's Glibc module here, and syscall(2) is variadic).

#define _GNU_SOURCE
#include "CEncoderKernels.h"

#if defined(__linux__)
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

int carma_set_thread_niceness(int niceness) {
    return setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), niceness);
}
#else
int carma_set_thread_niceness(int niceness) { (void)niceness; return -1; }
#endif
