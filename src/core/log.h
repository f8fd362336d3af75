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

/* The same under a caller's crema_options.log_level: the library logs
 * through these, so that a host can quiet it; the commands log at
 * CREMA_LOG_INFO. */
#define LOG_INFO_AT(level, ...)                                                                  \
  do {                                                                                          \
    if ((int)(level) <= CREMA_LOG_INFO)                                                         \
      LOG_INFO(__VA_ARGS__);                                                                    \
  } while (0)
#define LOG_WARN_AT(level, ...)                                                                  \
  do {                                                                                          \
    if ((int)(level) <= CREMA_LOG_WARNING)                                                      \
      LOG_WARN(__VA_ARGS__);                                                                    \
  } while (0)
#define LOG_ERROR_AT(level, ...)                                                                 \
  do {                                                                                          \
    if ((int)(level) <= CREMA_LOG_ERROR)                                                        \
      LOG_ERROR(__VA_ARGS__);                                                                   \
  } while (0)

#endif
