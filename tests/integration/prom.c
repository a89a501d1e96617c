/* A strict reader of the Prometheus text format, for tests. */
#include "prom.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LINE_MAX_LEN 4096

enum ftype { F_COUNTER, F_GAUGE, F_HISTOGRAM, F_OTHER };

struct fam {
	char name[128];
	enum ftype type;
};

__attribute__((format(printf, 2, 3)))
static int bad(prom *p, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(p->error, sizeof(p->error), fmt, ap);
	va_end(ap);
	return -1;
}

static bool name_char(char c, bool first)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
	       (!first && c >= '0' && c <= '9');
}

/* Length of the metric (or label) name at s; 0 if none. */
static size_t name_len(const char *s)
{
	size_t n = 0;

	while (name_char(s[n], n == 0))
		n++;
	return n;
}

/* Check {k="v",...} at s; its length (0 when not a label set). */
static size_t labels_len(const char *s)
{
	size_t i = 1;

	if (s[0] != '{')
		return 0;
	if (s[1] == '}')
		return 2;
	for (;;) {
		size_t k = name_len(s + i);

		if (k == 0)
			return 0;
		i += k;
		if (s[i] != '=' || s[i + 1] != '"')
			return 0;
		i += 2;
		while (s[i] != '"') {
			if (s[i] == '\0' || s[i] == '\n')
				return 0;
			if (s[i] == '\\') {
				if (s[i + 1] != '\\' && s[i + 1] != '"' && s[i + 1] != 'n')
					return 0;
				i++;
			}
			i++;
		}
		i++;
		if (s[i] == '}')
			return i + 1;
		if (s[i] != ',')
			return 0;
		i++;
	}
}

static bool parse_value(const char *s, double *v)
{
	char *end;

	if (strcmp(s, "+Inf") == 0) {
		*v = INFINITY;
		return true;
	}
	if (strcmp(s, "-Inf") == 0) {
		*v = -INFINITY;
		return true;
	}
	if (strcmp(s, "NaN") == 0) {
		*v = NAN;
		return true;
	}
	*v = strtod(s, &end);
	return end != s && *end == '\0';
}

/* The family a sample name belongs to. */
static const struct fam *family_of(const struct fam *f, size_t n, const char *name, size_t len)
{
	static const char *const suffixes[] = { "_bucket", "_sum", "_count" };

	for (size_t i = 0; i < n; i++) {
		size_t fl = strlen(f[i].name);

		if (f[i].type != F_HISTOGRAM) {
			if (fl == len && memcmp(f[i].name, name, len) == 0)
				return &f[i];
			continue;
		}
		if (len <= fl || memcmp(f[i].name, name, fl) != 0)
			continue;
		for (size_t k = 0; k < 3; k++)
			if (strlen(suffixes[k]) == len - fl && memcmp(name + fl, suffixes[k], len - fl) == 0)
				return &f[i];
	}
	return NULL;
}

/* The labels of key without le="...", into out. */
static void strip_le(const char *key, char *out, size_t outsz)
{
	const char *le = strstr(key, "le=\"");
	size_t n;

	if (le == NULL) {
		snprintf(out, outsz, "%s", key);
		return;
	}
	n = (size_t)(le - key);
	snprintf(out, outsz, "%.*s", (int)n, key);
	le = strchr(le + 4, '"') + 1;
	if (*le == ',')
		le++;
	else if (n > 0 && out[n - 1] == ',')
		out[n - 1] = '\0';
	snprintf(out + strlen(out), outsz - strlen(out), "%s", le);
}

static double le_of(const char *key)
{
	const char *le = strstr(key, "le=\"");
	double v;
	char buf[64];
	size_t n;

	if (le == NULL)
		return NAN;
	le += 4;
	n = strcspn(le, "\"");
	snprintf(buf, sizeof(buf), "%.*s", (int)n, le);
	return parse_value(buf, &v) ? v : NAN;
}

