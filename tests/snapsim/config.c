/* Merchants known to doku-snapsim and its configuration file. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "snap_err.h"

#define SECTION_PARTNER "partner."
#define PATH_TEXT_MAX 1024

static void set_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

void sim_config_init(sim_config *c)
{
	const sim_settings defaults = SIM_SETTINGS_DEFAULT;

	memset(c, 0, sizeof(*c));
	c->settings = defaults;
}

/* Read at most max bytes of path into buf; *len gets the size. A file
 * larger than max is refused. */
static int read_file(const char *path, unsigned char *buf, size_t max, size_t *len,
		     char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t got = 0;
	int rc = SIM_OK;

	if (fd < 0) {
		set_err(err, errlen, "%s: %s", path, strerror(errno));
		return SIM_ERR_IO;
	}
	for (;;) {
		ssize_t n;

		if (got == max) {
			unsigned char probe;

			n = read(fd, &probe, 1);
			if (n > 0) {
				set_err(err, errlen, "%s: larger than %zu bytes", path, max);
				rc = SIM_ERR_INVALID;
			}
			break;
		}
		n = read(fd, buf + got, max - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			set_err(err, errlen, "%s: %s", path, strerror(errno));
			rc = SIM_ERR_IO;
			break;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	*len = got;
	return rc;
}

static int load_key(const char *path, snap_rsa **out, char *err, size_t errlen)
{
	unsigned char *pem = malloc(SNAP_PEM_MAX);
	size_t len = 0;
	int rc;

	if (pem == NULL)
		return SIM_ERR_NOMEM;
	rc = read_file(path, pem, SNAP_PEM_MAX, &len, err, errlen);
	if (rc != 0)
		goto out;
	/* a public key, or a private key (it verifies as well) */
	rc = snap_rsa_load_public_pem((const char *)pem, len, out);
	if (rc != 0)
		rc = snap_rsa_load_private_pem((const char *)pem, len, out);
	if (rc != 0) {
		set_err(err, errlen, "%s: not an RSA key (%s)", path, snap_strerror(rc));
		rc = SIM_ERR_INVALID;
	}
out:
	explicit_bzero(pem, SNAP_PEM_MAX);
	free(pem);
	return rc;
}

static int client_id_ok(const char *id)
{
	size_t n = strlen(id);

	if (n == 0 || n > SIM_CLIENT_ID_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (id[i] <= ' ' || id[i] > '~')
			return 0;
	return 1;
}

int sim_config_add_partner(sim_config *c, const char *client_id, const char *secret_file,
			   const char *key_file, char *err, size_t errlen)
{
	sim_partner *p;
	int rc;

	if (client_id == NULL || secret_file == NULL || key_file == NULL) {
		set_err(err, errlen, "a partner needs a client id, a secret file and a public key");
		return SIM_ERR_INVALID;
	}
	if (!client_id_ok(client_id)) {
		set_err(err, errlen, "client id '%.64s': 1 to %d visible ASCII characters",
			client_id, SIM_CLIENT_ID_MAX);
		return SIM_ERR_INVALID;
	}
	if (sim_config_partner(c, client_id, strlen(client_id)) != NULL) {
		set_err(err, errlen, "client id %s given twice", client_id);
		return SIM_ERR_EXISTS;
	}
	if (c->partner_count == SIM_PARTNERS_MAX) {
		set_err(err, errlen, "more than %d partners", SIM_PARTNERS_MAX);
		return SIM_ERR_FULL;
	}
	p = &c->partners[c->partner_count];
	memset(p, 0, sizeof(*p));
	p->index = (int)c->partner_count;
	snprintf(p->client_id, sizeof(p->client_id), "%s", client_id);
	rc = read_file(secret_file, p->secret, sizeof(p->secret), &p->secret_len, err, errlen);
	if (rc != 0)
		goto fail;
	if (p->secret_len > 0 && p->secret[p->secret_len - 1] == '\n')
		p->secret_len--;
	if (p->secret_len > 0 && p->secret[p->secret_len - 1] == '\r')
		p->secret_len--;
	if (p->secret_len == 0) {
		set_err(err, errlen, "%s: empty client secret", secret_file);
		rc = SIM_ERR_INVALID;
		goto fail;
	}
	rc = load_key(key_file, &p->key, err, errlen);
	if (rc != 0)
		goto fail;
	if (pthread_mutex_init(&p->key_lock, NULL) != 0) {
		rc = SIM_ERR_NOMEM;
		goto fail;
	}
	c->partner_count++;
	return SIM_OK;
fail:
	snap_rsa_free(p->key);
	explicit_bzero(p, sizeof(*p));
	return rc;
}

struct ini_state {
	sim_config *config;
	char section[PATH_TEXT_MAX];
	char client_id[SIM_CLIENT_ID_MAX + 2];
	char secret_file[PATH_TEXT_MAX];
	char key_file[PATH_TEXT_MAX];
	int rc;
	char *err;
	size_t errlen;
};

/* Add the partner collected from the section that just ended, if any. */
static int flush_partner(struct ini_state *st)
{
	int rc = SIM_OK;

	if (strncmp(st->section, SECTION_PARTNER, strlen(SECTION_PARTNER)) != 0)
		return SIM_OK;
	rc = sim_config_add_partner(st->config, st->client_id[0] ? st->client_id : NULL,
				    st->secret_file[0] ? st->secret_file : NULL,
				    st->key_file[0] ? st->key_file : NULL, st->err, st->errlen);
	st->client_id[0] = st->secret_file[0] = st->key_file[0] = '\0';
	return rc;
}

static int parse_long(const char *v, long *out)
{
	char *end;
	long n;

	errno = 0;
	n = strtol(v, &end, 10);
	if (errno != 0 || end == v || *end != '\0')
		return SIM_ERR_INVALID;
	*out = n;
	return SIM_OK;
}

static int parse_bool(const char *v, bool *out)
{
	if (strcasecmp(v, "true") == 0 || strcasecmp(v, "yes") == 0 || strcmp(v, "1") == 0)
		*out = true;
	else if (strcasecmp(v, "false") == 0 || strcasecmp(v, "no") == 0 || strcmp(v, "0") == 0)
		*out = false;
	else
		return SIM_ERR_INVALID;
	return SIM_OK;
}

static int set_setting(sim_settings *s, const char *name, const char *value)
{
	if (strcmp(name, "b2b_token_ttl") == 0)
		return parse_long(value, &s->b2b_token_ttl);
	if (strcmp(name, "customer_token_ttl") == 0)
		return parse_long(value, &s->customer_token_ttl);
	if (strcmp(name, "refresh_token_ttl") == 0)
		return parse_long(value, &s->refresh_token_ttl);
	if (strcmp(name, "otp_ttl") == 0)
		return parse_long(value, &s->otp_ttl);
	if (strcmp(name, "clock_skew") == 0)
		return parse_long(value, &s->clock_skew);
	if (strcmp(name, "auto_approve_bindings") == 0)
		return parse_bool(value, &s->auto_approve_bindings);
	if (strcmp(name, "auto_approve_purchases") == 0)
		return parse_bool(value, &s->auto_approve_purchases);
	return SIM_ERR_NOT_FOUND;
}

static int copy_value(char *dst, size_t dstsz, const char *value)
{
	int n = snprintf(dst, dstsz, "%s", value);

	return n < 0 || (size_t)n >= dstsz ? SIM_ERR_INVALID : SIM_OK;
}

static int on_ini(void *user, const char *section, const char *name, const char *value)
{
	struct ini_state *st = user;
	int rc = SIM_OK;

	if (st->rc != 0)
		return 0;
	if (strcmp(section, st->section) != 0) {
		rc = flush_partner(st);
		snprintf(st->section, sizeof(st->section), "%s", section);
		if (rc != 0)
			goto fail;
	}
	if (strcmp(section, "settings") == 0) {
		rc = set_setting(&st->config->settings, name, value);
		if (rc != 0) {
			set_err(st->err, st->errlen, "[settings] %s = %s: %s", name, value,
				rc == SIM_ERR_NOT_FOUND ? "unknown setting" : "bad value");
			rc = SIM_ERR_INVALID;
		}
	} else if (strncmp(section, SECTION_PARTNER, strlen(SECTION_PARTNER)) == 0) {
		if (strcmp(name, "client_id") == 0)
			rc = copy_value(st->client_id, sizeof(st->client_id), value);
		else if (strcmp(name, "client_secret_file") == 0)
			rc = copy_value(st->secret_file, sizeof(st->secret_file), value);
		else if (strcmp(name, "partner_public_key") == 0)
			rc = copy_value(st->key_file, sizeof(st->key_file), value);
		else
			rc = SIM_ERR_NOT_FOUND;
		if (rc != 0) {
			set_err(st->err, st->errlen, "[%s] %s: %s", section, name,
				rc == SIM_ERR_NOT_FOUND ? "unknown key" : "value too long");
			rc = SIM_ERR_INVALID;
		}
	} else {
		set_err(st->err, st->errlen, "unknown section [%s]", section);
		rc = SIM_ERR_INVALID;
	}
	if (rc == 0)
		return 1;
fail:
	st->rc = rc;
	return 0;
}

int sim_config_load_file(sim_config *c, const char *path, char *err, size_t errlen)
{
	struct ini_state *st = calloc(1, sizeof(*st));
	int line, rc;

	if (st == NULL)
		return SIM_ERR_NOMEM;
	st->config = c;
	st->err = err;
	st->errlen = errlen;
	line = ini_parse(path, on_ini, st);
	rc = st->rc;
	if (rc == 0 && line < 0) {
		set_err(err, errlen, "%s: cannot be read", path);
		rc = SIM_ERR_IO;
	} else if (rc == 0 && line > 0) {
		set_err(err, errlen, "%s:%d: syntax error", path, line);
		rc = SIM_ERR_INVALID;
	}
	if (rc == 0)
		rc = flush_partner(st);
	if (rc == 0)
		rc = sim_settings_check(&c->settings, err, errlen);
	free(st);
	return rc;
}

int sim_settings_check(const sim_settings *s, char *err, size_t errlen)
{
	const struct {
		const char *name;
		long v;
		long min;
	} checks[] = {
		{ "b2b_token_ttl", s->b2b_token_ttl, 1 },
		{ "customer_token_ttl", s->customer_token_ttl, 1 },
		{ "refresh_token_ttl", s->refresh_token_ttl, 1 },
		{ "otp_ttl", s->otp_ttl, 1 },
		{ "clock_skew", s->clock_skew, 0 },
	};

	for (size_t i = 0; i < sizeof(checks) / sizeof(checks[0]); i++) {
		if (checks[i].v < checks[i].min || checks[i].v > SIM_TTL_MAX) {
			set_err(err, errlen, "%s must be %ld..%ld seconds", checks[i].name,
				checks[i].min, SIM_TTL_MAX);
			return SIM_ERR_INVALID;
		}
	}
	return SIM_OK;
}

sim_partner *sim_config_partner(sim_config *c, const char *id, size_t len)
{
	for (size_t i = 0; i < c->partner_count; i++) {
		sim_partner *p = &c->partners[i];

		if (strlen(p->client_id) == len && memcmp(p->client_id, id, len) == 0)
			return p;
	}
	return NULL;
}

int sim_partner_verify_token(sim_partner *p, const char *timestamp, const char *sig_b64,
			     size_t sig_len)
{
	int rc;

	pthread_mutex_lock(&p->key_lock);
	rc = snap_verify_token(p->key, p->client_id, timestamp, sig_b64, sig_len);
	pthread_mutex_unlock(&p->key_lock);
	return rc;
}

void sim_config_free(sim_config *c)
{
	for (size_t i = 0; i < c->partner_count; i++) {
		sim_partner *p = &c->partners[i];

		snap_rsa_free(p->key);
		pthread_mutex_destroy(&p->key_lock);
		explicit_bzero(p, sizeof(*p));
	}
	c->partner_count = 0;
}
