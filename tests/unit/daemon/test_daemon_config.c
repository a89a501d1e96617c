/* config.c: parsing, every problem with its line, secret files, credentials directory. */
#include "daemon_test.h"

#include "config.h"
#include "log.h"
#include "methods.h"

static char dir[PATH_MAX];

static int setup(void **state)
{
	size_t len;
	char *pem = test_read_vector("doku_sdk_test_priv.pem", &len);

	(void)state;
	dt_tmpdir(dir);
	dt_write(dir, "key.pem", pem, 0600, NULL);
	dt_write(dir, "secret", "SK-tDzY6MSLBWlNXy3qCsUU\n", 0600, NULL);
	free(pem);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	dt_rmdir(dir);
	return 0;
}

static bool diag_has(const config_diag *d, const char *needle)
{
	for (unsigned i = 0; i < d->n; i++)
		if (strstr(d->msg[i], needle) != NULL)
			return true;
	return false;
}

static void print_diag(const config_diag *d)
{
	for (unsigned i = 0; i < d->n; i++)
		fprintf(stderr, "  %s\n", d->msg[i]);
}

#define GOOD                                                       \
	"; a comment\n"                                            \
	"[bridge]\n"                                               \
	"socket = /run/doku-bridge/bridge.sock\n"                  \
	"max_frame_bytes = 65536\n"                                \
	"  max_calls_per_connection = 8 ; indented, inline comment\n" \
	"log_level = debug\n"                                      \
	"\n"                                                       \
	"[profile.default]\n"                                      \
	"base_url = https://api-sandbox.doku.com/\n"               \
	"client_id = BRN-0221-1693209567392\n"                     \
	"client_secret_file = secret\n"                            \
	"private_key_file = key.pem\n"                             \
	"ca_file =\n"                                              \
	"channel_id = H2H\n"                                       \
	"[profile.shop-2]\n"                                       \
	"base_url = https://api.doku.com\n"                        \
	"client_id = BRN-2\n"                                      \
	"client_secret_file = secret\n"                            \
	"private_key_file = key.pem\n"                             \
	"[client.web]\n"                                           \
	"uids = 1000, 1001\n"                                      \
	"gids = 2000\n"                                            \
	"methods = GetBalance Purchase\n"                          \
	"profiles = shop-2\n"

static void test_good(void **state)
{
	config_diag diag;
	config *c = NULL;
	char path[PATH_MAX];
	const profile *p;

	(void)state;
	dt_write(dir, "good.ini", GOOD, 0644, path);
	assert_int_equal(config_load(path, CONFIG_LOAD_SECRETS, &c, &diag), 0);
	assert_non_null(c);
	assert_string_equal(c->socket, "/run/doku-bridge/bridge.sock");
	assert_int_equal(c->max_frame, 65536);
	assert_int_equal(c->max_calls, 8);
	assert_int_equal(c->log_level, LOG_LVL_DEBUG);
	assert_int_equal(c->default_timeout_ms, CONFIG_DEFAULT_TIMEOUT_MS);
	assert_int_equal(c->nprofiles, 2);
	p = config_profile(c, NULL);
	assert_non_null(p);
	assert_string_equal(p->name, "default");
	assert_string_equal(p->base_url, "https://api-sandbox.doku.com"); /* trailing '/' dropped */
	assert_string_equal(p->channel_id, "H2H");
	assert_null(p->ca_file);
	assert_non_null(p->client_secret);
	assert_string_equal((const char *)p->client_secret->data, "SK-tDzY6MSLBWlNXy3qCsUU");
	assert_int_equal(p->client_secret->len, 23); /* the newline is not part of it */
	assert_non_null(p->key);
	assert_ptr_equal(config_profile(c, "shop-2"), &c->profiles[1]);
	assert_null(config_profile(c, "nope"));
	assert_int_equal(c->nclients, 1);
	assert_int_equal(c->clients[0].nuids, 2);
	assert_int_equal(c->clients[0].uids[1], 1001);
	assert_int_equal(c->clients[0].methods,
			 ((uint64_t)1 << methods_index("GetBalance")) | ((uint64_t)1 << methods_index("Purchase")));
	assert_int_equal(c->clients[0].profiles, 1u << 1);
	config_unref(config_ref(c));
	config_unref(c);
}

