#ifndef CARMA_MICROHTTPD_SHIM_H
#define CARMA_MICROHTTPD_SHIM_H

#include <stdint.h>
#include <string.h>
#include <sys/types.h>
#include <sys/socket.h>
#include <microhttpd.h>

/*
 * Swift does not import C variadic functions, and MHD_start_daemon, MHD_get_connection_info and
 * MHD_get_daemon_info are variadic. The wrappers below give each call the fixed argument list that
 * the Swift side needs. Nothing else lives here.
 */

/* The settings the Swift server passes to carma_mhd_start, one field per MHD option it uses. */
struct carma_mhd_settings {
    unsigned int flags;
    int listen_fd;
    unsigned int thread_pool_size;
    unsigned int connection_timeout_seconds;
    unsigned int connection_limit;
    unsigned int per_ip_connection_limit;
    size_t connection_memory_limit;
    /* MHD_OPTION_STRICT_FOR_CLIENT: 1 refuses HTTP/1.1 without Host and spaces in the target. */
    int strict_for_client;
};

/*
 * MHD percent-decodes the path and the query arguments before the handler sees them, which would turn
 * "%2F" into "/" and "%00" into the end of the C string. This callback keeps them raw so that the
 * Swift router decodes each path segment and query argument itself.
 */
static inline size_t carma_mhd_keep_escaped(void *cls, struct MHD_Connection *connection, char *s) {
    (void)cls;
    (void)connection;
    return strlen(s);
}

/* MHD_start_daemon is variadic: start a daemon from one option array built from the settings. */
static inline struct MHD_Daemon *carma_mhd_start(
    const struct carma_mhd_settings *settings,
    MHD_AccessHandlerCallback handler,
    void *handler_cls,
    MHD_RequestCompletedCallback completed,
    void *completed_cls
) {
    struct MHD_OptionItem options[] = {
        { MHD_OPTION_LISTEN_SOCKET, settings->listen_fd, NULL },
        { MHD_OPTION_THREAD_POOL_SIZE, settings->thread_pool_size, NULL },
        { MHD_OPTION_CONNECTION_TIMEOUT, settings->connection_timeout_seconds, NULL },
        { MHD_OPTION_CONNECTION_LIMIT, settings->connection_limit, NULL },
        { MHD_OPTION_PER_IP_CONNECTION_LIMIT, settings->per_ip_connection_limit, NULL },
        { MHD_OPTION_CONNECTION_MEMORY_LIMIT, (intptr_t)settings->connection_memory_limit, NULL },
        { MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)completed, completed_cls },
        { MHD_OPTION_UNESCAPE_CALLBACK, (intptr_t)carma_mhd_keep_escaped, NULL },
        { MHD_OPTION_SIGPIPE_HANDLED_BY_APP, 1, NULL },
        { MHD_OPTION_STRICT_FOR_CLIENT, settings->strict_for_client, NULL },
        { MHD_OPTION_END, 0, NULL },
    };
    return MHD_start_daemon(
        settings->flags, 0, NULL, NULL, handler, handler_cls,
        MHD_OPTION_ARRAY, options, MHD_OPTION_END);
}

/* MHD_get_connection_info is variadic: the peer address of a connection, or NULL. */
static inline const struct sockaddr *carma_mhd_client_address(struct MHD_Connection *connection) {
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    return info == NULL ? NULL : info->client_addr;
}

/* MHD_get_daemon_info is variadic: the number of open connections. */
static inline unsigned int carma_mhd_current_connections(struct MHD_Daemon *daemon) {
    const union MHD_DaemonInfo *info =
        MHD_get_daemon_info(daemon, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
    return info == NULL ? 0 : info->num_connections;
}

#endif
