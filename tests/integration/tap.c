/* The recording TLS proxy of the integration tests (libmicrohttpd + libcurl). */
#include "tap.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TAP_BODY_MAX (4u * 1024u * 1024u)
#define TAP_TOKENS_MAX 100000u
#define TAP_TIMEOUT_S 120L

struct tap {
	struct MHD_Daemon *d;
	char upstream[128];
	char ca[4096];
	char *cert, *key;
	pthread_mutex_t lock;
	char **tokens;
	size_t ntokens;
	unsigned long received;
};

struct buf {
	char *p;
	size_t n;
};

struct req {
	struct buf body;
	struct curl_slist *headers;
	tap *t;
};

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *p;
	long n;

	if (f == NULL)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	p = calloc(1, (size_t)n + 1);
	if (p != NULL && fread(p, 1, (size_t)n, f) != (size_t)n) {
		free(p);
		p = NULL;
	}
	fclose(f);
	return p;
}

static void add_token(tap *t, const char *tok, size_t n)
{
	char *copy;

	if (n == 0)
		return;
	pthread_mutex_lock(&t->lock);
	for (size_t i = 0; i < t->ntokens; i++)
		if (strlen(t->tokens[i]) == n && memcmp(t->tokens[i], tok, n) == 0) {
			pthread_mutex_unlock(&t->lock);
			return;
		}
	if (t->ntokens < TAP_TOKENS_MAX && (copy = strndup(tok, n)) != NULL) {
		char **grown = realloc(t->tokens, (t->ntokens + 1) * sizeof(*grown));

		if (grown != NULL) {
			t->tokens = grown;
			t->tokens[t->ntokens++] = copy;
		} else {
			free(copy);
		}
	}
	pthread_mutex_unlock(&t->lock);
}

static bool append(struct buf *b, const void *p, size_t n)
{
	char *q;

	if (b->n + n > TAP_BODY_MAX)
		return false;
	q = realloc(b->p, b->n + n + 1);
	if (q == NULL)
		return false;
	memcpy(q + b->n, p, n);
	b->p = q;
	b->n += n;
	b->p[b->n] = '\0';
	return true;
}

static size_t on_body(char *p, size_t size, size_t nmemb, void *arg)
{
	return append(arg, p, size * nmemb) ? size * nmemb : 0;
}

static enum MHD_Result on_header(void *cls, enum MHD_ValueKind kind, const char *key,
				 const char *value)
{
	struct req *r = cls;
	char line[8192];

	(void)kind;
	if (strcasecmp(key, "Host") == 0 || strcasecmp(key, "Content-Length") == 0 ||
	    strcasecmp(key, "Connection") == 0 || strcasecmp(key, "Expect") == 0 ||
	    strcasecmp(key, "Transfer-Encoding") == 0)
		return MHD_YES;
	if ((strcasecmp(key, "Authorization") == 0 || strcasecmp(key, "Authorization-Customer") == 0) &&
	    strncmp(value, "Bearer ", 7) == 0)
		add_token(r->t, value + 7, strlen(value + 7));
	snprintf(line, sizeof(line), "%s: %s", key, value);
	r->headers = curl_slist_append(r->headers, line);
	return MHD_YES;
}

