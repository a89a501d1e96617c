/* Test helpers for doku-snapsim. */
#include "simtest.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "snap_extid.h"
#include "snap_time.h"

#ifndef SNAPSIM_BIN
#error "SNAPSIM_BIN must name the doku-snapsim binary"
#endif
#ifndef MKCREDS
#error "MKCREDS must name tests/tools/mkcreds.sh"
#endif

#define READY_LINE_MAX 256
#define ARGS_MAX 48
#define HEADER_TEXT_MAX 4200
#define PEM_MAX (64 * 1024)

static unsigned long ref_counter;

static void failf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void failf(const char *fmt, ...)
{
	va_list ap;

	fputs("simtest: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static long now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* ---- credentials -------------------------------------------------------- */

int simtest_make_creds(char dir[PATH_MAX])
{
	const char *tmp = getenv("TMPDIR");
	char cmd[PATH_MAX * 2 + 64];

	snprintf(dir, PATH_MAX, "%s/snapsim-test-XXXXXX", tmp != NULL ? tmp : "/tmp");
	if (mkdtemp(dir) == NULL) {
		failf("mkdtemp: %s", strerror(errno));
		return -1;
	}
	snprintf(cmd, sizeof(cmd), "bash '%s' '%s'", MKCREDS, dir);
	if (system(cmd) != 0) {
		failf("%s failed", cmd);
		return -1;
	}
	return 0;
}

void simtest_remove_creds(const char *dir)
{
	char cmd[PATH_MAX + 32];

	if (dir == NULL || dir[0] == '\0' || strstr(dir, "snapsim-test-") == NULL)
		return;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		failf("%s failed", cmd);
}

/* dir "/" name into out; -1 when it does not fit. */
static int path_join(char *out, size_t n, const char *dir, const char *name)
{
	int w = snprintf(out, n, "%s/%s", dir, name);

	return w < 0 || (size_t)w >= n ? -1 : 0;
}

static int read_file(const char *path, char *buf, size_t max, size_t *len)
{
	FILE *f = fopen(path, "rb");

	if (f == NULL)
		return -1;
	*len = fread(buf, 1, max - 1, f);
	buf[*len] = '\0';
	fclose(f);
	return 0;
}

/* ---- the child ---------------------------------------------------------- */

static pid_t spawn(const char *const *args, int *out_fd, int *err_fd)
{
	const char *argv[ARGS_MAX];
	int out[2], err[2] = { -1, -1 };
	size_t n = 0;
	pid_t pid;

	argv[n++] = SNAPSIM_BIN;
	for (; args != NULL && *args != NULL && n < ARGS_MAX - 1; args++)
		argv[n++] = *args;
	argv[n] = NULL;
	if (pipe2(out, O_CLOEXEC) != 0)
		return -1;
	if (err_fd != NULL && pipe2(err, O_CLOEXEC) != 0) {
		close(out[0]);
		close(out[1]);
		return -1;
	}
	pid = fork();
	if (pid == 0) {
		dup2(out[1], STDOUT_FILENO);
		if (err_fd != NULL)
			dup2(err[1], STDERR_FILENO);
		execv(SNAPSIM_BIN, (char *const *)argv);
		_exit(127);
	}
	close(out[1]);
	if (err_fd != NULL)
		close(err[1]);
	if (pid < 0) {
		close(out[0]);
		if (err_fd != NULL)
			close(err[0]);
		return -1;
	}
	*out_fd = out[0];
	if (err_fd != NULL)
		*err_fd = err[0];
	return pid;
}

/* Read one line from fd within timeout_ms. 0 or -1. */
static int read_line(int fd, char *line, size_t max, long timeout_ms)
{
	long deadline = now_ms() + timeout_ms;
	size_t n = 0;

	while (n + 1 < max) {
		struct pollfd pfd = { fd, POLLIN, 0 };
		long left = deadline - now_ms();
		char ch;
		ssize_t got;

		if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
			return -1;
		got = read(fd, &ch, 1);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			return -1;
		if (ch == '\n') {
			line[n] = '\0';
			return 0;
		}
		line[n++] = ch;
	}
	return -1;
}

/* Wait for the child to end within timeout_ms: its status, or -1. */
static int wait_exit(pid_t pid, long timeout_ms, int *status)
{
	int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	long deadline = now_ms() + timeout_ms;

	if (pidfd >= 0) {
		struct pollfd pfd = { pidfd, POLLIN, 0 };
		int rc;

		do
			rc = poll(&pfd, 1, (int)(timeout_ms > 0 ? timeout_ms : 0));
		while (rc < 0 && errno == EINTR);
		close(pidfd);
		if (rc <= 0)
			return -1;
		return waitpid(pid, status, 0) == pid ? 0 : -1;
	}
	/* no pidfd: poll the child's state */
	while (now_ms() < deadline) {
		struct timespec tick = { 0, 10 * 1000000L };

		if (waitpid(pid, status, WNOHANG) == pid)
			return 0;
		nanosleep(&tick, NULL);
	}
	return -1;
}

static int exit_code(int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return -1;
}

int simtest_start(simtest_proc *p, const char *creds, const char *const *extra)
{
	char cert[PATH_MAX], key[PATH_MAX], secret[PATH_MAX], pub[PATH_MAX], idpath[PATH_MAX];
	char client_id[128], line[READY_LINE_MAX];
	const char *args[ARGS_MAX];
	size_t n = 0, idlen;
	char tail[8];

	memset(p, 0, sizeof(*p));
	p->pid = -1;
	p->out_fd = -1;
	snprintf(p->creds, sizeof(p->creds), "%s", creds);
	if (path_join(cert, sizeof(cert), creds, "server.pem") != 0 ||
	    path_join(key, sizeof(key), creds, "server.key") != 0 ||
	    path_join(secret, sizeof(secret), creds, "client-secret") != 0 ||
	    path_join(pub, sizeof(pub), creds, "partner.pub") != 0 ||
	    path_join(idpath, sizeof(idpath), creds, "client-id") != 0 ||
	    read_file(idpath, client_id, sizeof(client_id), &idlen) != 0)
		return -1;
	args[n++] = "--listen";
	args[n++] = "127.0.0.1:0";
	args[n++] = "--control";
	args[n++] = "127.0.0.1:0";
	args[n++] = "--tls-cert";
	args[n++] = cert;
	args[n++] = "--tls-key";
	args[n++] = key;
	args[n++] = "--client-id";
	args[n++] = client_id;
	args[n++] = "--client-secret-file";
	args[n++] = secret;
	args[n++] = "--partner-public-key";
	args[n++] = pub;
	for (; extra != NULL && *extra != NULL && n < ARGS_MAX - 1; extra++)
		args[n++] = *extra;
	args[n] = NULL;
	p->pid = spawn(args, &p->out_fd, NULL);
	if (p->pid < 0)
		return -1;
	if (read_line(p->out_fd, line, sizeof(line), SIMTEST_READY_TIMEOUT_MS) != 0) {
		failf("no ready line from doku-snapsim");
		simtest_stop(p);
		return -1;
	}
	/* exactly: doku-snapsim ready https=HOST:PORT control=HOST:PORT */
	if (sscanf(line, "doku-snapsim ready https=%63s control=%63s%7s", p->https, p->control,
		   tail) != 2 || simtest_port(p->https) <= 0 || simtest_port(p->control) <= 0) {
		failf("unexpected ready line: %s", line);
		simtest_stop(p);
		return -1;
	}
	return 0;
}

int simtest_run_expect_exit(const char *const *args, char *err_out, size_t err_len)
{
	int out_fd = -1, err_fd = -1, status = 0;
	pid_t pid = spawn(args, &out_fd, &err_fd);
	size_t got = 0;

	if (pid < 0)
		return -1;
	if (err_out != NULL && err_len > 0) {
		long deadline = now_ms() + SIMTEST_STOP_TIMEOUT_MS;

		while (got + 1 < err_len) {
			struct pollfd pfd = { err_fd, POLLIN, 0 };
			long left = deadline - now_ms();
			ssize_t n;

			if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
				break;
			n = read(err_fd, err_out + got, err_len - 1 - got);
			if (n <= 0)
				break;
			got += (size_t)n;
		}
		err_out[got] = '\0';
	}
	if (wait_exit(pid, SIMTEST_STOP_TIMEOUT_MS, &status) != 0) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		status = -1;
	}
	close(out_fd);
	close(err_fd);
	return status == -1 ? -1 : exit_code(status);
}

int simtest_stop(simtest_proc *p)
{
	int status = 0, rc;

	if (p->pid <= 0)
		return -1;
	kill(p->pid, SIGTERM);
	if (wait_exit(p->pid, SIMTEST_STOP_TIMEOUT_MS, &status) != 0) {
		failf("doku-snapsim did not stop after SIGTERM; killing it");
		kill(p->pid, SIGKILL);
		waitpid(p->pid, &status, 0);
		rc = -1;
	} else {
		rc = exit_code(status);
	}
	if (p->out_fd >= 0)
		close(p->out_fd);
	p->out_fd = -1;
	p->pid = -1;
	return rc;
}

int simtest_port(const char *addr)
{
	const char *colon = strrchr(addr, ':');

	return colon != NULL ? atoi(colon + 1) : -1;
}

/* ---- replies ------------------------------------------------------------ */

void simtest_reply_free(simtest_reply *r)
{
	free(r->body);
	json_decref(r->json);
	memset(r, 0, sizeof(*r));
	r->code = "";
}

const char *simtest_field(const simtest_reply *r, const char *path)
{
	const json_t *v = r->json;
	char part[128];

	while (v != NULL && *path != '\0') {
		const char *dot = strchr(path, '.');
		size_t n = dot != NULL ? (size_t)(dot - path) : strlen(path);

		if (n >= sizeof(part))
			return "";
		memcpy(part, path, n);
		part[n] = '\0';
		v = json_object_get(v, part);
		path += n + (dot != NULL ? 1 : 0);
	}
	return json_is_string(v) ? json_string_value(v) : "";
}

struct sink {
	char *data;
	size_t len;
};

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct sink *s = userdata;
	size_t n = size * nmemb;
	char *grown;

	if (s->len + n > SIMTEST_BODY_MAX)
		return 0;
	grown = realloc(s->data, s->len + n + 1);
	if (grown == NULL)
		return 0;
	s->data = grown;
	memcpy(s->data + s->len, ptr, n);
	s->len += n;
	s->data[s->len] = '\0';
	return n;
}

