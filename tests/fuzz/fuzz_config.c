/* libFuzzer: the daemon's INI configuration (config_load), then the lookups
 * made on a loaded config (profiles, ACL).
 *
 * config_load reads a path, so each input is written to one private temp
 * file. It is loaded without CONFIG_LOAD_SECRETS: the parser only records
 * the *_file paths then (no secret or key file is opened, whatever the input
 * names), which is what --check-config of an unprivileged user exercises too. */
#include <limits.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "fuzz.h"
#include "methods.h"

static char path[PATH_MAX];
static int fd = -1;
static config_diag diag; /* 32 KiB: not on the stack */
static bool verbose;     /* DOKU_FUZZ_VERBOSE=1: print the problems found (to check seeds) */

static void remove_file(void)
{
	if (fd >= 0)
		unlink(path);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *tmp = getenv("TMPDIR");

	(void)argc;
	(void)argv;
	snprintf(path, sizeof(path), "%s/doku-fuzz-config-XXXXXX", tmp != NULL && tmp[0] ? tmp : "/tmp");
	verbose = getenv("DOKU_FUZZ_VERBOSE") != NULL;
	fd = mkstemp(path);
	if (fd < 0 || methods_init() != 0)
		abort();
	atexit(remove_file);
	return 0;
}

static void check_loaded(const config *c)
{
	const peer peers[] = {
		{ .uid = 0, .gid = 0 },
		{ .uid = 1000, .gid = 1000, .groups = { 27, 100 }, .ngroups = 2 },
		{ .uid = 65534, .gid = 65534 },
	};

	FUZZ_CHECK(c->nprofiles >= 1 && c->nprofiles <= CONFIG_MAX_PROFILES, "%u profiles",
		   c->nprofiles);
	FUZZ_CHECK(c->max_timeout_ms >= c->default_timeout_ms, "timeouts");
	for (unsigned i = 0; i < c->nprofiles; i++) {
		const profile *p = &c->profiles[i];

		FUZZ_CHECK(p->name != NULL && p->base_url != NULL && p->client_id != NULL,
			   "profile %u incomplete", i);
		FUZZ_CHECK(config_profile(c, p->name) == p, "profile %s not found", p->name);
		FUZZ_CHECK(strncmp(p->base_url, "https://", 8) == 0, "base_url %s", p->base_url);
	}
	for (size_t k = 0; k < sizeof(peers) / sizeof(peers[0]); k++) {
		bool knows = config_acl_knows(c, &peers[k]);

		for (unsigned m = 0; m < methods_count(); m++)
			for (int prof = -1; prof < (int)c->nprofiles; prof++)
				FUZZ_CHECK(!config_acl_allows(c, &peers[k], m, prof) || knows,
					   "allowed but not known");
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	config *c = NULL;
	int rc;

	if (size > CONFIG_FILE_MAX)
		return 0;
	if (ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
		abort();
	rc = config_load(path, 0, &c, &diag);
	FUZZ_CHECK((rc == 0) == (c != NULL), "result %d with config %p", rc, (void *)c);
	FUZZ_CHECK(rc == 0 || diag.n > 0 || diag.truncated, "refused without a reason (%d)", rc);
	FUZZ_CHECK(diag.n <= CONFIG_MAX_ERRORS, "%u problems", diag.n);
	for (unsigned i = 0; i < diag.n; i++) {
		FUZZ_CHECK(memchr(diag.msg[i], '\0', CONFIG_ERR_MAX) != NULL, "problem %u", i);
		if (verbose)
			fprintf(stderr, "%s\n", diag.msg[i]);
	}
	if (verbose)
		fprintf(stderr, "config_load: %d\n", rc);
	if (c != NULL) {
		check_loaded(c);
		config_unref(c);
	}
	return 0;
}