static void record_answer(tap *t, const char *body, size_t n)
{
	static const char *const keys[] = { "accessToken", "refreshToken" };
	json_t *root = json_loadb(body, n, 0, NULL);

	if (root == NULL)
		return;
	for (size_t i = 0; i < 2; i++) {
		const char *v = json_string_value(json_object_get(root, keys[i]));

		if (v != NULL)
			add_token(t, v, strlen(v));
	}
	json_decref(root);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version, const char *upload,
				  size_t *upload_size, void **con_cls)
{
	tap *t = cls;
	struct req *r = *con_cls;
	struct buf answer = { NULL, 0 };
	struct MHD_Response *resp;
	char target[4096];
	long status = 0;
	CURL *e;
	CURLcode cc;
	enum MHD_Result ret;

	(void)version;
	if (r == NULL) {
		r = calloc(1, sizeof(*r));
		if (r == NULL)
			return MHD_NO;
		r->t = t;
		*con_cls = r;
		return MHD_YES;
	}
	if (*upload_size > 0) {
		if (!append(&r->body, upload, *upload_size))
			return MHD_NO;
		*upload_size = 0;
		return MHD_YES;
	}
	MHD_get_connection_values(conn, MHD_HEADER_KIND, on_header, r);
	pthread_mutex_lock(&t->lock);
	t->received++;
	pthread_mutex_unlock(&t->lock);
	snprintf(target, sizeof(target), "https://%s%s", t->upstream, url);
	e = curl_easy_init();
	if (e == NULL)
		return MHD_NO;
	curl_easy_setopt(e, CURLOPT_URL, target);
	curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->body.p != NULL ? r->body.p : "");
	curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)r->body.n);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->headers);
	curl_easy_setopt(e, CURLOPT_CAINFO, t->ca);
	curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_TIMEOUT, TAP_TIMEOUT_S);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, &answer);
	cc = curl_easy_perform(e);
	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(e);
	if (cc != CURLE_OK || status == 0) {
		free(answer.p);
		return MHD_NO; /* the simulator dropped it: drop the daemon's connection too */
	}
	record_answer(t, answer.p != NULL ? answer.p : "", answer.n);
	resp = MHD_create_response_from_buffer(answer.n, answer.p != NULL ? answer.p : (char *)"",
					       MHD_RESPMEM_MUST_COPY);
	free(answer.p);
	if (resp == NULL)
		return MHD_NO;
	MHD_add_response_header(resp, "Content-Type", "application/json");
	ret = MHD_queue_response(conn, (unsigned)status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct req *r = *con_cls;

	(void)cls;
	(void)conn;
	(void)toe;
	if (r == NULL)
		return;
	free(r->body.p);
	curl_slist_free_all(r->headers);
	free(r);
	*con_cls = NULL;
}

tap *tap_start(const char *cert, const char *key, const char *ca, const char *upstream)
{
	struct sockaddr_in sa;
	tap *t = calloc(1, sizeof(*t));

	if (t == NULL)
		return NULL;
	pthread_mutex_init(&t->lock, NULL);
	snprintf(t->upstream, sizeof(t->upstream), "%s", upstream);
	snprintf(t->ca, sizeof(t->ca), "%s", ca);
	t->cert = slurp(cert);
	t->key = slurp(key);
	if (t->cert == NULL || t->key == NULL)
		goto fail;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	t->d = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
					MHD_USE_TLS,
				0, NULL, NULL, on_request, t, MHD_OPTION_SOCK_ADDR, &sa,
				MHD_OPTION_HTTPS_MEM_CERT, t->cert, MHD_OPTION_HTTPS_MEM_KEY, t->key,
				MHD_OPTION_NOTIFY_COMPLETED, on_completed, t, MHD_OPTION_END);
	if (t->d == NULL)
		goto fail;
	return t;
fail:
	free(t->cert);
	free(t->key);
	free(t);
	return NULL;
}

unsigned tap_port(const tap *t)
{
	const union MHD_DaemonInfo *i = MHD_get_daemon_info(t->d, MHD_DAEMON_INFO_BIND_PORT);

	return i != NULL ? i->port : 0;
}

void tap_tokens(tap *t, void (*fn)(const char *token, void *arg), void *arg)
{
	pthread_mutex_lock(&t->lock);
	for (size_t i = 0; i < t->ntokens; i++)
		fn(t->tokens[i], arg);
	pthread_mutex_unlock(&t->lock);
}

size_t tap_token_count(tap *t)
{
	size_t n;

	pthread_mutex_lock(&t->lock);
	n = t->ntokens;
	pthread_mutex_unlock(&t->lock);
	return n;
}

unsigned long tap_received(tap *t)
{
	unsigned long n;

	pthread_mutex_lock(&t->lock);
	n = t->received;
	pthread_mutex_unlock(&t->lock);
	return n;
}

void tap_stop(tap *t)
{
	if (t == NULL)
		return;
	MHD_stop_daemon(t->d);
	for (size_t i = 0; i < t->ntokens; i++)
		free(t->tokens[i]);
	free(t->tokens);
	free(t->cert);
	free(t->key);
	pthread_mutex_destroy(&t->lock);
	free(t);
}
