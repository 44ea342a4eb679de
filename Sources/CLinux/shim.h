#ifndef CARMA_LINUX_SHIM_H
#define CARMA_LINUX_SHIM_H

#include <unistd.h>

/*
 * glibc declares syncfs(2) only under _GNU_SOURCE, which Swift's Glibc module is not built with.
 * The store uses it to make a whole batch of payload files durable with one call per file system.
 */
extern int syncfs(int fd);

#endif