/* Buckets cumulative, le ascending, +Inf == _count, for every histogram series. */
static int check_histograms(prom *p, const struct fam *f, size_t nf)
{
	for (size_t i = 0; i < nf; i++) {
		char bucket[160], count[160];

		if (f[i].type != F_HISTOGRAM)
			continue;
		snprintf(bucket, sizeof(bucket), "%s_bucket{", f[i].name);
		snprintf(count, sizeof(count), "%s_count", f[i].name);
		for (size_t a = 0; a < p->n; a++) {
			char series[LINE_MAX_LEN], other[LINE_MAX_LEN], want[LINE_MAX_LEN + 200];
			double prev_le = -INFINITY, prev_v = 0;
			bool inf = false;

			if (strncmp(p->s[a].key, bucket, strlen(bucket)) != 0)
				continue;
			strip_le(p->s[a].key + strlen(f[i].name) + 7, series, sizeof(series));
			/* only from the first bucket of its series */
			{
				bool first = true;

				for (size_t b = 0; b < a && first; b++) {
					if (strncmp(p->s[b].key, bucket, strlen(bucket)) != 0)
						continue;
					strip_le(p->s[b].key + strlen(f[i].name) + 7, other, sizeof(other));
					first = strcmp(other, series) != 0;
				}
				if (!first)
					continue;
			}
			for (size_t b = a; b < p->n; b++) {
				double le;

				if (strncmp(p->s[b].key, bucket, strlen(bucket)) != 0)
					continue;
				strip_le(p->s[b].key + strlen(f[i].name) + 7, other, sizeof(other));
				if (strcmp(other, series) != 0)
					continue;
				le = le_of(p->s[b].key);
				if (isnan(le) || le <= prev_le)
					return bad(p, "%s: le not ascending", p->s[b].key);
				if (p->s[b].value < prev_v)
					return bad(p, "%s: buckets not cumulative", p->s[b].key);
				prev_le = le;
				prev_v = p->s[b].value;
				if (isinf(le)) {
					inf = true;
					break;
				}
			}
			if (!inf)
				return bad(p, "%s%s: no +Inf bucket", f[i].name, series);
			snprintf(want, sizeof(want), "%s%s", count, strcmp(series, "{}") == 0 ? "" : series);
			{
				bool found = false;

				for (size_t b = 0; b < p->n; b++)
					if (strcmp(p->s[b].key, want) == 0) {
						found = true;
						if (p->s[b].value != prev_v)
							return bad(p, "%s: %g, +Inf bucket %g", want,
								   p->s[b].value, prev_v);
					}
				if (!found)
					return bad(p, "%s: missing", want);
			}
		}
	}
	return 0;
}