static void finish_reply(CURL *curl, CURLcode rc, struct sink *sink, simtest_reply *out)
{
	memset(out, 0, sizeof(*out));
	out->curl_rc = (int)rc;
	out->code = "";
	if (rc == CURLE_OK)
		curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &out->http);
	curl_easy_getinfo(curl, CURLINFO_TOTAL_TIME, &out->seconds);
	out->body = sink->data != NULL ? sink->data : calloc(1, 1);
	out->len = sink->len;
	if (out->body != NULL && out->len > 0) {
		out->json = json_loadb(out->body, out->len, 0, NULL);
		if (json_is_string(json_object_get(out->json, "responseCode")))
			out->code = json_string_value(json_object_get(out->json, "responseCode"));
	}
}

/* ---- the client --------------------------------------------------------- */

int simtest_client_init(simtest_client *c, const simtest_proc *p)
{
	char path[PATH_MAX];
	char *pem = malloc(PEM_MAX);
	size_t len;
	int rc = -1;

	memset(c, 0, sizeof(*c));
	if (pem == NULL)
		return -1;
	snprintf(c->base, sizeof(c->base), "https://%s", p->https);
	if (path_join(c->ca, sizeof(c->ca), p->creds, "ca.pem") != 0 ||
	    path_join(path, sizeof(path), p->creds, "client-id") != 0 ||
	    read_file(path, c->client_id, sizeof(c->client_id), &len) != 0)
		goto out;
	if (path_join(path, sizeof(path), p->creds, "client-secret") != 0 ||
	    read_file(path, (char *)c->secret, sizeof(c->secret), &c->secret_len) != 0)
		goto out;
	if (path_join(path, sizeof(path), p->creds, "partner.key") != 0 ||
	    read_file(path, pem, PEM_MAX, &len) != 0 ||
	    snap_rsa_load_private_pem(pem, len, &c->key) != 0)
		goto out;
	if (snap_extid_init() != 0)
		goto out;
	c->curl = curl_easy_init();
	if (c->curl == NULL)
		goto out;
	rc = 0;
out:
	free(pem);
	return rc;
}

