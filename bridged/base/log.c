/* Redacting line logger on stderr. */
#include "log.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define LOG_KEY_MAX 64 /* longest key the redactor inspects */

static int log_threshold = LOG_LVL_INFO;
static bool log_journal;

static const char *const sensitive[] = {
	"authorization", "signature", "token", "secret", "otp", "password",
	"authcode", "auth_code", "privatekey", "private_key", "credential", NULL,
};

void log_setup(int level)
{
	const char *js = getenv("JOURNAL_STREAM");
	struct stat st;
	unsigned long long dev, ino;

	log_threshold = level;
	log_journal = false;
	if (js != NULL && sscanf(js, "%llu:%llu", &dev, &ino) == 2 &&
	    fstat(STDERR_FILENO, &st) == 0 && (unsigned long long)st.st_dev == dev &&
	    (unsigned long long)st.st_ino == ino)
		log_journal = true;
}

void log_set_level(int level)
{
	log_threshold = level;
}

bool log_enabled(int level)
{
	return level <= log_threshold;
}

int log_level_parse(const char *s)
{
	if (strcmp(s, "error") == 0)
		return LOG_LVL_ERROR;
	if (strcmp(s, "warning") == 0)
		return LOG_LVL_WARNING;
	if (strcmp(s, "info") == 0)
		return LOG_LVL_INFO;
	if (strcmp(s, "debug") == 0)
		return LOG_LVL_DEBUG;
	return -1;
}

static bool key_char(char ch)
{
	return isalnum((unsigned char)ch) || ch == '_' || ch == '-';
}

static bool key_sensitive(const char *k, size_t n)
{
	char low[LOG_KEY_MAX + 1];

	if (n > LOG_KEY_MAX)
		n = LOG_KEY_MAX;
	for (size_t i = 0; i < n; i++)
		low[i] = (char)tolower((unsigned char)k[i]);
	low[n] = '\0';
	for (const char *const *s = sensitive; *s != NULL; s++)
		if (strstr(low, *s) != NULL)
			return true;
	return false;
}

struct out {
	char *p;
	size_t n, cap;
};

static void put(struct out *o, const char *s, size_t n)
{
	if (o->n + 1 >= o->cap)
		return;
	if (n > o->cap - 1 - o->n)
		n = o->cap - 1 - o->n;
	memcpy(o->p + o->n, s, n);
	o->n += n;
}

/* End of a value starting at in[j]: a quoted string, the rest of a header
 * line, or a bare word. */
static size_t value_end(const char *in, size_t len, size_t j, bool header)
{
	if (j < len && in[j] == '"') {
		for (j++; j < len && in[j] != '"'; j++)
			if (in[j] == '\\' && j + 1 < len)
				j++;
		return j < len ? j + 1 : len;
	}
	if (header) {
		while (j < len && in[j] != '\n' && in[j] != '\r')
			j++;
		return j;
	}
	while (j < len && !isspace((unsigned char)in[j]) && in[j] != ',' && in[j] != '}' &&
	       in[j] != ';' && in[j] != '&')
		j++;
	return j;
}

size_t log_redact(const char *in, size_t len, char *out, size_t outsz)
{
	struct out o = { out, 0, outsz };
	size_t i = 0;

	if (outsz == 0)
		return 0;
	while (i < len) {
		size_t k = i, j;
		bool quoted, header;

		if (!key_char(in[i]) || (i > 0 && key_char(in[i - 1]))) {
			put(&o, in + i, 1);
			i++;
			continue;
		}
		while (k < len && key_char(in[k]))
			k++;
		/* "Bearer <credential>" anywhere */
		if (k - i == 6 && strncasecmp(in + i, "bearer", 6) == 0 && k < len && in[k] == ' ') {
			j = k + 1;
			put(&o, in + i, j - i);
			put(&o, LOG_REDACTED, strlen(LOG_REDACTED));
			i = value_end(in, len, j, false);
			continue;
		}
		quoted = i > 0 && in[i - 1] == '"' && k < len && in[k] == '"';
		j = quoted ? k + 1 : k;
		while (j < len && in[j] == ' ')
			j++;
		if (j >= len || (in[j] != ':' && in[j] != '=') || !key_sensitive(in + i, k - i)) {
			put(&o, in + i, k - i);
			i = k;
			continue;
		}
		header = in[j] == ':' && !quoted;
		j++;
		while (j < len && in[j] == ' ')
			j++;
		put(&o, in + i, j - i);
		if (j < len && in[j] == '"')
			put(&o, "\"" LOG_REDACTED "\"", strlen(LOG_REDACTED) + 2);
		else
			put(&o, LOG_REDACTED, strlen(LOG_REDACTED));
		i = value_end(in, len, j, header);
	}
	out[o.n] = '\0';
	return o.n;
}

