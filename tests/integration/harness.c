/* The integration harness: processes, readiness, control API, leak scan. */
#include "harness.h"
#include "prom.h"

#include <curl/curl.h>
#include <poll.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define LINE_MAX_BYTES 4096
#define SCAN_WINDOW 16       /* a run of this many bytes of a secret is a leak */
#define RECORD_MAX (256u * 1024u * 1024u)
#define DAEMON_LOG_TAIL 16384 /* bytes of the daemon's log shown when it exits badly */
#define H_WRAPPER_ARGS_MAX 16 /* words of $DOKU_IT_DAEMON_WRAPPER */

static char *recorded;       /* every byte received from the daemon */
static size_t recorded_len, recorded_cap;

/* ---- small helpers ----------------------------------------------------------------- */

uint64_t h_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void h_amount(Doku__Wallet__V1__Amount *a, const char *value)
{
	doku__wallet__v1__amount__init(a);
	a->value = (char *)value;
	a->currency = "IDR";
}

const char *h_json_str(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s != NULL ? s : "";
}

long long h_json_num(const json_t *o, const char *key)
{
	return (long long)json_integer_value(json_object_get(o, key));
}

static void join(char *out, const char *dir, const char *name)
{
	size_t a = strlen(dir), b = strlen(name);

	assert_true(a + 1 + b < PATH_MAX);
	memcpy(out, dir, a);
	out[a] = '/';
	memcpy(out + a + 1, name, b + 1);
}

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *p = NULL;
	size_t n = 0, cap = 0;

	if (f == NULL)
		return NULL;
	for (;;) {
		if (cap - n < 65536) {
			cap = cap * 2 + 65536;
			p = realloc(p, cap + 1);
			assert_non_null(p);
		}
		size_t k = fread(p + n, 1, cap - n, f);

		n += k;
		if (k == 0)
			break;
	}
	fclose(f);
	p[n] = '\0';
	if (len != NULL)
		*len = n;
	return p;
}

const char *h_ref(const char *prefix)
{
	static char buf[8][96];
	static unsigned n;
	char *b = buf[n % 8];

	snprintf(b, sizeof(buf[0]), "%s-%ld-%u", prefix, (long)getpid(), ++n);
	return b;
}

void h_record(const void *p, size_t n)
{
	if (n == 0 || recorded_len + n > RECORD_MAX)
		return;
	if (recorded_cap - recorded_len < n) {
		recorded_cap = (recorded_cap + n) * 2;
		recorded = realloc(recorded, recorded_cap);
		assert_non_null(recorded);
	}
	memcpy(recorded + recorded_len, p, n);
	recorded_len += n;
}

void h_record_result(const dokubridge_result *res)
{
	h_record(res->message, strlen(res->message));
	h_record("\n", 1);
	h_record(res->response_code, strlen(res->response_code));
	h_record(res->response_message, strlen(res->response_message));
	h_record(res->external_id, strlen(res->external_id));
	h_record(res->partner_reference_no, strlen(res->partner_reference_no));
	h_record("\n", 1);
}

/* ---- processes ------------------------------------------------------------------------ */

static pid_t spawn(char *const argv[], char *const envp[], int out_fd, int err_fd)
{
	posix_spawn_file_actions_t fa;
	pid_t pid;
	int rc;

	posix_spawn_file_actions_init(&fa);
	if (out_fd >= 0)
		posix_spawn_file_actions_adddup2(&fa, out_fd, STDOUT_FILENO);
	if (err_fd >= 0)
		posix_spawn_file_actions_adddup2(&fa, err_fd, STDERR_FILENO);
	rc = posix_spawn(&pid, argv[0], &fa, NULL, argv, envp);
	posix_spawn_file_actions_destroy(&fa);
	assert_int_equal(rc, 0);
	return pid;
}

/* Wait for pid within H_WAIT_MS (pidfd + poll); its exit status, or -1. */
static int wait_exit(pid_t pid)
{
	int fd = (int)syscall(SYS_pidfd_open, pid, 0);
	int status = 0;

	if (fd >= 0) {
		struct pollfd p = { fd, POLLIN, 0 };

		poll(&p, 1, H_WAIT_MS);
		close(fd);
	}
	if (waitpid(pid, &status, fd >= 0 ? WNOHANG : 0) != pid) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		return -1;
	}
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void read_line(int fd, char *line, size_t max)
{
	size_t n = 0;
	uint64_t end = h_now_ms() + H_WAIT_MS;

	while (n + 1 < max) {
		struct pollfd p = { fd, POLLIN, 0 };
		int left = (int)(end - h_now_ms());
		char ch;

		assert_true(left > 0);
		assert_true(poll(&p, 1, left) == 1);
		assert_int_equal(read(fd, &ch, 1), 1);
		if (ch == '\n')
			break;
		line[n++] = ch;
	}
	line[n] = '\0';
}

#define SIM_IDLE_ARGS 2   /* "--idle-timeout" N, in spare slots before argv's NULL */
#define SIM_IDLE_NUM_MAX 16

/* "--idle-timeout N" into the spare slots of argv (n entries, the last NULL)
 * when e asks for one; num holds N. */
static void sim_idle_arg(const h_env *e, char **argv, size_t n, char num[SIM_IDLE_NUM_MAX])
{
	if (e->sim_idle_timeout_s == 0)
		return;
	snprintf(num, SIM_IDLE_NUM_MAX, "%u", e->sim_idle_timeout_s);
	argv[n - 1 - SIM_IDLE_ARGS] = "--idle-timeout";
	argv[n - SIM_IDLE_ARGS] = num;
}

/* Start doku-snapsim on the given addresses ("127.0.0.1:0": any port) with
 * e's credentials, its stderr to snapsim.log; returns once it is ready, with
 * the addresses it took in https[64] and control[64]. */
static void sim_start(h_env *e, const char *listen, const char *ctl, char https[64],
		      char control[64])
{
	char creds[PATH_MAX], cert[PATH_MAX], key[PATH_MAX], secret[PATH_MAX], pub[PATH_MAX];
	char path[PATH_MAX], line[LINE_MAX_BYTES], idle[SIM_IDLE_NUM_MAX];
	char *argv[] = { DOKU_SNAPSIM_BIN, "--listen", (char *)listen, "--tls-cert", cert,
			 "--tls-key", key, "--client-id", e->client_id, "--client-secret-file",
			 secret, "--partner-public-key", pub, "--control", (char *)ctl,
			 "--threads", "8", NULL, NULL, NULL };
	int pfd[2], errfd;

	join(creds, e->dir, "creds");
	join(cert, creds, "server.pem");
	join(key, creds, "server.key");
	join(secret, creds, "client-secret");
	join(pub, creds, "partner.pub");
	sim_idle_arg(e, argv, sizeof(argv) / sizeof(argv[0]), idle);
	assert_int_equal(pipe2(pfd, O_CLOEXEC), 0);
	join(path, e->dir, "snapsim.log");
	errfd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	assert_true(errfd >= 0);
	e->sim_pid = spawn(argv, environ, pfd[1], errfd);
	close(pfd[1]);
	close(errfd);
	read_line(pfd[0], line, sizeof(line));
	close(pfd[0]);
	assert_int_equal(sscanf(line, "doku-snapsim ready https=%63s control=%63s", https, control), 2);
}