/* Every problem is reported, each with its file and line. */
static void test_bad_lines(void **state)
{
	static const char *const text =
		"[bridge]\n"                              /* 1 */
		"sockett = /x/y\n"                        /* 2: unknown key */
		"max_connections = lots\n"                /* 3: not a number */
		"max_frame_bytes = 10\n"                  /* 4: out of range */
		"[profile.default\n"                      /* 5: no ']' */
		"[profile.p1]\n"                          /* 6: missing client_id ... */
		"base_url = http://insecure\n"            /* 7: not https */
		"client_secret_file = secret\n"           /* 8 */
		"private_key_file = key.pem\n"            /* 9 */
		"base_url = https://x\n"                  /* 10: duplicate */
		"just some words\n"                       /* 11: no '=' */
		"[sidecar]\n"                             /* 12: unknown section */
		"[client.c1]\n"                           /* 13: no uids/gids */
		"methods = GetBalance, NoSuchMethod\n"    /* 14 */
		"profiles = p1, ghost\n"                  /* 15 */
		"log_level = loud\n";                     /* 16: unknown key in [client] */
	config_diag diag;
	config *c = NULL;
	char path[PATH_MAX], want[PATH_MAX + 64];

	(void)state;
	dt_write(dir, "bad.ini", text, 0644, path);
	assert_int_equal(config_load(path, CONFIG_LOAD_SECRETS, &c, &diag), -EINVAL);
	assert_null(c);
	print_diag(&diag);
#define HAS(line, what)                                                    \
	do {                                                                \
		snprintf(want, sizeof(want), "%s:%d: %s", path, line, what); \
		assert_true(diag_has(&diag, want));                         \
	} while (0)
	HAS(2, "unknown key sockett");
	HAS(3, "max_connections: expected a number");
	HAS(4, "max_frame_bytes: expected a number from");
	HAS(5, "section header without ']'");
	HAS(6, "[profile.p1]: missing client_id");
	HAS(7, "base_url: expected https://");
	HAS(10, "duplicate key base_url");
	HAS(11, "expected \"name = value\"");
	HAS(12, "unknown section [sidecar]");
	HAS(13, "[client.c1]: needs uids or gids");
	HAS(14, "methods: no method named \"NoSuchMethod\"");
	HAS(15, "profiles: no [profile.ghost]");
	HAS(16, "unknown key log_level in [client.c1]");
#undef HAS
	assert_int_equal(diag.n, 13);
}

static void test_secret_permissions(void **state)
{
	config_diag diag;
	config *c = NULL;
	char path[PATH_MAX], want[PATH_MAX + 64];

	(void)state;
	dt_write(dir, "open-secret", "SK-x", 0640, NULL);
	dt_write(dir, "perm.ini",
		 "[profile.default]\n"
		 "base_url = https://h\n"
		 "client_id = id\n"
		 "client_secret_file = open-secret\n"
		 "private_key_file = missing.pem\n",
		 0644, path);
	assert_int_equal(config_load(path, CONFIG_LOAD_SECRETS, &c, &diag), -EINVAL);
	print_diag(&diag);
	snprintf(want, sizeof(want), "%s:4: client_secret_file: permissions 0640", path);
	assert_true(diag_has(&diag, want));
	assert_true(diag_has(&diag, "too open"));
	snprintf(want, sizeof(want), "%s:5: private_key_file: cannot open", path);
	assert_true(diag_has(&diag, want));
	/* without secrets, the same file is fine */
	assert_int_equal(config_load(path, 0, &c, &diag), 0);
	assert_null(c->profiles[0].client_secret);
	config_unref(c);
}

static void test_not_a_key(void **state)
{
	config_diag diag;
	config *c = NULL;
	char path[PATH_MAX];

	(void)state;
	dt_write(dir, "junk.pem", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
		 0600, NULL);
	dt_write(dir, "junk.ini",
		 "[profile.default]\nbase_url = https://h\nclient_id = id\n"
		 "client_secret_file = secret\nprivate_key_file = junk.pem\n",
		 0644, path);
	assert_int_equal(config_load(path, CONFIG_LOAD_SECRETS, &c, &diag), -EINVAL);
	assert_true(diag_has(&diag, ":5: private_key_file:"));
	assert_true(diag_has(&diag, "not an RSA private key"));
}