static const char *level_name(int level)
{
	switch (level) {
	case LOG_LVL_ERROR: return "error";
	case LOG_LVL_WARNING: return "warning";
	case LOG_LVL_INFO: return "info";
	default: return "debug";
	}
}

/* Escape control characters in place (into a second buffer) and emit. */
static void emit(int level, const char *text, size_t len)
{
	char clean[LOG_LINE_MAX], red[LOG_LINE_MAX], line[LOG_LINE_MAX + 64];
	size_t n = 0, r;
	struct timespec ts;
	struct tm tm;
	int h;

	for (size_t i = 0; i < len && n + 4 < sizeof(clean); i++) {
		unsigned char ch = (unsigned char)text[i];

		if (ch < 0x20 || ch == 0x7f) {
			n += (size_t)snprintf(clean + n, sizeof(clean) - n, "\\x%02x", ch);
			continue;
		}
		clean[n++] = (char)ch;
	}
	r = log_redact(clean, n, red, sizeof(red));
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	h = snprintf(line, sizeof(line), "%s%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s ",
		     log_journal ? (level == LOG_LVL_ERROR ? "<3>" : level == LOG_LVL_WARNING ? "<4>" : level == LOG_LVL_INFO ? "<6>" : "<7>") : "",
		     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
		     tm.tm_sec, ts.tv_nsec / 1000000, level_name(level));
	if (h < 0)
		return;
	if ((size_t)h + r + 1 > sizeof(line))
		r = sizeof(line) - (size_t)h - 1;
	memcpy(line + h, red, r);
	line[(size_t)h + r] = '\n';
	/* One write per line: lines of concurrent writers never interleave. */
	for (size_t off = 0, total = (size_t)h + r + 1; off < total;) {
		ssize_t w = write(STDERR_FILENO, line + off, total - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		off += (size_t)w;
	}
}

void log_msg(int level, const char *fmt, ...)
{
	char text[LOG_LINE_MAX];
	va_list ap;
	int n;

	if (!log_enabled(level))
		return;
	va_start(ap, fmt);
	n = vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	emit(level, text, (size_t)n < sizeof(text) ? (size_t)n : sizeof(text) - 1);
}

/* Append value as a quoted string with '"' and '\\' escaped. */
static int quote(char *out, size_t outsz, const char *s)
{
	size_t n = 0;

	if (outsz < 3)
		return 0;
	out[n++] = '"';
	for (; s != NULL && *s != '\0' && n + 3 < outsz; s++) {
		if (*s == '"' || *s == '\\')
			out[n++] = '\\';
		out[n++] = *s;
	}
	out[n++] = '"';
	out[n] = '\0';
	return (int)n;
}

void log_call(const struct log_call *c)
{
	char text[LOG_LINE_MAX], msg[512];
	bool failed = c->code != NULL && strcmp(c->code, "OK") != 0;
	/* A successful probe at info would drown the journal (a liveness check
	 * every few seconds, a line each) and cost the IPC hop most of its CPU:
	 * Health, 1 connection, 64 in flight: 98k -> 250k calls/s
	 * (docs/benchmarks.md). Its failures stay warnings. */
	int level = failed ? LOG_LVL_WARNING : c->routine ? LOG_LVL_DEBUG : LOG_LVL_INFO;
	int n;

	if (!log_enabled(level))
		return;
	quote(msg, sizeof(msg), c->message != NULL ? c->message : "");
	n = snprintf(text, sizeof(text),
		     "call uid=%lu conn=%llu id=%llu method=%s profile=%s ext_id=%s http=%u rc=%s "
		     "ms=%llu.%03llu outcome=%s code=%s retries=%u%s%s%s",
		     (unsigned long)c->uid, (unsigned long long)c->conn, (unsigned long long)c->id,
		     c->method != NULL && *c->method ? c->method : "-",
		     c->profile != NULL && *c->profile ? c->profile : "-",
		     c->external_id != NULL && *c->external_id ? c->external_id : "-", c->http,
		     c->response_code != NULL && *c->response_code ? c->response_code : "-",
		     (unsigned long long)(c->duration_us / 1000),
		     (unsigned long long)(c->duration_us % 1000), c->outcome ? c->outcome : "-",
		     c->code ? c->code : "-", c->retries, c->detached ? " detached=1" : "",
		     c->message != NULL && *c->message ? " msg=" : "",
		     c->message != NULL && *c->message ? msg : "");
	if (n < 0)
		return;
	emit(level, text, (size_t)n < sizeof(text) ? (size_t)n : sizeof(text) - 1);
}
