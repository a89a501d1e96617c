/* config.c's ACL: who may call which method with which profile. */
#include "daemon_test.h"

#include "config.h"
#include "log.h"
#include "methods.h"

static config *load(const char *text)
{
	char dir[PATH_MAX], path[PATH_MAX];
	config_diag diag;
	config *c = NULL;

	dt_tmpdir(dir);
	dt_write(dir, "acl.ini", text, 0644, path);
	assert_int_equal(config_load(path, 0, &c, &diag), 0);
	dt_rmdir(dir);
	return c;
}

#define PROFILES                                                                 \
	"[profile.default]\nbase_url = https://h\nclient_id = a\n"               \
	"client_secret_file = s\nprivate_key_file = k\n"                         \
	"[profile.other]\nbase_url = https://h\nclient_id = b\n"                 \
	"client_secret_file = s\nprivate_key_file = k\n"

static void test_no_acl(void **state)
{
	config *c = load(PROFILES);
	peer root = { .uid = 0, .gid = 0 }, self = { .uid = geteuid(), .gid = 99 };
	peer other = { .uid = 4242, .gid = 4242 };
	unsigned bal = (unsigned)methods_index("GetBalance");

	(void)state;
	assert_true(config_acl_knows(c, &root));
	assert_true(config_acl_allows(c, &root, bal, 0));
	assert_true(config_acl_allows(c, &self, bal, 1));
	if (geteuid() != 4242) {
		assert_false(config_acl_knows(c, &other));
		assert_false(config_acl_allows(c, &other, bal, 0));
	}
	config_unref(c);
}

static void test_sections(void **state)
{
	config *c = load(PROFILES
			 "[client.shop]\nuids = 1000\nmethods = GetBalance, Health\nprofiles = default\n"
			 "[client.ops]\ngids = 3000\nmethods = *\nprofiles = *\n");
	unsigned bal = (unsigned)methods_index("GetBalance");
	unsigned pur = (unsigned)methods_index("Purchase");
	unsigned health = (unsigned)methods_index("Health");
	peer shop = { .uid = 1000, .gid = 1000 };
	peer ops_primary = { .uid = 1500, .gid = 3000 };
	peer ops_supp = { .uid = 1501, .gid = 1501, .groups = { 10, 3000 }, .ngroups = 2 };
	peer root = { .uid = 0, .gid = 0 };
	peer stranger = { .uid = 1777, .gid = 1777, .groups = { 10 }, .ngroups = 1 };

	(void)state;
	assert_true(config_acl_knows(c, &shop));
	assert_true(config_acl_allows(c, &shop, bal, 0));
	assert_false(config_acl_allows(c, &shop, bal, 1));  /* profile not allowed */
	assert_false(config_acl_allows(c, &shop, pur, 0));  /* method not allowed */
	assert_true(config_acl_allows(c, &shop, health, -1)); /* no profile involved */
	assert_true(config_acl_allows(c, &ops_primary, pur, 1));
	assert_true(config_acl_allows(c, &ops_supp, pur, 0)); /* supplementary group */
	/* with an ACL, root is not implicitly allowed */
	assert_false(config_acl_knows(c, &root));
	assert_false(config_acl_allows(c, &root, health, -1));
	assert_false(config_acl_knows(c, &stranger));
	assert_false(config_acl_allows(c, &stranger, health, -1));
	config_unref(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_no_acl),
		cmocka_unit_test(test_sections),
	};

	log_setup(LOG_LVL_ERROR);
	assert_int_equal(methods_init(), 0);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