void simtest_client_free(simtest_client *c)
{
	if (c->curl != NULL)
		curl_easy_cleanup(c->curl);
	snap_rsa_free(c->key);
	memset(c, 0, sizeof(*c));
}

static struct curl_slist *add_header(struct curl_slist *list, const simtest_opts *o,
				     const char *name, const char *value)
{
	char line[HEADER_TEXT_MAX];

	if (o != NULL && o->omit != NULL && strcasecmp(o->omit, name) == 0) {
		/* "Name:" also stops curl from adding its own (Content-Type) */
		snprintf(line, sizeof(line), "%s:", name);
		return curl_slist_append(list, line);
	}
	if (o != NULL && o->set_name != NULL && strcasecmp(o->set_name, name) == 0)
		value = o->set_value;
	snprintf(line, sizeof(line), "%s: %s", name, value);
	return curl_slist_append(list, line);
}

static int perform(simtest_client *c, const char *path, const char *body,
		   struct curl_slist *headers, const simtest_opts *o, simtest_reply *out)
{
	char url[sizeof(c->base) + 256];
	struct sink sink = { NULL, 0 };
	CURLcode rc;

	snprintf(url, sizeof(url), "%s%s", c->base, path);
	if (o != NULL && o->set_name != NULL) {
		/* a header none of the standard ones: add it as given */
		bool known = false;

		for (struct curl_slist *h = headers; h != NULL; h = h->next)
			if (strncasecmp(h->data, o->set_name, strlen(o->set_name)) == 0 &&
			    h->data[strlen(o->set_name)] == ':')
				known = true;
		if (!known)
			headers = add_header(headers, NULL, o->set_name, o->set_value);
	}
	if (o == NULL || !o->expect_100)
		headers = curl_slist_append(headers, "Expect:");
	curl_easy_reset(c->curl);
	curl_easy_setopt(c->curl, CURLOPT_URL, url);
	curl_easy_setopt(c->curl, CURLOPT_CAINFO, c->ca);
	curl_easy_setopt(c->curl, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(c->curl, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(c->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c->curl, CURLOPT_TIMEOUT, (long)SIMTEST_HTTP_TIMEOUT_S);
	curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, &sink);
	if (o != NULL && o->fresh_connection) {
		curl_easy_setopt(c->curl, CURLOPT_FRESH_CONNECT, 1L);
		curl_easy_setopt(c->curl, CURLOPT_FORBID_REUSE, 1L);
	}
	if (o != NULL && o->method != NULL && strcmp(o->method, "GET") == 0) {
		curl_easy_setopt(c->curl, CURLOPT_HTTPGET, 1L);
	} else {
		curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
		if (o != NULL && o->method != NULL)
			curl_easy_setopt(c->curl, CURLOPT_CUSTOMREQUEST, o->method);
	}
	rc = curl_easy_perform(c->curl);
	finish_reply(c->curl, rc, &sink, out);
	curl_slist_free_all(headers);
	return rc == CURLE_OK ? 0 : -1;
}

static void timestamp_now(char ts[SNAP_TIMESTAMP_LEN + 1])
{
	if (snap_time_format(time(NULL), ts) != 0)
		ts[0] = '\0';
}

static void corrupt(char *sig)
{
	size_t n = strlen(sig);

	if (n > 4)
		sig[n / 2] = sig[n / 2] == 'A' ? 'B' : 'A';
}

int simtest_token(simtest_client *c, const char *path, const char *body,
		  const simtest_opts *o, simtest_reply *out)
{
	char ts[SNAP_TIMESTAMP_LEN + 1];
	char sig[SNAP_RSA_SIG_B64_MAX];
	const char *stamp = o != NULL && o->timestamp != NULL ? o->timestamp : NULL;
	struct curl_slist *h = NULL;

	if (stamp == NULL) {
		timestamp_now(ts);
		stamp = ts;
	}
	if (snap_sign_token(c->key, c->client_id, stamp, sig, sizeof(sig)) != 0)
		return -1;
	if (o != NULL && o->bad_signature)
		corrupt(sig);
	h = add_header(h, o, "Content-Type", "application/json");
	h = add_header(h, o, "X-CLIENT-KEY", c->client_id);
	h = add_header(h, o, "X-TIMESTAMP", stamp);
	h = add_header(h, o, "X-SIGNATURE", sig);
	return perform(c, path, body, h, o, out);
}

int simtest_call(simtest_client *c, const char *path, const char *body,
		 const simtest_opts *o, simtest_reply *out)
{
	char ts[SNAP_TIMESTAMP_LEN + 1];
	char sig[SNAP_HMAC_B64_LEN + 1];
	char ext[SNAP_EXTID_MAX + 1];
	char bearer[SIMTEST_TOKEN_MAX + 16];
	const char *stamp = o != NULL && o->timestamp != NULL ? o->timestamp : NULL;
	const char *token = o != NULL && o->b2b_token != NULL ? o->b2b_token : c->b2b;
	const char *signed_body = o != NULL && o->sign_body != NULL ? o->sign_body : body;
	const void *secret = c->secret;
	size_t secret_len = c->secret_len;
	struct curl_slist *h = NULL;

	if (stamp == NULL) {
		timestamp_now(ts);
		stamp = ts;
	}
	if (o != NULL && o->secret != NULL) {
		secret = o->secret;
		secret_len = strlen(o->secret);
	}
	if (snap_sign_service(secret, secret_len, "POST", path, token, signed_body,
			      strlen(signed_body), stamp, sig) != 0)
		return -1;
	if (o != NULL && o->bad_signature)
		corrupt(sig);
	if (o != NULL && o->external_id != NULL)
		snprintf(ext, sizeof(ext), "%s", o->external_id);
	else if (snap_extid_next(ext) != 0)
		return -1;
	h = add_header(h, o, "Content-Type", "application/json");
	snprintf(bearer, sizeof(bearer), "Bearer %s", token);
	h = add_header(h, o, "Authorization", bearer);
	h = add_header(h, o, "X-TIMESTAMP", stamp);
	h = add_header(h, o, "X-SIGNATURE", sig);
	h = add_header(h, o, "X-PARTNER-ID", c->client_id);
	h = add_header(h, o, "X-EXTERNAL-ID", o != NULL && o->external_id != NULL ? o->external_id : ext);
	h = add_header(h, o, "CHANNEL-ID", "95221");
	if (strstr(path, "/b2b2c/") != NULL) {
		snprintf(bearer, sizeof(bearer), "Bearer %s",
			 o != NULL && o->customer_token != NULL ? o->customer_token : c->customer);
		h = add_header(h, o, "Authorization-Customer", bearer);
	}
	return perform(c, path, body, h, o, out);
}

int simtest_b2b(simtest_client *c)
{
	simtest_reply r;
	int rc = -1;

	if (simtest_token(c, "/authorization/v1/access-token/b2b",
			  "{\"grantType\":\"client_credentials\"}", NULL, &r) == 0 && r.http == 200) {
		snprintf(c->b2b, sizeof(c->b2b), "%s", simtest_field(&r, "accessToken"));
		rc = c->b2b[0] != '\0' ? 0 : -1;
	}
	if (rc != 0)
		failf("B2B token: HTTP %ld %s", r.http, r.body != NULL ? r.body : "");
	simtest_reply_free(&r);
	return rc;
}

/* ---- control API -------------------------------------------------------- */

static long ctl_request(const simtest_proc *p, const char *method, const char *path,
			const char *body, struct sink *sink)
{
	CURL *curl = curl_easy_init();
	char url[SIMTEST_ADDR_MAX + 256];
	long status = -1;

	if (curl == NULL)
		return -1;
	snprintf(url, sizeof(url), "http://%s%s", p->control, path);
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT, (long)SIMTEST_HTTP_TIMEOUT_S);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, sink);
	curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
	if (body != NULL) {
		curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
	}
	if (curl_easy_perform(curl) == CURLE_OK)
		curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(curl);
	return status;
}