/* A relative *_file is looked up in $CREDENTIALS_DIRECTORY when it is set. */
static void test_credentials_directory(void **state)
{
	char creds[PATH_MAX], path[PATH_MAX];
	config_diag diag;
	config *c = NULL;
	size_t len;
	char *pem = test_read_vector("doku_sdk_test_priv.pem", &len);

	(void)state;
	dt_join(creds, dir, "creds");
	assert_int_equal(mkdir(creds, 0700), 0);
	dt_write(creds, "client-secret", "SK-from-creds", 0400, NULL);
	dt_write(creds, "private-key", pem, 0400, NULL);
	free(pem);
	dt_write(dir, "creds.ini",
		 "[profile.default]\nbase_url = https://h\nclient_id = id\n"
		 "client_secret_file = client-secret\nprivate_key_file = private-key\n",
		 0644, path);
	setenv("CREDENTIALS_DIRECTORY", creds, 1);
	assert_int_equal(config_load(path, CONFIG_LOAD_SECRETS, &c, &diag), 0);
	unsetenv("CREDENTIALS_DIRECTORY");
	assert_string_equal((const char *)c->profiles[0].client_secret->data, "SK-from-creds");
	config_unref(c);
	/* without the variable the same names are looked up beside the file: absent */
	assert_int_equal(config_load(path, CONFIG_LOAD_SECRETS, &c, &diag), -EINVAL);
	assert_true(diag_has(&diag, "client_secret_file: cannot open"));
}

static void test_no_profile_and_missing_file(void **state)
{
	config_diag diag;
	config *c = NULL;
	char path[PATH_MAX];

	(void)state;
	dt_write(dir, "empty.ini", "[bridge]\nsocket = /run/x/s.sock\n", 0644, path);
	assert_int_equal(config_load(path, 0, &c, &diag), -EINVAL);
	assert_true(diag_has(&diag, "no [profile.NAME] section"));
	dt_join(path, dir, "does-not-exist.ini");
	assert_int_equal(config_load(path, 0, &c, &diag), -ENOENT);
	assert_true(diag_has(&diag, "cannot read"));
}

static void test_long_line(void **state)
{
	config_diag diag;
	config *c = NULL;
	char path[PATH_MAX], text[1024];

	(void)state;
	snprintf(text, sizeof(text), "[bridge]\nstate_dir = /%0400d\n", 0);
	dt_write(dir, "long.ini", text, 0644, path);
	assert_int_equal(config_load(path, 0, &c, &diag), -EINVAL);
	assert_true(diag_has(&diag, ":2: line longer than"));
}

/* A configuration whose line 2 is line (in [bridge]), with one profile; its path. */
static void write_with_bridge_line(const char *name, const char *line, char path[PATH_MAX])
{
	char text[512];

	snprintf(text, sizeof(text),
		 "[bridge]\n%s\n"
		 "[profile.default]\nbase_url = https://h\nclient_id = id\n"
		 "client_secret_file = secret\nprivate_key_file = key.pem\n", line);
	dt_write(dir, name, text, 0644, path);
}