int prom_parse(const char *text, prom *p)
{
	struct fam *f = NULL;
	size_t nf = 0, capf = 0, cap = 0;
	const char *line = text;
	int rc = 0;

	memset(p, 0, sizeof(*p));
	if (text == NULL || text[0] == '\0')
		return bad(p, "empty text");
	if (text[strlen(text) - 1] != '\n')
		return bad(p, "the text does not end with a newline");
	while (*line != '\0' && rc == 0) {
		const char *nl = strchr(line, '\n');
		size_t len = (size_t)(nl - line);
		char buf[LINE_MAX_LEN];

		if (len >= sizeof(buf)) {
			rc = bad(p, "line too long");
			break;
		}
		memcpy(buf, line, len);
		buf[len] = '\0';
		line = nl + 1;
		if (strncmp(buf, "# HELP ", 7) == 0) {
			size_t n = name_len(buf + 7);

			if (n == 0 || buf[7 + n] != ' ')
				rc = bad(p, "bad HELP: %s", buf);
			continue;
		}
		if (strncmp(buf, "# TYPE ", 7) == 0) {
			size_t n = name_len(buf + 7);
			const char *t = buf + 7 + n + 1;

			if (n == 0 || n >= sizeof(f[0].name) || buf[7 + n] != ' ') {
				rc = bad(p, "bad TYPE: %s", buf);
				continue;
			}
			for (size_t i = 0; i < nf; i++)
				if (strlen(f[i].name) == n && memcmp(f[i].name, buf + 7, n) == 0)
					rc = bad(p, "TYPE twice: %s", buf);
			if (nf == capf) {
				capf = capf * 2 + 16;
				f = realloc(f, capf * sizeof(*f));
			}
			memcpy(f[nf].name, buf + 7, n);
			f[nf].name[n] = '\0';
			if (strcmp(t, "counter") == 0)
				f[nf].type = F_COUNTER;
			else if (strcmp(t, "gauge") == 0)
				f[nf].type = F_GAUGE;
			else if (strcmp(t, "histogram") == 0)
				f[nf].type = F_HISTOGRAM;
			else if (strcmp(t, "summary") == 0 || strcmp(t, "untyped") == 0)
				f[nf].type = F_OTHER;
			else
				rc = bad(p, "bad TYPE: %s", buf);
			nf++;
			continue;
		}
		if (buf[0] == '#') {
			rc = bad(p, "unknown comment line: %s", buf);
			continue;
		}
		{
			size_t n = name_len(buf), l = labels_len(buf + n);
			const struct fam *fm = n > 0 ? family_of(f, nf, buf, n) : NULL;
			double v;

			if (n == 0 || buf[n + l] != ' ' || !parse_value(buf + n + l + 1, &v)) {
				rc = bad(p, "not a sample line: %s", buf);
				continue;
			}
			if (buf[n] == '{' && l == 0) {
				rc = bad(p, "bad labels: %s", buf);
				continue;
			}
			if (fm == NULL) {
				rc = bad(p, "sample before its TYPE: %s", buf);
				continue;
			}
			if (fm->type == F_COUNTER && (v < 0 || isnan(v)))
				rc = bad(p, "negative counter: %s", buf);
			if (p->n == cap) {
				cap = cap * 2 + 64;
				p->s = realloc(p->s, cap * sizeof(*p->s));
			}
			p->s[p->n].key = strndup(buf, n + l);
			p->s[p->n].value = v;
			for (size_t i = 0; i < p->n && rc == 0; i++)
				if (strcmp(p->s[i].key, p->s[p->n].key) == 0)
					rc = bad(p, "sample twice: %s", buf);
			p->n++;
		}
	}
	if (rc == 0)
		rc = check_histograms(p, f, nf);
	p->families = calloc(nf + 1, sizeof(char *));
	for (size_t i = 0; i < nf; i++)
		p->families[i] = strdup(f[i].name);
	p->nfam = nf;
	free(f);
	return rc;
}

void prom_free(prom *p)
{
	for (size_t i = 0; i < p->n; i++)
		free(p->s[i].key);
	for (size_t i = 0; i < p->nfam; i++)
		free(p->families[i]);
	free(p->s);
	free(p->families);
	memset(p, 0, sizeof(*p));
}

double prom_get(const prom *p, const char *name, const char *labels)
{
	char key[LINE_MAX_LEN];

	if (labels != NULL)
		snprintf(key, sizeof(key), "%s{%s}", name, labels);
	else
		snprintf(key, sizeof(key), "%s", name);
	for (size_t i = 0; i < p->n; i++)
		if (strcmp(p->s[i].key, key) == 0)
			return p->s[i].value;
	return 0;
}

bool prom_has_family(const prom *p, const char *family)
{
	for (size_t i = 0; i < p->nfam; i++)
		if (strcmp(p->families[i], family) == 0)
			return true;
	return false;
}

double prom_sum(const prom *p, const char *name, const char *const *has)
{
	size_t n = strlen(name);
	double sum = 0;

	for (size_t i = 0; i < p->n; i++) {
		const char *k = p->s[i].key;
		bool ok = strncmp(k, name, n) == 0 && (k[n] == '{' || k[n] == '\0');

		for (const char *const *h = has; ok && h != NULL && *h != NULL; h++)
			ok = strstr(k + n, *h) != NULL;
		if (ok)
			sum += p->s[i].value;
	}
	return sum;
}