long simtest_ctl(const simtest_proc *p, const char *method, const char *path, const char *body,
		 json_t **out)
{
	struct sink sink = { NULL, 0 };
	long status = ctl_request(p, method, path, body, &sink);

	if (out != NULL)
		*out = sink.data != NULL ? json_loadb(sink.data, sink.len, 0, NULL) : NULL;
	free(sink.data);
	return status;
}

long simtest_ctl_text(const simtest_proc *p, const char *path, char **text)
{
	struct sink sink = { NULL, 0 };
	long status = ctl_request(p, "GET", path, NULL, &sink);

	*text = sink.data != NULL ? sink.data : calloc(1, 1);
	return status;
}

/* ---- references and the customer journey -------------------------------- */

void simtest_ref(char *out, size_t n, const char *prefix)
{
	snprintf(out, n, "%s-%d-%lu", prefix, (int)getpid(), ++ref_counter);
}

void simtest_phone(char *out, size_t n)
{
	snprintf(out, n, "0812%05d%03lu", (int)(getpid() % 100000), ++ref_counter % 1000);
}

static int expect(simtest_reply *r, long http, const char *what)
{
	if (r->http == http)
		return 0;
	failf("%s: HTTP %ld (curl %d) %s", what, r->http, r->curl_rc, r->body != NULL ? r->body : "");
	return -1;
}