/* [bridge] journal_retention_days: default, 0 (keep forever), the bound, bad values. */
static void test_journal_retention(void **state)
{
	static const struct {
		const char *value, *says;
	} bad[] = {
		{ "3651", "journal_retention_days: expected a number from 0 to 3650, got \"3651\"" },
		{ "99999999999999999999", "journal_retention_days: expected a number from 0 to 3650" },
		{ "180d", "journal_retention_days: expected a number from 0 to 3650, got \"180d\"" },
		{ "1e3", "journal_retention_days: expected a number from 0 to 3650, got \"1e3\"" },
		{ "-1", "journal_retention_days: expected a number, got \"-1\"" },
		{ "forever", "journal_retention_days: expected a number, got \"forever\"" },
	};
	static const unsigned good[] = { 0, 1, CONFIG_RETENTION_LIMIT_DAYS };
	config_diag diag;
	config *c = NULL;
	char path[PATH_MAX], line[128], want[PATH_MAX + 128];

	(void)state;
	write_with_bridge_line("ret.ini", "; not set", path);
	assert_int_equal(config_load(path, 0, &c, &diag), 0);
	assert_int_equal(c->journal_retention_days, CONFIG_DEFAULT_RETENTION_DAYS);
	assert_int_equal(c->journal_retention_days, 180);
	config_unref(c);
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		snprintf(line, sizeof(line), "journal_retention_days = %u", good[i]);
		write_with_bridge_line("ret.ini", line, path);
		assert_int_equal(config_load(path, 0, &c, &diag), 0);
		assert_int_equal(c->journal_retention_days, good[i]);
		config_unref(c);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(line, sizeof(line), "journal_retention_days = %s", bad[i].value);
		write_with_bridge_line("ret.ini", line, path);
		assert_int_equal(config_load(path, 0, &c, &diag), -EINVAL);
		assert_null(c);
		print_diag(&diag);
		snprintf(want, sizeof(want), "%s:2: %s", path, bad[i].says);
		assert_true(diag_has(&diag, want));
		assert_int_equal(diag.n, 1);
	}
	write_with_bridge_line("ret.ini", "journal_retention_days = 30\njournal_retention_days = 40",
			       path);
	assert_int_equal(config_load(path, 0, &c, &diag), -EINVAL);
	snprintf(want, sizeof(want), "%s:3: duplicate key journal_retention_days", path);
	assert_true(diag_has(&diag, want));
}

/* [bridge] state_backend, state_postgres, state_postgres_password_file. */
static void test_state_backend(void **state)
{
	static const struct {
		const char *lines, *says;
	} bad[] = {
		{ "state_backend = mysql", "state_backend: expected sqlite or postgres, got \"mysql\"" },
		{ "state_backend = postgres\nstate_key_file = secret",
		  "state_backend = postgres needs state_postgres" },
		{ "state_backend = postgres\nstate_postgres = host=db",
		  "state_backend = postgres needs state_key_file" },
		{ "state_postgres = host=db", "need state_backend = postgres" },
		{ "state_backend = postgres\nstate_key_file = secret\n"
		  "state_postgres = host=db password=hunter2",
		  "the password goes in state_postgres_password_file" },
	};
	config_diag diag;
	config *c = NULL;
	char path[PATH_MAX];

	(void)state;
	write_with_bridge_line("pg.ini", "; default", path);
	assert_int_equal(config_load(path, 0, &c, &diag), 0);
	assert_int_equal(c->state_backend, CONFIG_STATE_SQLITE);
	assert_null(c->state_postgres);
	config_unref(c);
	write_with_bridge_line("pg.ini", "state_backend = postgres\nstate_key_file = secret\n"
			       "state_postgres = host=127.0.0.1 dbname=doku sslmode=verify-full\n"
			       "state_postgres_password_file = secret", path);
	/* the password is read with the secrets, or alone for the state tools */
	assert_int_equal(config_load(path, 0, &c, &diag), 0);
	assert_int_equal(c->state_backend, CONFIG_STATE_POSTGRES);
	assert_string_equal(c->state_postgres, "host=127.0.0.1 dbname=doku sslmode=verify-full");
	assert_null(c->state_postgres_password);
	config_unref(c);
	assert_int_equal(config_load(path, CONFIG_LOAD_DB_PASSWORD, &c, &diag), 0);
	assert_non_null(c->state_postgres_password);
	assert_string_equal((const char *)c->state_postgres_password->data, "SK-tDzY6MSLBWlNXy3qCsUU");
	config_unref(c);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		write_with_bridge_line("pg.ini", bad[i].lines, path);
		assert_int_equal(config_load(path, 0, &c, &diag), -EINVAL);
		assert_null(c);
		print_diag(&diag);
		assert_true(diag_has(&diag, bad[i].says));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good),
		cmocka_unit_test(test_state_backend),
		cmocka_unit_test(test_bad_lines),
		cmocka_unit_test(test_secret_permissions),
		cmocka_unit_test(test_not_a_key),
		cmocka_unit_test(test_credentials_directory),
		cmocka_unit_test(test_no_profile_and_missing_file),
		cmocka_unit_test(test_long_line),
		cmocka_unit_test(test_journal_retention),
	};

	log_setup(LOG_LVL_ERROR);
	assert_int_equal(methods_init(), 0);
	return cmocka_run_group_tests(tests, setup, teardown);
}
