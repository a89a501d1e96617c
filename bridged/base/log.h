/* The daemon's logger: one line per event on stderr (for journald), every
 * line passed through the redactor, control characters escaped.
 *
 * Lines: "<time> <level> <text>"; when stderr is journald's stream
 * ($JOURNAL_STREAM), each line also starts with "<N>" (sd-daemon priority).
 * No line ever holds a secret: callers never log one, and the redactor
 * masks the values of Authorization*, signature, token, secret, OTP and
 * authCode keys (header, JSON and key=value forms) and the word after
 * "Bearer" as a second line of defence. Single-threaded (the loop's thread). */
#ifndef DOKU_BASE_LOG_H
#define DOKU_BASE_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define LOG_LINE_MAX 2048  /* longest line written; longer text is cut */
#define LOG_REDACTED "[redacted]"

enum log_level {
	LOG_LVL_ERROR = 3,
	LOG_LVL_WARNING = 4,
	LOG_LVL_INFO = 6,
	LOG_LVL_DEBUG = 7,
};

/* Read $JOURNAL_STREAM and set the threshold. */
void log_setup(int level);
void log_set_level(int level);
bool log_enabled(int level);

/* "error", "warning", "info", "debug" -> level; -1 if unknown. */
int log_level_parse(const char *s);

void log_msg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The facts of one finished call: the one line per call. Strings may be NULL. */
struct log_call {
	uid_t uid;
	uint64_t conn;           /* connection number */
	uint64_t id;             /* the Call's id */
	const char *method;      /* short name, "GetBalance", or what the caller sent */
	const char *profile;
	const char *external_id;
	unsigned http;           /* 0: no HTTP answer */
	const char *response_code;
	uint64_t duration_us;
	const char *outcome;     /* "DONE", "NOT_DONE", "UNKNOWN" */
	const char *code;        /* gRPC code name */
	const char *message;     /* status message, for failures */
	unsigned retries;        /* token refresh retries */
	bool detached;           /* the caller left before the reply */
	bool routine;            /* a probe (Health): its success is logged at debug */
};

void log_call(const struct log_call *c);

/* Copy in[0..len) to out[outsz] (always NUL-terminated) with the values of
 * sensitive keys and Bearer credentials replaced by LOG_REDACTED. Returns the
 * length written (truncated to outsz - 1). */
size_t log_redact(const char *in, size_t len, char *out, size_t outsz);

#endif