static const char *json_str(const json_t *o, const char *name)
{
	const char *s = json_string_value(json_object_get(o, name));

	return s != NULL ? s : "";
}

int simtest_new_account(simtest_client *c, const simtest_proc *p, simtest_customer *cu)
{
	char body[1024], ref[80], ctl_path[128], otp[16], reference_no[64];
	simtest_reply r;
	json_t *j = NULL;
	int rc = -1;

	memset(cu, 0, sizeof(*cu));
	memset(&r, 0, sizeof(r));
	if (c->b2b[0] == '\0' && simtest_b2b(c) != 0)
		return -1;
	simtest_phone(cu->phone, sizeof(cu->phone));
	simtest_ref(ref, sizeof(ref), "create");
	snprintf(body, sizeof(body),
		 "{\"partnerReferenceNo\":\"%s\",\"name\":\"Test Customer\",\"phoneNo\":\"%s\","
		 "\"email\":\"c%s@example.com\",\"redirectUrl\":\"https://merchant.example/done\"}",
		 ref, cu->phone, cu->phone);
	if (simtest_call(c, P_CREATE, body, NULL, &r) != 0 || expect(&r, 200, "CreateAccount") != 0)
		goto out;
	snprintf(reference_no, sizeof(reference_no), "%s", simtest_field(&r, "referenceNo"));
	simtest_reply_free(&r);
	snprintf(ctl_path, sizeof(ctl_path), "/control/otps?phoneNo=%s", cu->phone);
	if (simtest_ctl(p, "GET", ctl_path, NULL, &j) != 200 || json_array_size(j) != 1)
		goto out;
	snprintf(otp, sizeof(otp), "%s", json_str(json_array_get(j, 0), "otp"));
	json_decref(j);
	j = NULL;
	snprintf(body, sizeof(body),
		 "{\"originalPartnerReferenceNo\":\"%s\",\"originalReferenceNo\":\"%s\",\"otp\":\"%s\"}",
		 ref, reference_no, otp);
	if (simtest_call(c, P_VERIFY_OTP, body, NULL, &r) != 0 || expect(&r, 200, "VerifyOtp") != 0)
		goto out;
	simtest_reply_free(&r);
	snprintf(body, sizeof(body), "{\"phoneNo\":\"%s\",\"pin\":\"" SIMTEST_PIN "\"}", cu->phone);
	if (simtest_ctl(p, "POST", "/control/pin", body, &j) != 200)
		goto out;
	snprintf(cu->account_id, sizeof(cu->account_id), "%s", json_str(j, "accountId"));
	rc = cu->account_id[0] != '\0' ? 0 : -1;
out:
	if (rc != 0)
		failf("account creation failed (%s)", r.body != NULL ? r.body : "control API");
	simtest_reply_free(&r);
	json_decref(j);
	return rc;
}

