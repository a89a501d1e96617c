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

/* A key is sensitive when its lower-case text holds one of these words. */
#define SENSITIVE(w) { w, sizeof(w) - 1 }
static const struct {
	const char *word;
	size_t len;
} sensitive[] = {
	SENSITIVE("authorization"), SENSITIVE("signature"), SENSITIVE("token"),
	SENSITIVE("secret"), SENSITIVE("otp"), SENSITIVE("password"),
	SENSITIVE("authcode"), SENSITIVE("auth_code"), SENSITIVE("privatekey"),
	SENSITIVE("private_key"), SENSITIVE("credential"),
};
#define SENSITIVE_COUNT (sizeof(sensitive) / sizeof(sensitive[0]))

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
	/* what strstr(low, word) for every word told, in one pass over the key
	 * (its first letter first): this runs for every key=value of every line */
	for (size_t p = 0; p < n; p++)
		for (size_t w = 0; w < SENSITIVE_COUNT; w++)
			if (low[p] == sensitive[w].word[0] && sensitive[w].len <= n - p &&
			    memcmp(low + p, sensitive[w].word, sensitive[w].len) == 0)
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
			/* not the start of a word: copy the whole run of such bytes */
			size_t r = i + 1;

			while (r < len && (!key_char(in[r]) || key_char(in[r - 1])))
				r++;
			put(&o, in + i, r - i);
			i = r;
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

/* v as exactly n decimal digits (the lowest ones) at p. */
static void digits(char *p, unsigned long v, int n)
{
	while (n-- > 0) {
		p[n] = (char)('0' + v % 10);
		v /= 10;
	}
}

/* "YYYY-MM-DDTHH:MM:SS" of a second (what "%04d-%02d-%02dT%02d:%02d:%02d"
 * prints for years 0-9999), formatted once per second per thread (the
 * store's worker logs too). */
#define STAMP_LEN 19
static void stamp_of(time_t sec, char out[STAMP_LEN + 1])
{
	static _Thread_local time_t last = (time_t)-1;
	static _Thread_local char text[STAMP_LEN + 1];

	if (sec != last) {
		struct tm tm;

		if (gmtime_r(&sec, &tm) == NULL)
			memset(&tm, 0, sizeof(tm));
		memcpy(text, "0000-00-00T00:00:00", sizeof(text));
		digits(text, (unsigned long)(tm.tm_year + 1900) % 10000, 4);
		digits(text + 5, (unsigned long)tm.tm_mon + 1, 2);
		digits(text + 8, (unsigned long)tm.tm_mday, 2);
		digits(text + 11, (unsigned long)tm.tm_hour, 2);
		digits(text + 14, (unsigned long)tm.tm_min, 2);
		digits(text + 17, (unsigned long)tm.tm_sec, 2);
		last = sec;
	}
	memcpy(out, text, sizeof(text));
}

