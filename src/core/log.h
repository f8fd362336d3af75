/* Logging in glog's layout ("I1126 00:10:33.123456 pid file:line] msg"), so
 * that tools which parse Caffe logs read ours.  Writes to stderr. */
#ifndef CREMA_CORE_LOG_H
#define CREMA_CORE_LOG_H

#include "core/error.h"

void log_write(char severity, const char *file, int line, const char *fmt, ...)
    CREMA_PRINTF(4, 5);

#define LOG_INFO(...) log_write('I', __FILE__, __LINE__, __VA_ARGS__)
#define LOG_WARN(...) log_write('W', __FILE__, __LINE__, __VA_ARGS__)
#define LOG_ERROR(...) log_write('E', __FILE__, __LINE__, __VA_ARGS__)

#endif
