/* A strict reader of the Prometheus text exposition format (0.0.4), for
 * the tests of the Metrics RPC: every line is a HELP, a TYPE or a sample
 * `name{label="value",...} value`; every sample belongs to a family whose
 * TYPE came before it; a histogram's buckets are cumulative, their `le`
 * ascending, and the +Inf bucket equals _count. */
#ifndef DOKU_ITEST_PROM_H
#define DOKU_ITEST_PROM_H

#include <stdbool.h>
#include <stddef.h>

typedef struct prom_sample {
	char *key;     /* "name{labels as sent}" or "name" */
	double value;
} prom_sample;

typedef struct prom {
	prom_sample *s;
	size_t n;
	char **families;  /* names of TYPE lines */
	size_t nfam;
	char error[256];  /* why prom_parse failed */
} prom;

/* Parse and check text. 0, or -1 with p->error set. Free with prom_free. */
int prom_parse(const char *text, prom *p);
void prom_free(prom *p);

/* The value of the sample "name{labels}" (labels exactly as rendered, or
 * NULL for none); 0 when absent. */
double prom_get(const prom *p, const char *name, const char *labels);
/* Whether a TYPE line named family. */
bool prom_has_family(const prom *p, const char *family);
/* Sum of the samples of name whose labels contain every substring of the
 * NULL-terminated list. */
double prom_sum(const prom *p, const char *name, const char *const *has);

#endif