int simtest_open_customer(simtest_client *c, const simtest_proc *p, simtest_customer *cu)
{
	char body[1024];
	simtest_reply r;
	long approved;
	int rc = -1;

	memset(&r, 0, sizeof(r));
	if (simtest_new_account(c, p, cu) != 0)
		return -1;
	simtest_ref(cu->bind_ref, sizeof(cu->bind_ref), "bind");
	snprintf(body, sizeof(body),
		 "{\"partnerReferenceNo\":\"%s\",\"redirectUrl\":\"https://merchant.example/bound\","
		 "\"successParams\":{\"accountId\":\"%s\"}}", cu->bind_ref, cu->phone);
	if (simtest_call(c, P_BIND, body, NULL, &r) != 0 || expect(&r, 200, "BindAccount") != 0)
		goto out;
	snprintf(cu->link_id, sizeof(cu->link_id), "%s", simtest_field(&r, "linkId"));
	simtest_reply_free(&r);
	snprintf(body, sizeof(body), "{\"linkId\":\"%s\",\"pin\":\"" SIMTEST_PIN "\"}", cu->link_id);
	/* 409: already approved (auto-approval is on) */
	approved = simtest_ctl(p, "POST", "/control/bindings/approve", body, NULL);
	if (approved != 200 && approved != 409)
		goto out;
	snprintf(body, sizeof(body), "{\"partnerReferenceNo\":\"%s\"}", cu->bind_ref);
	if (simtest_call(c, P_INQUIRE, body, NULL, &r) != 0 || expect(&r, 200, "InquireAccount") != 0)
		goto out;
	snprintf(cu->auth_code, sizeof(cu->auth_code), "%s",
		 simtest_field(&r, "additionalInfo.authCode"));
	simtest_reply_free(&r);
	snprintf(body, sizeof(body), "{\"grantType\":\"authorization_code\",\"authCode\":\"%s\"}",
		 cu->auth_code);
	if (simtest_token(c, P_TOKEN_B2B2C, body, NULL, &r) != 0 || expect(&r, 200, "B2B2C token") != 0)
		goto out;
	snprintf(c->customer, sizeof(c->customer), "%s", simtest_field(&r, "accessToken"));
	snprintf(c->refresh, sizeof(c->refresh), "%s", simtest_field(&r, "refreshToken"));
	rc = c->customer[0] != '\0' ? 0 : -1;
out:
	if (rc != 0)
		failf("customer journey failed (%s)", r.body != NULL ? r.body : "control API");
	simtest_reply_free(&r);
	return rc;
}

int simtest_top_up(simtest_client *c, const simtest_customer *cu, const char *amount)
{
	char body[512], ref[80];
	simtest_reply r;
	int rc;

	simtest_ref(ref, sizeof(ref), "topup");
	snprintf(body, sizeof(body),
		 "{\"partnerReferenceNo\":\"%s\",\"customerNumber\":\"%s\",\"amount\":{\"value\":\"%s\","
		 "\"currency\":\"IDR\"},\"sessionId\":\"s-1\",\"notes\":\"top up\"}",
		 ref, cu->account_id, amount);
	rc = simtest_call(c, "/snap-adapter/b2b2c/v1.0/emoney/topup", body, NULL, &r);
	if (rc == 0)
		rc = expect(&r, 200, "TopUp");
	simtest_reply_free(&r);
	return rc;
}