/* The daemon's paths under e->dir and our NOTIFY_SOCKET there. */
static void daemon_paths(h_env *e)
{
	char path[PATH_MAX];
	struct sockaddr_un sa;

	e->notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_true(e->notify_fd >= 0);
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	join(path, e->dir, "notify.sock");
	assert_true(strlen(path) < sizeof(sa.sun_path));
	memcpy(sa.sun_path, path, strlen(path) + 1);
	assert_int_equal(bind(e->notify_fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	join(e->sock, e->dir, "run/bridge.sock");
	join(e->conf, e->dir, "bridge.ini");
	join(e->log, e->dir, "daemon.log");
}

void h_setup(h_env *e)
{
	const char *tmp = getenv("TMPDIR");
	char cmd[PATH_MAX * 2], creds[PATH_MAX], path[PATH_MAX];
	char cert[PATH_MAX], key[PATH_MAX], ca[PATH_MAX];
	char *id;
	bool direct = e->direct;
	unsigned idle_s = e->sim_idle_timeout_s;
	const char *bin = e->daemon_bin;

	memset(e, 0, sizeof(*e));
	if (h_state_pg())
		h_pg_new_db(); /* this daemon's state starts empty, as a new state_dir does */
	e->direct = direct;
	e->sim_idle_timeout_s = idle_s;
	e->daemon_bin = bin;
	e->notify_fd = -1;
	snprintf(e->dir, sizeof(e->dir), "%s/doku-it-XXXXXX", tmp != NULL ? tmp : "/tmp");
	assert_non_null(mkdtemp(e->dir));
	join(creds, e->dir, "creds");
	snprintf(cmd, sizeof(cmd), "bash '%s' '%s' >/dev/null", DOKU_MKCREDS, creds);
	assert_int_equal(system(cmd), 0);
	join(path, creds, "client-id");
	id = slurp(path, NULL);
	assert_non_null(id);
	snprintf(e->client_id, sizeof(e->client_id), "%s", id);
	free(id);
	join(cert, creds, "server.pem");
	join(key, creds, "server.key");
	join(ca, creds, "ca.pem");

	/* the simulator: synchronise on its ready line */
	sim_start(e, "127.0.0.1:0", "127.0.0.1:0", e->sim_https, e->sim_control);
	if (!e->direct && getenv("DOKU_IT_DIRECT") == NULL) {
		e->tap = tap_start(cert, key, ca, e->sim_https);
		assert_non_null(e->tap);
	}

	daemon_paths(e);
}

void h_setup_second(h_env *e, const h_env *first, const char *name)
{
	char creds[PATH_MAX], link[PATH_MAX];

	assert_false(first->second);
	*e = *first; /* client id, simulator's addresses, tap, direct */
	e->second = true;
	e->sim_pid = 0;
	e->daemon_pid = 0;
	e->daemon_bin = NULL;
	join(e->dir, first->dir, name);
	assert_int_equal(mkdir(e->dir, 0700), 0);
	join(creds, first->dir, "creds");
	join(link, e->dir, "creds");
	assert_int_equal(symlink(creds, link), 0);
	daemon_paths(e);
}

bool h_state_pg(void)
{
	const char *s = getenv("DOKU_IT_STATE");

	if (s == NULL || s[0] == '\0' || strcmp(s, "sqlite") == 0)
		return false;
	if (strcmp(s, "postgres") != 0)
		fail_msg("$DOKU_IT_STATE=%s: sqlite or postgres", s);
	if (!h_pg_init())
		fail_msg("$DOKU_IT_STATE=postgres outside tests/tools/pg_run.sh (no $DOKU_TEST_PG_CONNINFO)");
	return true;
}

void h_sqlite_only(const char *why)
{
	if (!h_state_pg())
		return;
	fprintf(stderr, "skipped on PostgreSQL: %s\n", why);
	skip();
}

#define PG_BRIDGE_LINES (4 * PATH_MAX + 2048) /* h_pg_bridge's lines without extra */

void h_write_config(h_env *e, const char *bridge_extra, const char *sections)
{
	char creds[PATH_MAX], base[96], *pg = NULL;
	FILE *f = fopen(e->conf, "w");

	assert_non_null(f);
	if (h_state_pg() && (bridge_extra == NULL || strstr(bridge_extra, "state_backend") == NULL)) {
		size_t n = PG_BRIDGE_LINES + (bridge_extra != NULL ? strlen(bridge_extra) : 0);

		pg = malloc(n);
		assert_non_null(pg);
		h_pg_bridge(e, bridge_extra, pg, n);
		bridge_extra = pg;
	}
	join(creds, e->dir, "creds");
	if (e->tap != NULL)
		snprintf(base, sizeof(base), "127.0.0.1:%u", tap_port(e->tap));
	else
		snprintf(base, sizeof(base), "%s", e->sim_https);
	fprintf(f,
		"[bridge]\n"
		"socket = %s\n"
		"io_timeout_ms = 5000\n"
		"state_dir = %s/state\n"
		"%s\n"
		"[profile.default]\n"
		"base_url = https://%s\n"
		"client_id = %s\n"
		"client_secret_file = %s/client-secret\n"
		"private_key_file = %s/partner.key\n"
		"ca_file = %s/ca.pem\n"
		"%s\n",
		e->sock, e->dir, bridge_extra != NULL ? bridge_extra : "", base, e->client_id, creds, creds,
		creds, sections != NULL ? sections : "");
	free(pg);
	assert_int_equal(fclose(f), 0);
}

bool h_wait_notify(h_env *e, const char *what)
{
	uint64_t end = h_now_ms() + H_WAIT_MS;
	char msg[1024];

	for (;;) {
		struct pollfd p = { e->notify_fd, POLLIN, 0 };
		int left = (int)(end - h_now_ms());
		ssize_t n;

		if (left <= 0 || poll(&p, 1, left) != 1)
			return false;
		n = recv(e->notify_fd, msg, sizeof(msg) - 1, 0);
		if (n <= 0)
			return false;
		msg[n] = '\0';
		if (strstr(msg, what) != NULL)
			return true;
	}
}

pid_t h_daemon_spawn(h_env *e)
{
	char notify[PATH_MAX + 32], path[PATH_MAX];
	char **envp;
	size_t n = 0;
	int errfd;
	pid_t pid;

	join(path, e->dir, "notify.sock");
	snprintf(notify, sizeof(notify), "NOTIFY_SOCKET=%s", path);
	while (environ[n] != NULL)
		n++;
	envp = calloc(n + 2, sizeof(*envp));
	assert_non_null(envp);
	for (size_t i = 0, k = 0; i < n; i++)
		if (strncmp(environ[i], "NOTIFY_SOCKET=", 14) != 0)
			envp[k++] = environ[i];
	for (n = 0; envp[n] != NULL; n++)
		;
	envp[n] = notify;
	errfd = open(e->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	assert_true(errfd >= 0);
	{
		char *argv[H_WRAPPER_ARGS_MAX + 4], *wrap = NULL, *save = NULL, *w;
		const char *wrapper = getenv("DOKU_IT_DAEMON_WRAPPER");
		size_t k = 0;

		/* e.g. "valgrind --error-exitcode=99 --leak-check=full" */
		if (wrapper != NULL && wrapper[0] != '\0') {
			wrap = strdup(wrapper);
			assert_non_null(wrap);
			for (w = strtok_r(wrap, " ", &save); w != NULL; w = strtok_r(NULL, " ", &save)) {
				assert_true(k < H_WRAPPER_ARGS_MAX);
				argv[k++] = w;
			}
		}
		argv[k++] = (char *)(e->daemon_bin != NULL ? e->daemon_bin : DOKU_BRIDGED_BIN);
		argv[k++] = "--config";
		argv[k++] = e->conf;
		argv[k] = NULL;
		pid = spawn(argv, envp, -1, errfd);
		free(wrap);
	}
	close(errfd);
	free(envp);
	return pid;
}

void h_daemon_start(h_env *e, const char *bridge_extra, const char *sections)
{
	h_write_config(e, bridge_extra, sections);
	e->daemon_pid = h_daemon_spawn(e);
	assert_true(h_wait_notify(e, "READY=1"));
}

void h_daemon_signal(h_env *e, int sig)
{
	assert_true(e->daemon_pid > 0);
	assert_int_equal(kill(e->daemon_pid, sig), 0);
}

int h_daemon_wait(h_env *e)
{
	int st = wait_exit(e->daemon_pid);

	e->daemon_pid = 0;
	return st;
}

/* ---- the leak scan --------------------------------------------------------------------- */

struct hay {
	const char *p[2];
	size_t n[2];
	const char *what;
	unsigned found;
};

static void scan_one(struct hay *h, const char *needle, size_t len, size_t step)
{
	if (len < SCAN_WINDOW) {
		for (int k = 0; k < 2; k++)
			if (len > 0 && memmem(h->p[k], h->n[k], needle, len) != NULL) {
				fprintf(stderr, "LEAK: %s (short) in %s\n", h->what, k ? "replies" : "log");
				h->found++;
			}
		return;
	}
	for (size_t i = 0; i + SCAN_WINDOW <= len; i += step)
		for (int k = 0; k < 2; k++)
			if (memmem(h->p[k], h->n[k], needle + i, SCAN_WINDOW) != NULL) {
				fprintf(stderr, "LEAK: %s bytes %zu..%zu in %s\n", h->what, i,
					i + SCAN_WINDOW, k ? "replies" : "log");
				h->found++;
				return;
			}
}

static void scan_token(const char *token, void *arg)
{
	struct hay *h = arg;

	h->what = "a token";
	scan_one(h, token, strlen(token), 1);
}

static char *pg_password(size_t *len);

static void leak_scan(h_env *e)
{
	char path[PATH_MAX];
	size_t loglen = 0, slen = 0, klen = 0;
	char *log = slurp(e->log, &loglen);
	char *secret, *key, *line, *save = NULL;
	struct hay h = { { log != NULL ? log : "", recorded != NULL ? recorded : "" },
			 { loglen, recorded_len }, "", 0 };

	join(path, e->dir, "creds/client-secret");
	secret = slurp(path, &slen);
	join(path, e->dir, "creds/partner.key");
	key = slurp(path, &klen);
	assert_non_null(secret);
	assert_non_null(key);
	h.what = "the client secret";
	scan_one(&h, secret, slen, 1);
	h.what = "the private key";
	for (line = strtok_r(key, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save))
		if (strncmp(line, "-----", 5) != 0)
			scan_one(&h, line, strlen(line), 8);
	if (e->tap != NULL) {
		fprintf(stderr, "leak scan: %zu tokens, %zu log bytes, %zu reply bytes\n",
			tap_token_count(e->tap), loglen, recorded_len);
		tap_tokens(e->tap, scan_token, &h);
	}
	{
		/* the database role's password (inside pg_run.sh) */
		size_t plen = 0;
		char *pw = pg_password(&plen);

		h.what = "the database password";
		if (pw != NULL)
			scan_one(&h, pw, plen, 1);
		free(pw);
	}
	free(secret);
	free(key);
	free(log);
	assert_int_equal(h.found, 0);
}

void h_teardown(h_env *e)
{
	char cmd[PATH_MAX + 16];

	if (e->daemon_pid > 0) {
		int status;

		kill(e->daemon_pid, SIGTERM);
		status = h_daemon_wait(e);
		if (status != 0) {
			/* the daemon's own words (a sanitizer's or valgrind's report) */
			size_t len = 0;
			char *log = slurp(e->log, &len);

			if (log != NULL)
				fprintf(stderr, "---- daemon log (last %zu bytes) ----\n%s\n",
					len > DAEMON_LOG_TAIL ? (size_t)DAEMON_LOG_TAIL : len,
					len > DAEMON_LOG_TAIL ? log + len - DAEMON_LOG_TAIL : log);
			free(log);
		}
		assert_int_equal(status, 0);
	}
	if (e->sim_pid > 0) {
		kill(e->sim_pid, SIGTERM);
		wait_exit(e->sim_pid);
		e->sim_pid = 0;
	}
	leak_scan(e);
	if (e->notify_fd >= 0)
		close(e->notify_fd);
	e->notify_fd = -1;
	if (e->second)
		return; /* the simulator, the tap, the directory and the replies are first's */
	tap_stop(e->tap);
	e->tap = NULL;
	if (getenv("DOKU_IT_KEEP") == NULL) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", e->dir);
		assert_int_equal(system(cmd), 0);
	} else {
		fprintf(stderr, "kept %s\n", e->dir);
	}
	free(recorded);
	recorded = NULL;
	recorded_len = recorded_cap = 0;
}

/* ---- control API ------------------------------------------------------------------------- */

struct body {
	char *p;
	size_t n;
};

static size_t on_body(char *p, size_t size, size_t nmemb, void *arg)
{
	struct body *b = arg;
	size_t n = size * nmemb;

	b->p = realloc(b->p, b->n + n + 1);
	assert_non_null(b->p);
	memcpy(b->p + b->n, p, n);
	b->n += n;
	b->p[b->n] = '\0';
	return n;
}

long h_http(const char *method, const char *url, const char *body, char **answer, char *ctype,
	    size_t ctsz)
{
	struct body b = { calloc(1, 1), 0 };
	struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/json");
	CURL *c = curl_easy_init();
	char *ct = NULL;
	long st = 0;

	assert_non_null(c);
	assert_non_null(b.p);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	if (body != NULL) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
	}
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)H_WAIT_MS);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	assert_int_equal(curl_easy_perform(c), CURLE_OK);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &st);
	curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct);
	if (ctype != NULL)
		snprintf(ctype, ctsz, "%s", ct != NULL ? ct : "");
	curl_easy_cleanup(c);
	curl_slist_free_all(hdr);
	if (answer != NULL)
		*answer = b.p;
	else
		free(b.p);
	return st;
}