/* Escape control characters in place (into a second buffer) and emit. */
static void emit(int level, const char *text, size_t len)
{
	char clean[LOG_LINE_MAX], red[LOG_LINE_MAX], line[LOG_LINE_MAX + 64];
	char stamp[STAMP_LEN + 1];
	size_t n = 0, r;
	struct timespec ts;
	const char *prio = "", *name = level_name(level);
	long ms;
	int h = 0;

	for (size_t i = 0; i < len && n + 4 < sizeof(clean); i++) {
		unsigned char ch = (unsigned char)text[i];

		if (ch < 0x20 || ch == 0x7f) {
			n += (size_t)snprintf(clean + n, sizeof(clean) - n, "\\x%02x", ch);
			continue;
		}
		clean[n++] = (char)ch;
	}
	r = log_redact(clean, n, red, sizeof(red));
	if (r > sizeof(red) - 1)
		r = sizeof(red) - 1;
	clock_gettime(CLOCK_REALTIME, &ts);
	stamp_of(ts.tv_sec, stamp);
	if (log_journal)
		prio = level == LOG_LVL_ERROR ? "<3>" : level == LOG_LVL_WARNING ? "<4>" :
		       level == LOG_LVL_INFO ? "<6>" : "<7>";
	/* "<N>" stamp ".mmmZ " level " ": what "%s%s.%03ldZ %s " would print */
	memcpy(line, prio, strlen(prio));
	h += (int)strlen(prio);
	memcpy(line + h, stamp, STAMP_LEN);
	h += STAMP_LEN;
	ms = ts.tv_nsec / 1000000;
	line[h++] = '.';
	digits(line + h, (unsigned long)ms, 3);
	h += 3;
	line[h++] = 'Z';
	line[h++] = ' ';
	memcpy(line + h, name, strlen(name));
	h += (int)strlen(name);
	line[h++] = ' ';
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

/* A line being built: at most cap - 1 bytes (the rest is cut, as snprintf cuts). */
struct line {
	char *p;
	size_t n, cap;
};

static void ln_put(struct line *l, const char *s, size_t n)
{
	if (n > l->cap - 1 - l->n)
		n = l->cap - 1 - l->n;
	memcpy(l->p + l->n, s, n);
	l->n += n;
}

static void ln_str(struct line *l, const char *s)
{
	ln_put(l, s, strlen(s));
}

/* s, or "-" when it is NULL or empty */
static void ln_text(struct line *l, const char *s)
{
	ln_str(l, s != NULL && *s != '\0' ? s : "-");
}

/* v in decimal, at least `digits` digits (leading zeros) */
static void ln_u64(struct line *l, uint64_t v, int digits)
{
	char d[24];
	int k = (int)sizeof(d);

	do {
		d[--k] = (char)('0' + v % 10);
		v /= 10;
	} while ((v != 0 || (int)sizeof(d) - k < digits) && k > 0);
	ln_put(l, d + k, sizeof(d) - (size_t)k);
}

void log_call(const struct log_call *c)
{
	char text[LOG_LINE_MAX], msg[512];
	struct line l = { text, 0, sizeof(text) };
	bool failed = c->code != NULL && strcmp(c->code, "OK") != 0;
	/* A successful probe at info would drown the journal (a liveness check
	 * every few seconds, a line each) and cost the IPC hop most of its CPU:
	 * Health, 1 connection, 64 in flight: 98k -> 250k calls/s
	 * (docs/benchmarks.md). Its failures stay warnings. */
	int level = failed ? LOG_LVL_WARNING : c->routine ? LOG_LVL_DEBUG : LOG_LVL_INFO;

	if (!log_enabled(level))
		return;
	/* Formatted once, without printf (one line per call): "call uid=%lu
	 * conn=%llu id=%llu method=%s profile=%s ext_id=%s http=%u rc=%s
	 * ms=%llu.%03llu outcome=%s code=%s retries=%u[ detached=1][ msg=\"...\"]";
	 * then escaped and redacted by emit like every line. */
	ln_str(&l, "call uid=");
	ln_u64(&l, (unsigned long)c->uid, 1);
	ln_str(&l, " conn=");
	ln_u64(&l, c->conn, 1);
	ln_str(&l, " id=");
	ln_u64(&l, c->id, 1);
	ln_str(&l, " method=");
	ln_text(&l, c->method);
	ln_str(&l, " profile=");
	ln_text(&l, c->profile);
	ln_str(&l, " ext_id=");
	ln_text(&l, c->external_id);
	ln_str(&l, " http=");
	ln_u64(&l, c->http, 1);
	ln_str(&l, " rc=");
	ln_text(&l, c->response_code);
	ln_str(&l, " ms=");
	ln_u64(&l, c->duration_us / 1000, 1);
	ln_put(&l, ".", 1);
	ln_u64(&l, c->duration_us % 1000, 3);
	ln_str(&l, " outcome=");
	ln_str(&l, c->outcome != NULL ? c->outcome : "-");
	ln_str(&l, " code=");
	ln_str(&l, c->code != NULL ? c->code : "-");
	ln_str(&l, " retries=");
	ln_u64(&l, c->retries, 1);
	if (c->detached)
		ln_str(&l, " detached=1");
	if (c->message != NULL && *c->message) {
		quote(msg, sizeof(msg), c->message);
		ln_str(&l, " msg=");
		ln_str(&l, msg);
	}
	emit(level, text, l.n);
}
