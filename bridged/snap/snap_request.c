/* Signed SNAP requests: the URL and the header lines of token requests and
 * service calls, byte for byte what DOKU expects. */
#include "snap_request.h"
#include "snap_err.h"

#include <stdbool.h>
#include <string.h>

#define CONTENT_TYPE "application/json"
#define BEARER "Bearer "
#define SIG_MAX SNAP_RSA_SIG_B64_MAX /* room for either signature */

_Static_assert(SIG_MAX >= SNAP_HMAC_B64_LEN + 1, "the buffer holds an HMAC signature");
_Static_assert(SNAP_REQUEST_HEADERS_MAX >= 8, "a service call has up to 8 headers");

/* A non-empty string without control characters (nothing that could end a
 * header line or split a URL). */
static bool text_ok(const char *s)
{
	if (s == NULL || s[0] == '\0')
		return false;
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++)
		if (*p < 0x20 || *p == 0x7f)
			return false;
	return true;
}

/* The inputs against ep->auth. */
static bool inputs_ok(const snap_request_in *in)
{
	const snap_endpoint *ep = in->ep;

	if (ep == NULL || ep->path == NULL || ep->path[0] != '/' || !text_ok(ep->path) ||
	    !text_ok(in->base_url) || !text_ok(in->client_id) || !text_ok(in->timestamp) ||
	    (in->body == NULL && in->body_len > 0))
		return false;
	switch (ep->auth) {
	case SNAP_AUTH_TOKEN:
		return in->key != NULL && in->client_secret == NULL && in->secret_len == 0 &&
		       in->b2b_token == NULL && in->customer_token == NULL &&
		       in->external_id == NULL && in->channel_id == NULL;
	case SNAP_AUTH_B2B:
	case SNAP_AUTH_B2B_CUSTOMER:
		if (in->key != NULL || in->client_secret == NULL || in->secret_len == 0 ||
		    !text_ok(in->b2b_token) || !text_ok(in->external_id) ||
		    (in->channel_id != NULL && !text_ok(in->channel_id)))
			return false;
		if (ep->auth == SNAP_AUTH_B2B_CUSTOMER)
			return text_ok(in->customer_token);
		return in->customer_token == NULL;
	}
	return false;
}

/* parts[0] .. parts[n-1] concatenated into the arena; at most max bytes. */
static int concat(snap_arena *arena, size_t max, const char *const *parts, size_t n,
		  const char **out)
{
	size_t len[4], total = 0;
	char *s, *p;

	for (size_t i = 0; i < n; i++) {
		len[i] = strlen(parts[i]);
		if (len[i] > max - total)
			return SNAP_ERR_TOO_BIG;
		total += len[i];
	}
	s = snap_arena_alloc(arena, total + 1);
	if (s == NULL)
		return SNAP_ERR_NOMEM;
	p = s;
	for (size_t i = 0; i < n; i++) {
		memcpy(p, parts[i], len[i]);
		p += len[i];
	}
	*p = '\0';
	*out = s;
	return SNAP_OK;
}

/* Append the line "name: " prefix value to out. */
static int header(snap_arena *arena, snap_request *out, const char *name, const char *prefix,
		  const char *value)
{
	const char *parts[4] = { name, ": ", prefix, value };
	int rc;

	if (out->nheaders >= SNAP_REQUEST_HEADERS_MAX)
		return SNAP_ERR_TOO_BIG;
	rc = concat(arena, SNAP_REQUEST_HEADER_MAX, parts, 4, &out->headers[out->nheaders]);
	if (rc == 0)
		out->nheaders++;
	return rc;
}

static int build_token(snap_arena *arena, const snap_request_in *in, char *sig, snap_request *out)
{
	int rc;

	rc = snap_sign_token(in->key, in->client_id, in->timestamp, sig, SIG_MAX);
	if (rc == 0)
		rc = header(arena, out, "Content-Type", "", CONTENT_TYPE);
	if (rc == 0)
		rc = header(arena, out, "X-CLIENT-KEY", "", in->client_id);
	if (rc == 0)
		rc = header(arena, out, "X-TIMESTAMP", "", in->timestamp);
	if (rc == 0)
		rc = header(arena, out, "X-SIGNATURE", "", sig);
	return rc;
}

static int build_service(snap_arena *arena, const snap_request_in *in, char *sig,
			 snap_request *out)
{
	int rc;

	rc = snap_sign_service(in->client_secret, in->secret_len, "POST", in->ep->path,
			       in->b2b_token, in->body, in->body_len, in->timestamp, sig);
	if (rc == 0)
		rc = header(arena, out, "Content-Type", "", CONTENT_TYPE);
	if (rc == 0)
		rc = header(arena, out, "Authorization", BEARER, in->b2b_token);
	if (rc == 0)
		rc = header(arena, out, "X-TIMESTAMP", "", in->timestamp);
	if (rc == 0)
		rc = header(arena, out, "X-SIGNATURE", "", sig);
	if (rc == 0)
		rc = header(arena, out, "X-PARTNER-ID", "", in->client_id);
	if (rc == 0)
		rc = header(arena, out, "X-EXTERNAL-ID", "", in->external_id);
	if (rc == 0 && in->channel_id != NULL)
		rc = header(arena, out, "CHANNEL-ID", "", in->channel_id);
	if (rc == 0 && in->customer_token != NULL)
		rc = header(arena, out, "Authorization-Customer", BEARER, in->customer_token);
	return rc;
}

int snap_request_build(snap_arena *arena, const snap_request_in *in, snap_request *out)
{
	const char *url_parts[2];
	char sig[SIG_MAX];
	int rc;

	if (out == NULL)
		return SNAP_ERR_INVALID;
	memset(out, 0, sizeof(*out));
	if (arena == NULL || in == NULL || !inputs_ok(in))
		return SNAP_ERR_INVALID;
	url_parts[0] = in->base_url;
	url_parts[1] = in->ep->path;
	rc = concat(arena, SNAP_REQUEST_URL_MAX, url_parts, 2, &out->url);
	if (rc != 0)
		goto out;
	sig[0] = '\0';
	if (in->ep->auth == SNAP_AUTH_TOKEN)
		rc = build_token(arena, in, sig, out);
	else
		rc = build_service(arena, in, sig, out);
out:
	explicit_bzero(sig, sizeof(sig));
	if (rc != 0)
		memset(out, 0, sizeof(*out));
	return rc;
}