char *h_ctl(h_env *e, const char *method, const char *path, const char *body, long *status)
{
	char url[1024], *answer = NULL;
	long st;

	snprintf(url, sizeof(url), "http://%s%s", e->sim_control, path);
	st = h_http(method, url, body, &answer, NULL, 0);
	if (status != NULL)
		*status = st;
	else if (st >= 300)
		fprintf(stderr, "control %s %s: %ld %s\n", method, path, st, answer);
	return answer;
}

long h_counter(h_env *e, const char *group, const char *key)
{
	char *text = h_ctl(e, "GET", "/control/counters", NULL, NULL);
	json_t *root = json_loads(text, 0, NULL), *v;
	long n;

	assert_non_null(root);
	v = group != NULL ? json_object_get(json_object_get(root, group), key) : json_object_get(root, key);
	n = json_is_integer(v) ? (long)json_integer_value(v) : 0;
	json_decref(root);
	free(text);
	return n;
}

unsigned h_sim_requests(h_env *e, const char *path, const char *ref)
{
	char url[512];
	char *text, *line, *save = NULL;
	unsigned n = 0;

	snprintf(url, sizeof(url), "/control/log?path=%s&limit=20000", path);
	text = h_ctl(e, "GET", url, NULL, NULL);
	for (line = strtok_r(text, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
		json_t *o = json_loads(line, 0, NULL);
		const char *p = json_string_value(json_object_get(o, "path"));
		const char *r = json_string_value(json_object_get(o, "partnerReferenceNo"));

		if (p != NULL && strcmp(p, path) == 0 && (ref == NULL || (r != NULL && strcmp(r, ref) == 0)))
			n++;
		json_decref(o);
	}
	free(text);
	return n;
}

void h_sim_external_id(h_env *e, const char *path, const char *ref, char out[64])
{
	char url[512];
	char *text, *line, *save = NULL;

	out[0] = '\0';
	snprintf(url, sizeof(url), "/control/log?path=%s&limit=20000", path);
	text = h_ctl(e, "GET", url, NULL, NULL);
	for (line = strtok_r(text, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
		json_t *o = json_loads(line, 0, NULL);
		const char *r = json_string_value(json_object_get(o, "partnerReferenceNo"));
		const char *x = json_string_value(json_object_get(o, "externalId"));

		if (r != NULL && x != NULL && strcmp(r, ref) == 0)
			snprintf(out, 64, "%s", x);
		json_decref(o);
	}
	free(text);
}

void h_fault(h_env *e, const char *json)
{
	long st;
	char *r = h_ctl(e, "POST", "/control/faults", json, &st);

	if (st != 201)
		fprintf(stderr, "fault %s: %ld %s\n", json, st, r);
	assert_int_equal(st, 201);
	free(r);
}

bool h_faults_armed(h_env *e)
{
	char *text = h_ctl(e, "GET", "/control/faults", NULL, NULL);
	json_t *j = json_loads(text, 0, NULL);
	bool armed;

	free(text);
	assert_true(json_is_array(j));
	armed = json_array_size(j) > 0;
	json_decref(j);
	return armed;
}

/* ---- clients --------------------------------------------------------------------------- */

dokubridge_client *h_client(h_env *e)
{
	dokubridge_config cfg = { .socket_path = e->sock };
	dokubridge_client *c = NULL;
	dokubridge_result res;

	assert_int_equal(dokubridge_new(&cfg, &c), 0);
	assert_int_equal(dokubridge_connect(c, &res), 0);
	return c;
}

int h_call(dokubridge_client *c, const char *customer, const char *method,
	   const ProtobufCMessage *req, ProtobufCMessage **resp, dokubridge_result *res)
{
	dokubridge_call_opts opts = { .timeout_ms = 20000, .customer_ref = customer };
	ProtobufCMessage *r = NULL;
	int rc = dokubridge_call(c, &opts, method, req, &r, res);

	h_record_result(res);
	if (r != NULL) {
		size_t n = protobuf_c_message_get_packed_size(r);
		uint8_t *p = malloc(n + 1);

		assert_non_null(p);
		protobuf_c_message_pack(r, p);
		h_record(p, n);
		free(p);
	}
	if (resp != NULL)
		*resp = r;
	else
		dokubridge_message_free(r);
	return rc;
}

static json_t *ctl_json(h_env *e, const char *method, const char *path, const char *body)
{
	char *text = h_ctl(e, method, path, body, NULL);
	json_t *j = json_loads(text, 0, NULL);

	free(text);
	assert_non_null(j);
	return j;
}

void h_customer_new(h_env *e, dokubridge_client *c, const char *ref, h_customer *out)
{
	static unsigned serial;
	dokubridge_result res;
	char path[256], body[512];
	json_t *j, *last;
	const char *create_ref = h_ref("ca"), *bind_ref;
	Doku__Wallet__V1__CreateAccountRequest ca = DOKU__WALLET__V1__CREATE_ACCOUNT_REQUEST__INIT;
	Doku__Wallet__V1__CreateAccountResponse *car = NULL;
	Doku__Wallet__V1__VerifyOtpRequest vo = DOKU__WALLET__V1__VERIFY_OTP_REQUEST__INIT;
	Doku__Wallet__V1__BindAccountRequest ba = DOKU__WALLET__V1__BIND_ACCOUNT_REQUEST__INIT;
	Doku__Wallet__V1__BindAccountResponse *bar = NULL;
	Doku__Wallet__V1__BindSuccessParams sp = DOKU__WALLET__V1__BIND_SUCCESS_PARAMS__INIT;
	Doku__Wallet__V1__InquireAccountRequest ia = DOKU__WALLET__V1__INQUIRE_ACCOUNT_REQUEST__INIT;
	Doku__Wallet__V1__InquireAccountResponse *iar = NULL;
	Doku__Wallet__V1__OpenCustomerSessionRequest os = DOKU__WALLET__V1__OPEN_CUSTOMER_SESSION_REQUEST__INIT;
	char email[96];

	memset(out, 0, sizeof(*out));
	snprintf(out->ref, sizeof(out->ref), "%s", ref);
	snprintf(out->phone, sizeof(out->phone), "628%05u%05u", (unsigned)getpid() % 100000u, ++serial);
	snprintf(email, sizeof(email), "c%s@example.id", out->phone);
	ca.partner_reference_no = (char *)create_ref;
	ca.name = "Budi Santoso";
	ca.phone_no = out->phone;
	ca.email = email;
	ca.redirect_url = "https://merchant.example/done";
	OK_CALL(c, NULL, "CreateAccount", ca, &car, &res);

	snprintf(path, sizeof(path), "/control/otps?phoneNo=%s", out->phone);
	j = ctl_json(e, "GET", path, NULL);
	last = json_array_get(j, json_array_size(j) - 1);
	vo.original_partner_reference_no = (char *)create_ref;
	vo.original_reference_no = car->reference_no;
	vo.otp = (char *)json_string_value(json_object_get(last, "otp"));
	assert_non_null(vo.otp);
	OK_CALL(c, NULL, "VerifyOtp", vo, NULL, &res);
	json_decref(j);
	dokubridge_message_free(car);

	snprintf(body, sizeof(body), "{\"phoneNo\":\"%s\",\"pin\":\"123456\"}", out->phone);
	free(h_ctl(e, "POST", "/control/pin", body, NULL));

	bind_ref = h_ref("bind");
	ba.partner_reference_no = (char *)bind_ref;
	ba.redirect_url = "https://merchant.example/bound";
	sp.account_id = out->phone;
	ba.success_params = &sp;
	OK_CALL(c, NULL, "BindAccount", ba, &bar, &res);
	snprintf(out->link_id, sizeof(out->link_id), "%s", bar->link_id);
	dokubridge_message_free(bar);
	snprintf(body, sizeof(body), "{\"linkId\":\"%s\",\"pin\":\"123456\"}", out->link_id);
	free(h_ctl(e, "POST", "/control/bindings/approve", body, NULL));

	ia.partner_reference_no = (char *)bind_ref;
	OK_CALL(c, NULL, "InquireAccount", ia, &iar, &res);
	assert_non_null(iar->additional_info);
	snprintf(out->auth_code, sizeof(out->auth_code), "%s", iar->additional_info->auth_code);
	snprintf(out->account_no, sizeof(out->account_no), "%s", iar->account_no);
	dokubridge_message_free(iar);
	assert_true(out->auth_code[0] != '\0');

	os.auth_code = out->auth_code;
	OK_CALL(c, ref, "OpenCustomerSession", os, NULL, &res);
}

/* ---- raw sockets --------------------------------------------------------------------- */

int h_raw_connect(h_env *e)
{
	struct sockaddr_un sa;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, e->sock, strlen(e->sock) + 1);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

static int read_full(int fd, void *p, size_t n, uint64_t end)
{
	size_t got = 0;

	while (got < n) {
		struct pollfd pf = { fd, POLLIN, 0 };
		int left = (int)(end - h_now_ms());
		ssize_t k;

		if (left <= 0 || poll(&pf, 1, left) != 1)
			return -1;
		k = read(fd, (char *)p + got, n - got);
		if (k <= 0)
			return -1;
		got += (size_t)k;
	}
	return 0;
}

int h_raw_read_frame(int fd, uint8_t *flags, uint8_t **body, uint32_t *len)
{
	uint64_t end = h_now_ms() + H_WAIT_MS;
	uint8_t hdr[5];

	*body = NULL;
	if (read_full(fd, hdr, 5, end) != 0)
		return -1;
	*flags = hdr[0];
	*len = (uint32_t)hdr[1] << 24 | (uint32_t)hdr[2] << 16 | (uint32_t)hdr[3] << 8 | hdr[4];
	*body = malloc(*len + 1);
	assert_non_null(*body);
	if (read_full(fd, *body, *len, end) != 0) {
		free(*body);
		*body = NULL;
		return -1;
	}
	h_record(*body, *len);
	return 0;
}

bool h_raw_eof(int fd)
{
	uint64_t end = h_now_ms() + H_WAIT_MS;
	char buf[4096];

	for (;;) {
		struct pollfd pf = { fd, POLLIN, 0 };
		int left = (int)(end - h_now_ms());
		ssize_t k;

		if (left <= 0 || poll(&pf, 1, left) != 1)
			return false;
		k = read(fd, buf, sizeof(buf));
		if (k == 0)
			return true;
		if (k < 0)
			return errno == ECONNRESET;
		h_record(buf, (size_t)k);
	}
}

/* ---- bursts ----------------------------------------------------------------------------- */

struct burst_call {
	h_burst *b;
	uint64_t started;
	void (*progress)(unsigned done, void *arg);
	void *arg;
};

static void burst_done(dokubridge_client *c, void *arg, const dokubridge_result *res,
		       ProtobufCMessage *resp)
{
	struct burst_call *bc = arg;
	h_burst *b = bc->b;
	uint64_t ms = h_now_ms() - bc->started;

	(void)c;
	h_record_result(res);
	if (resp != NULL) {
		size_t n = protobuf_c_message_get_packed_size(resp);
		uint8_t *p = malloc(n + 1);

		assert_non_null(p);
		protobuf_c_message_pack(resp, p);
		h_record(p, n);
		free(p);
	}
	dokubridge_message_free(resp);
	b->done++;
	if (res->code == DOKUBRIDGE_OK)
		b->ok++;
	else if (b->codes[res->code]++ == 0)
		fprintf(stderr, "burst: %s: %s\n", dokubridge_code_name(res->code), res->message);
	if ((unsigned)res->outcome < 4)
		b->outcomes[res->outcome]++;
	if (ms > b->max_ms)
		b->max_ms = ms;
	if (bc->progress != NULL)
		bc->progress(b->done, bc->arg);
}

void h_burst_run(dokubridge_client **cs, unsigned n, unsigned per, const char *method,
		 const char *customer, const ProtobufCMessage *(*make)(unsigned i, void *arg),
		 void (*progress)(unsigned done, void *arg), void *arg, h_burst *out)
{
	dokubridge_call_opts opts = { .timeout_ms = 20000, .customer_ref = customer };
	struct burst_call *calls = calloc((size_t)n * per, sizeof(*calls));
	struct pollfd *pfd = calloc(n, sizeof(*pfd));
	uint64_t end = h_now_ms() + H_WAIT_MS;
	dokubridge_result res;

	assert_non_null(calls);
	assert_non_null(pfd);
	memset(out, 0, sizeof(*out));
	out->total = n * per;
	for (unsigned k = 0; k < per; k++)
		for (unsigned i = 0; i < n; i++) {
			struct burst_call *bc = &calls[k * n + i];

			bc->b = out;
			bc->started = h_now_ms();
			bc->progress = progress;
			bc->arg = arg;
			assert_int_equal(dokubridge_start(cs[i], &opts, method, make(k * n + i, arg),
							  burst_done, bc, NULL, &res), 0);
		}
	while (out->done < out->total) {
		int left = (int)(end - h_now_ms());

		assert_true(left > 0);
		for (unsigned i = 0; i < n; i++) {
			pfd[i].fd = dokubridge_in_flight(cs[i]) > 0 ? dokubridge_fd(cs[i]) : -1;
			pfd[i].events = h_poll_events(cs[i]);
			pfd[i].revents = 0;
		}
		assert_true(poll(pfd, n, left > 1000 ? 1000 : left) >= 0);
		for (unsigned i = 0; i < n; i++)
			if (pfd[i].fd >= 0)
				dokubridge_process(cs[i], h_client_events(pfd[i].revents));
	}
	free(pfd);
	free(calls);
}

bool h_wait_sim_requests(h_env *e, const char *path, const char *ref, unsigned n)
{
	uint64_t end = h_now_ms() + H_WAIT_MS;

	while (h_sim_requests(e, path, ref) < n) {
		if (h_now_ms() > end)
			return false;
		poll(NULL, 0, 20); /* bounded polling of an observable condition */
	}
	return true;
}

bool h_raw_hup(int fd)
{
	struct pollfd pf = { fd, 0, 0 };

	return poll(&pf, 1, H_WAIT_MS) == 1 && (pf.revents & (POLLHUP | POLLERR)) != 0;
}

void h_send_all(int fd, const void *p, size_t n)
{
	while (n > 0) {
		ssize_t k = send(fd, p, n, MSG_NOSIGNAL);

		assert_true(k > 0);
		p = (const char *)p + k;
		n -= (size_t)k;
	}
}

size_t h_frame(uint8_t *out, uint8_t flags, const void *body, uint32_t len)
{
	out[0] = flags;
	out[1] = (uint8_t)(len >> 24);
	out[2] = (uint8_t)(len >> 16);
	out[3] = (uint8_t)(len >> 8);
	out[4] = (uint8_t)len;
	if (len > 0)
		memmove(out + 5, body, len);
	return 5 + len;
}

size_t h_call_frame(uint8_t *out, size_t outsz, uint64_t id, const char *method,
		    const ProtobufCMessage *msg, const char *customer)
{
	Doku__Bridge__V1__Call call = DOKU__BRIDGE__V1__CALL__INIT;
	uint8_t inner[4096];
	size_t n;

	call.id = id;
	call.method = (char *)method;
	call.timeout_ms = 10000;
	if (customer != NULL)
		call.customer_ref = (char *)customer;
	if (msg != NULL) {
		assert_true(protobuf_c_message_get_packed_size(msg) <= sizeof(inner));
		call.message.len = protobuf_c_message_pack(msg, inner);
		call.message.data = inner;
	}
	n = doku__bridge__v1__call__get_packed_size(&call);
	assert_true(n + 5 <= outsz);
	doku__bridge__v1__call__pack(&call, out + 5);
	return h_frame(out, 0, out + 5, (uint32_t)n);
}

void h_sim_restart(h_env *e, int sig)
{
	char https[64], control[64];

	assert_true(e->sim_pid > 0);
	kill(e->sim_pid, sig);
	wait_exit(e->sim_pid);
	e->sim_pid = 0;
	/* the same addresses: the daemon and the tap keep theirs */
	sim_start(e, e->sim_https, e->sim_control, https, control);
	assert_string_equal(https, e->sim_https);
	assert_string_equal(control, e->sim_control);
}

void h_kill(h_env *e)
{
	if (e->daemon_pid > 0) {
		kill(e->daemon_pid, SIGKILL);
		waitpid(e->daemon_pid, NULL, 0);
		e->daemon_pid = 0;
	}
	if (e->sim_pid > 0) {
		kill(e->sim_pid, SIGKILL);
		waitpid(e->sim_pid, NULL, 0);
		e->sim_pid = 0;
	}
}

json_t *h_export_journal(h_env *e)
{
	char cmd[PATH_MAX * 2], *line = NULL;
	size_t cap = 0;
	json_t *rows = json_array();
	FILE *p;

	snprintf(cmd, sizeof(cmd), "'%s' --config '%s' --export-journal",
		 e->daemon_bin != NULL ? e->daemon_bin : DOKU_BRIDGED_BIN, e->conf);
	p = popen(cmd, "r");
	assert_non_null(p);
	while (getline(&line, &cap, p) > 0) {
		json_error_t je;
		json_t *j = json_loads(line, JSON_REJECT_DUPLICATES, &je);

		if (j == NULL)
			fail_msg("--export-journal: line is not JSON (%s): %.200s", je.text, line);
		assert_true(json_is_object(j));
		json_array_append_new(rows, j);
	}
	free(line);
	assert_int_equal(pclose(p), 0);
	return rows;
}

json_t *h_journal_row(json_t *rows, const char *method, const char *ref)
{
	size_t i;
	json_t *r;

	json_array_foreach(rows, i, r)
		if (strcmp(h_json_str(r, "method"), method) == 0 &&
		    strcmp(h_json_str(r, "partnerReferenceNo"), ref) == 0)
			return r;
	return NULL;
}

short h_poll_events(dokubridge_client *c)
{
	unsigned want = dokubridge_interest(c);

	return (short)((want & DOKUBRIDGE_WANT_READ ? POLLIN : 0) |
		       (want & DOKUBRIDGE_WANT_WRITE ? POLLOUT : 0));
}

unsigned h_client_events(short revents)
{
	return (revents & (POLLIN | POLLHUP | POLLERR) ? DOKUBRIDGE_WANT_READ : 0u) |
	       (revents & POLLOUT ? DOKUBRIDGE_WANT_WRITE : 0u);
}

/* ---- a fleet of daemons on PostgreSQL -------------------------------------------------- */

#define CAPTURE_MAX (64u * 1024u * 1024u) /* bytes of a tool's output */
#define PG_ENV_MAX 16

/* The superuser's libpq variables, out of the environment (h_pg_init). */
static char *pg_super_env[PG_ENV_MAX + 1];
static bool pg_ready;
static char pg_conninfo[4096];

/* libpq's environment variables (those that would change where or as whom a
 * child connects). */
static const char *const pg_vars[] = {
	"PGHOST", "PGHOSTADDR", "PGPORT", "PGUSER", "PGPASSWORD", "PGPASSFILE", "PGDATABASE",
	"PGSERVICE", "PGSERVICEFILE", "PGSSLMODE", "PGSSLROOTCERT", "PGSSLCERT", "PGSSLKEY",
	"PGOPTIONS", "PGREQUIRESSL", NULL,
};

/* The value of keyword key in a libpq conninfo (key=value words, values
 * optionally in single quotes with \\ escapes, or a postgres[ql]:// URI: its
 * user, dbname and query parameters) into out[outsz]; false when absent. */
/* p[0..n) and a NUL into out[outsz] (which must hold them). */
static void copy_out(char *out, size_t outsz, const char *p, size_t n)
{
	assert_true(n < outsz);
	memcpy(out, p, n);
	out[n] = '\0';
}

static bool conninfo_get(const char *ci, const char *key, char *out, size_t outsz)
{
	size_t klen = strlen(key), n = 0;
	bool found = false;

	if (strncmp(ci, "postgres://", 11) == 0 || strncmp(ci, "postgresql://", 13) == 0) {
		const char *p = strstr(ci, "://") + 3, *at, *slash, *q;

		q = strchr(p, '?');
		at = strchr(p, '@');
		if (at != NULL && q != NULL && at > q)
			at = NULL;
		slash = strchr(at != NULL ? at : p, '/');
		if (q != NULL && slash != NULL && slash > q)
			slash = NULL;
		if (strcmp(key, "user") == 0 && at != NULL) {
			n = strcspn(p, ":@");
			found = true;
			copy_out(out, outsz, p, n);
		} else if (strcmp(key, "dbname") == 0 && slash != NULL) {
			n = strcspn(slash + 1, "?");
			found = n > 0;
			copy_out(out, outsz, slash + 1, n);
		}
		for (p = q; p != NULL && *p != '\0'; p = strchr(p + 1, '&')) {
			const char *kv = p + 1;

			if (strncmp(kv, key, klen) == 0 && kv[klen] == '=') {
				n = strcspn(kv + klen + 1, "&");
				copy_out(out, outsz, kv + klen + 1, n);
				found = true;
			}
		}
		return found;
	}
	for (const char *p = ci; *p != '\0';) {
		const char *k, *eq;
		char val[1024];

		n = 0;
		while (*p == ' ' || *p == '\t' || *p == '\n')
			p++;
		if (*p == '\0')
			break;
		k = p;
		eq = strchr(p, '=');
		if (eq == NULL)
			break;
		p = eq + 1;
		while (*p == ' ')
			p++;
		if (*p == '\'') {
			for (p++; *p != '\0' && *p != '\''; p++) {
				if (*p == '\\' && p[1] != '\0')
					p++;
				if (n + 1 < sizeof(val))
					val[n++] = *p;
			}
			if (*p == '\'')
				p++;
		} else {
			for (; *p != '\0' && *p != ' ' && *p != '\t' && *p != '\n'; p++) {
				if (*p == '\\' && p[1] != '\0')
					p++;
				if (n + 1 < sizeof(val))
					val[n++] = *p;
			}
		}
		val[n] = '\0';
		/* a keyword given twice: the last wins, as in libpq */
		if ((size_t)(eq - k) == klen && strncmp(k, key, klen) == 0) {
			copy_out(out, outsz, val, n);
			found = true;
		}
	}
	return found;
}

static char pg_base[2048];     /* $DOKU_TEST_PG_CONNINFO with TLS */
static char pg_db0[128];       /* pg_run.sh's database */
static char pg_db[128];        /* the current one */
static unsigned pg_dbs;

/* pg_conninfo: pg_base naming the current database. */
static void conninfo_make(void)
{
	bool uri = strncmp(pg_base, "postgres://", 11) == 0 || strncmp(pg_base, "postgresql://", 13) == 0;
	int n;

	if (strcmp(pg_db, pg_db0) == 0)
		n = snprintf(pg_conninfo, sizeof(pg_conninfo), "%s", pg_base);
	else if (uri)
		n = snprintf(pg_conninfo, sizeof(pg_conninfo), "%s%sdbname=%s", pg_base,
			     strchr(pg_base, '?') != NULL ? "&" : "?", pg_db);
	else /* the last dbname wins */
		n = snprintf(pg_conninfo, sizeof(pg_conninfo), "%s dbname=%s", pg_base, pg_db);
	assert_true(n > 0 && (size_t)n < sizeof(pg_conninfo));
}

bool h_pg_init(void)
{
	const char *base = getenv("DOKU_TEST_PG_CONNINFO"), *ca = getenv("DOKU_TEST_PG_CA");
	size_t k = 0;

	if (pg_ready)
		return true;
	if (base == NULL || base[0] == '\0' || getenv("DOKU_TEST_PG_PASSWORD_FILE") == NULL)
		return false;
	for (size_t i = 0; pg_vars[i] != NULL; i++) {
		const char *v = getenv(pg_vars[i]);

		if (v == NULL)
			continue;
		assert_true(k < PG_ENV_MAX);
		assert_true(asprintf(&pg_super_env[k++], "%s=%s", pg_vars[i], v) > 0);
		/* the database of pg_run.sh, when its conninfo does not say */
		if (strcmp(pg_vars[i], "PGDATABASE") == 0)
			snprintf(pg_db0, sizeof(pg_db0), "%s", v);
		assert_int_equal(unsetenv(pg_vars[i]), 0);
	}
	if (!conninfo_get(base, "dbname", pg_db0, sizeof(pg_db0)) && pg_db0[0] == '\0')
		fail_msg("$DOKU_TEST_PG_CONNINFO names no database: %s", base);
	snprintf(pg_db, sizeof(pg_db), "%s", pg_db0);
	/* with the CA: verify-full, whatever sslmode the conninfo says (the last one wins) */
	if (ca == NULL || ca[0] == '\0')
		snprintf(pg_base, sizeof(pg_base), "%s", base);
	else if (strncmp(base, "postgres://", 11) == 0 || strncmp(base, "postgresql://", 13) == 0)
		snprintf(pg_base, sizeof(pg_base), "%s%ssslmode=verify-full&sslrootcert=%s", base,
			 strchr(base, '?') != NULL ? "&" : "?", ca);
	else
		snprintf(pg_base, sizeof(pg_base), "%s sslmode=verify-full sslrootcert=%s", base, ca);
	pg_ready = true;
	conninfo_make();
	return true;
}

/* The role's password (malloc'd), NULL when not inside pg_run.sh. */
static char *pg_password(size_t *len)
{
	const char *path = getenv("DOKU_TEST_PG_PASSWORD_FILE");

	if (!pg_ready || path == NULL)
		return NULL;
	return slurp(path, len);
}

const char *h_pg_conninfo(void)
{
	assert_true(pg_ready);
	return pg_conninfo;
}

const char *h_pg_dbname(void)
{
	assert_true(pg_ready);
	return pg_db;
}

const char *h_pg_role(void)
{
	static char role[128];

	assert_true(pg_ready);
	if (!conninfo_get(getenv("DOKU_TEST_PG_CONNINFO"), "user", role, sizeof(role)))
		fail_msg("$DOKU_TEST_PG_CONNINFO names no user");
	return role;
}

void h_pg_new_db(void)
{
	char sql[512], role[128], *owner = NULL;

	assert_true(pg_ready);
	snprintf(sql, sizeof(sql), "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = '%s'",
		 pg_db0);
	assert_int_equal(h_pg_sql("postgres", sql, &owner), 0);
	owner[strcspn(owner, "\n")] = '\0';
	assert_true(owner[0] != '\0');
	snprintf(pg_db, sizeof(pg_db), "%.48s_%d_%u", pg_db0, (int)getpid(), ++pg_dbs);
	snprintf(sql, sizeof(sql), "CREATE DATABASE \"%s\" TEMPLATE \"%s\" OWNER \"%s\"", pg_db, pg_db0,
		 owner);
	assert_int_equal(h_pg_sql("postgres", sql, NULL), 0);
	/* the database's own grants are not copied: the role may only connect, as to pg_run.sh's */
	if (conninfo_get(getenv("DOKU_TEST_PG_CONNINFO"), "user", role, sizeof(role))) {
		snprintf(sql, sizeof(sql), "REVOKE ALL ON DATABASE \"%s\" FROM PUBLIC; "
			 "GRANT CONNECT ON DATABASE \"%s\" TO \"%s\"", pg_db, pg_db, role);
		assert_int_equal(h_pg_sql("postgres", sql, NULL), 0);
	}
	free(owner);
	conninfo_make();
}

void h_fleet_key(const h_env *e, char path[PATH_MAX])
{
	char creds[PATH_MAX];
	unsigned char raw[32];
	FILE *f;
	int fd;

	join(creds, e->dir, "creds");
	join(path, creds, "fleet.key");
	if (access(path, F_OK) == 0)
		return;
	f = fopen("/dev/urandom", "rb");
	assert_non_null(f);
	assert_int_equal(fread(raw, 1, sizeof(raw), f), sizeof(raw));
	fclose(f);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	for (size_t i = 0; i < sizeof(raw); i++)
		assert_true(dprintf(fd, "%02x", raw[i]) == 2);
	assert_true(dprintf(fd, "\n") == 1);
	assert_int_equal(close(fd), 0);
}

void h_pg_bridge(const h_env *e, const char *extra, char *out, size_t outsz)
{
	char key[PATH_MAX];
	int n;

	assert_true(pg_ready);
	h_fleet_key(e, key);
	n = snprintf(out, outsz,
		     "state_backend = postgres\n"
		     "state_postgres = %s\n"
		     "state_postgres_password_file = %s\n"
		     "state_key_file = %s\n"
		     "%s\n",
		     pg_conninfo, getenv("DOKU_TEST_PG_PASSWORD_FILE"), key, extra != NULL ? extra : "");
	assert_true(n > 0 && (size_t)n < outsz);
}

/* Run argv (argv[0] looked up in $PATH) with envp, bounded by H_WAIT_MS: its
 * exit status (-1: killed); stdout and stderr (malloc'd) into *out, *err when
 * not NULL. */
static int run_capture(char *const argv[], char *const envp[], char **out, char **err)
{
	int po[2], pe[2], status = 0;
	char *buf[2] = { NULL, NULL };
	size_t len[2] = { 0, 0 };
	bool open_[2] = { true, true };
	uint64_t end = h_now_ms() + H_WAIT_MS;
	posix_spawn_file_actions_t fa;
	pid_t pid;

	assert_int_equal(pipe2(po, O_CLOEXEC), 0);
	assert_int_equal(pipe2(pe, O_CLOEXEC), 0);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, po[1], STDOUT_FILENO);
	posix_spawn_file_actions_adddup2(&fa, pe[1], STDERR_FILENO);
	assert_int_equal(posix_spawnp(&pid, argv[0], &fa, NULL, argv, envp), 0);
	posix_spawn_file_actions_destroy(&fa);
	close(po[1]);
	close(pe[1]);
	while (open_[0] || open_[1]) {
		struct pollfd p[2] = { { open_[0] ? po[0] : -1, POLLIN, 0 },
				       { open_[1] ? pe[0] : -1, POLLIN, 0 } };
		int left = (int)(end - h_now_ms());

		if (left <= 0) {
			kill(pid, SIGKILL);
			fail_msg("%s did not finish within %d ms", argv[0], H_WAIT_MS);
		}
		assert_true(poll(p, 2, left) >= 0);
		for (int k = 0; k < 2; k++) {
			char chunk[65536];
			ssize_t n;

			if (!open_[k] || p[k].revents == 0)
				continue;
			n = read(k == 0 ? po[0] : pe[0], chunk, sizeof(chunk));
			if (n <= 0) {
				open_[k] = false;
				continue;
			}
			assert_true(len[k] + (size_t)n < CAPTURE_MAX);
			buf[k] = realloc(buf[k], len[k] + (size_t)n + 1);
			assert_non_null(buf[k]);
			memcpy(buf[k] + len[k], chunk, (size_t)n);
			len[k] += (size_t)n;
			buf[k][len[k]] = '\0';
		}
	}
	close(po[0]);
	close(pe[0]);
	status = wait_exit(pid);
	for (int k = 0; k < 2; k++)
		if (buf[k] == NULL) {
			buf[k] = calloc(1, 1);
			assert_non_null(buf[k]);
		}
	if (out != NULL)
		*out = buf[0];
	else
		free(buf[0]);
	if (err != NULL)
		*err = buf[1];
	else
		free(buf[1]);
	return status;
}

/* environ with the superuser's libpq variables added (free the array, not its strings). */
static char **super_envp(void)
{
	size_t n = 0, k = 0;
	char **envp;

	while (environ[n] != NULL)
		n++;
	envp = calloc(n + PG_ENV_MAX + 1, sizeof(*envp));
	assert_non_null(envp);
	for (size_t i = 0; i < n; i++)
		envp[k++] = environ[i];
	for (size_t i = 0; pg_super_env[i] != NULL; i++)
		envp[k++] = pg_super_env[i];
	return envp;
}

int h_pg_sql(const char *db, const char *sql, char **out)
{
	char *argv[] = { "psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d",
			 (char *)(db != NULL ? db : pg_db), "-c", (char *)sql, NULL };
	char **envp = super_envp(), *err = NULL;
	int st;

	assert_true(pg_ready);
	st = run_capture(argv, envp, out, &err);
	if (st != 0)
		fprintf(stderr, "psql -c \"%s\": exit %d: %s", sql, st, err);
	free(err);
	free(envp);
	return st;
}

static void pg_ctl(const char *action)
{
	const char *version = getenv("PGVERSION"), *cluster = getenv("DOKU_TEST_PG_CLUSTER");
	char *argv[] = { "pg_ctlcluster", (char *)(version != NULL ? version : "15"),
			 (char *)(cluster != NULL ? cluster : "regress"), (char *)action, NULL };
	char *out = NULL, *err = NULL;
	int st;

	assert_true(pg_ready);
	st = run_capture(argv, environ, &out, &err);
	if (st != 0)
		fail_msg("pg_ctlcluster %s %s %s: exit %d: %s%s", argv[1], argv[2], action, st, out, err);
	free(out);
	free(err);
}

void h_pg_stop(void)
{
	pg_ctl("stop");
}

void h_pg_start(void)
{
	pg_ctl("start");
}

int h_tool(h_env *e, const char *const *args, char **out, char **err)
{
	char *argv[16];
	size_t k = 0;
	char *o = NULL, *r = NULL;
	int st;

	argv[k++] = (char *)(e->daemon_bin != NULL ? e->daemon_bin : DOKU_BRIDGED_BIN);
	argv[k++] = "--config";
	argv[k++] = e->conf;
	for (size_t i = 0; args[i] != NULL; i++) {
		assert_true(k + 1 < sizeof(argv) / sizeof(argv[0]));
		argv[k++] = (char *)args[i];
	}
	argv[k] = NULL;
	st = run_capture(argv, environ, &o, &r);
	h_record(o, strlen(o)); /* the leak scan covers what the tools print */
	h_record(r, strlen(r));
	if (out != NULL)
		*out = o;
	else
		free(o);
	if (err != NULL)
		*err = r;
	else
		free(r);
	return st;
}

double h_metric(h_env *e, const char *name, const char *labels)
{
	Doku__Wallet__V1__MetricsRequest mq = DOKU__WALLET__V1__METRICS_REQUEST__INIT;
	Doku__Wallet__V1__MetricsResponse *mr = NULL;
	dokubridge_client *c = h_client(e);
	dokubridge_result res;
	double v;
	prom pm;

	OK_CALL(c, NULL, "Metrics", mq, &mr, &res);
	if (prom_parse(mr->text, &pm) != 0)
		fail_msg("Metrics text: %s\n%s", pm.error, mr->text);
	v = prom_get(&pm, name, labels);
	prom_free(&pm);
	dokubridge_message_free(mr);
	dokubridge_free(c);
	return v;
}

void h_fleet_start(h_env *fl, unsigned n, const char *extra)
{
	char bridge[4 * PATH_MAX + 2048], name[16];

	assert_true(n >= 1 && n <= H_FLEET_MAX);
	if (!h_pg_init()) {
		fprintf(stderr, "not inside tests/tools/pg_run.sh (no $DOKU_TEST_PG_CONNINFO): skipped\n");
		skip();
	}
	h_pg_new_db();
	h_setup(&fl[0]);
	for (unsigned i = 1; i < n; i++) {
		snprintf(name, sizeof(name), "d%u", i);
		h_setup_second(&fl[i], &fl[0], name);
	}
	/* all at once: the schema is made (or checked) under a lock, once */
	for (unsigned i = 0; i < n; i++) {
		char more[512];

		/* $DOKU_IT_FLEET_EXTRA: more [bridge] lines, e.g. "log_level = debug" */
		snprintf(more, sizeof(more), "%s\n%s", extra != NULL ? extra : "",
			 getenv("DOKU_IT_FLEET_EXTRA") != NULL ? getenv("DOKU_IT_FLEET_EXTRA") : "");
		h_pg_bridge(&fl[i], more, bridge, sizeof(bridge));
		h_write_config(&fl[i], bridge, NULL);
		fl[i].daemon_pid = h_daemon_spawn(&fl[i]);
	}
	for (unsigned i = 0; i < n; i++)
		if (!h_wait_notify(&fl[i], "READY=1"))
			fail_msg("fleet daemon %u did not become ready (see %s)", i, fl[i].log);
}

void h_fleet_teardown(h_env *fl, unsigned n)
{
	for (unsigned i = n; i-- > 0;)
		h_teardown(&fl[i]);
}

void h_fleet_kill(h_env *fl, unsigned n)
{
	for (unsigned i = n; i-- > 0;)
		h_kill(&fl[i]);
}
