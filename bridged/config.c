/* INI configuration: parsing with inih, every problem reported with its line. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <ini.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "metrics.h"
#include "methods.h"
#include "snap_err.h"

#define CONFIG_VALUE_MAX 512      /* longest value kept (paths, URLs) */
#define CONFIG_ID_MAX 128         /* client_id, channel_id */
#define CONFIG_LIST_ITEMS_MAX 256 /* items of one list value */

enum section_kind { SEC_NONE, SEC_BRIDGE, SEC_PROFILE, SEC_CLIENT, SEC_BAD };

/* Keys seen per section, for duplicates and required keys. */
enum {
	K_BASE_URL = 1u << 0, K_CLIENT_ID = 1u << 1, K_SECRET = 1u << 2, K_KEY = 1u << 3,
	K_CA = 1u << 4, K_CHANNEL = 1u << 5,
	K_UIDS = 1u << 0, K_GIDS = 1u << 1, K_METHODS = 1u << 2, K_PROFILES = 1u << 3,
};

struct profile_src {
	int line;            /* of the section header */
	unsigned seen;
	char *secret_file;
	int secret_line;
	char *key_file;
	int key_line;
	int ca_line;
};

struct client_src {
	int line;
	unsigned seen;
	char *profiles;      /* resolved once every profile is known */
	int profiles_line;
};

struct parse {
	config *cfg;
	config_diag *diag;
	const char *file;
	const char *data;
	size_t len, pos;
	int line;
	/* the current section, set by the reader when it sees a header */
	enum section_kind kind;
	int sec_line;
	int index;           /* profile or client index */
	unsigned bridge_seen[2];
	struct profile_src psrc[CONFIG_MAX_PROFILES];
	struct client_src csrc[CONFIG_MAX_CLIENTS];
	char dir[PATH_MAX];  /* directory of the configuration file */
	bool oom;
};

__attribute__((format(printf, 4, 5)))
static void diag_add(config_diag *d, const char *file, int line, const char *fmt, ...)
{
	char text[CONFIG_ERR_MAX];
	va_list ap;

	if (d->n >= CONFIG_MAX_ERRORS) {
		d->truncated = true;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	{
		char *out = d->msg[d->n];
		int k = line > 0 ? snprintf(out, CONFIG_ERR_MAX, "%s:%d: ", file, line)
				 : snprintf(out, CONFIG_ERR_MAX, "%s: ", file);
		size_t used = k < 0 ? 0 : (size_t)k < CONFIG_ERR_MAX ? (size_t)k : CONFIG_ERR_MAX - 1;
		size_t tl = strlen(text);

		if (tl > CONFIG_ERR_MAX - 1 - used)
			tl = CONFIG_ERR_MAX - 1 - used;
		memcpy(out + used, text, tl);
		out[used + tl] = '\0';
	}
	d->n++;
}

#define PERR(p, line, ...) diag_add((p)->diag, (p)->file, (line), __VA_ARGS__)

static char *dup_str(struct parse *p, const char *s)
{
	char *d = strdup(s);

	if (d == NULL)
		p->oom = true;
	return d;
}

static bool name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > CONFIG_NAME_MAX)
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '.' && *s != '_' && *s != '-')
			return false;
	return true;
}

static bool printable_token(const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n == 0 || n > max)
		return false;
	for (; *s; s++)
		if (*s <= ' ' || *s >= 0x7f)
			return false;
	return true;
}

static int parse_uint(struct parse *p, const char *name, const char *v, uint64_t min,
		      uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long n;

	errno = 0;
	if (!isdigit((unsigned char)v[0])) {
		PERR(p, p->line, "%s: expected a number, got \"%s\"", name, v);
		return -EINVAL;
	}
	n = strtoull(v, &end, 10);
	if (errno != 0 || *end != '\0' || n < min || n > max) {
		PERR(p, p->line, "%s: expected a number from %llu to %llu, got \"%s\"", name,
		     (unsigned long long)min, (unsigned long long)max, v);
		return -EINVAL;
	}
	*out = n;
	return 0;
}

/* A path for a *_file key: relative ones from $CREDENTIALS_DIRECTORY (secrets)
 * or from the configuration's directory. */
static char *resolve_path(struct parse *p, const char *v, bool credential)
{
	const char *base = credential ? getenv("CREDENTIALS_DIRECTORY") : NULL;
	char buf[PATH_MAX];
	int n;

	if (v[0] == '/')
		return dup_str(p, v);
	if (base == NULL || base[0] == '\0')
		base = p->dir;
	n = snprintf(buf, sizeof(buf), "%s/%s", base, v);
	if (n < 0 || (size_t)n >= sizeof(buf)) {
		PERR(p, p->line, "path too long: %s", v);
		return NULL;
	}
	return dup_str(p, buf);
}

/* Split a list value on commas and blanks into items[] (pointers into buf). */
static unsigned split_list(char *buf, char **items, unsigned max)
{
	unsigned n = 0;
	char *save = NULL;

	for (char *t = strtok_r(buf, ", \t", &save); t != NULL && n < max;
	     t = strtok_r(NULL, ", \t", &save))
		items[n++] = t;
	return n;
}

/* ---- [bridge] --------------------------------------------------------------- */

static const struct {
	const char *name;
	size_t offset;
	uint64_t min, max;
	bool u32;
} bridge_nums[] = {
	{ "max_frame_bytes", offsetof(config, max_frame), CONFIG_FRAME_MIN, CONFIG_FRAME_LIMIT, true },
	{ "max_connections", offsetof(config, max_connections), 1, CONFIG_MAX_CONNECTIONS_LIMIT, false },
	{ "max_calls_per_connection", offsetof(config, max_calls), 1, CONFIG_MAX_CALLS_LIMIT, false },
	{ "default_timeout_ms", offsetof(config, default_timeout_ms), 1, CONFIG_TIMEOUT_LIMIT_MS, true },
	{ "max_timeout_ms", offsetof(config, max_timeout_ms), 1, CONFIG_TIMEOUT_LIMIT_MS, true },
	{ "idle_timeout_ms", offsetof(config, idle_timeout_ms), 10, CONFIG_TIMEOUT_LIMIT_MS, true },
	{ "io_timeout_ms", offsetof(config, io_timeout_ms), 10, CONFIG_TIMEOUT_LIMIT_MS, true },
	{ "drain_timeout_ms", offsetof(config, drain_timeout_ms), 0, CONFIG_TIMEOUT_LIMIT_MS, true },
	{ "max_customer_sessions", offsetof(config, max_sessions), 1, 10000000, false },
	{ "upstream_connections", offsetof(config, upstream_connections), 1, 1024, false },
};

#define BRIDGE_KEYS (sizeof(bridge_nums) / sizeof(bridge_nums[0]))

static void bridge_key(struct parse *p, const char *name, const char *v)
{
	config *c = p->cfg;
	unsigned bit;

	for (size_t i = 0; i < BRIDGE_KEYS; i++) {
		uint64_t n;

		if (strcmp(name, bridge_nums[i].name) != 0)
			continue;
		if (p->bridge_seen[0] & (1u << i)) {
			PERR(p, p->line, "duplicate key %s", name);
			return;
		}
		p->bridge_seen[0] |= 1u << i;
		if (parse_uint(p, name, v, bridge_nums[i].min, bridge_nums[i].max, &n) != 0)
			return;
		if (bridge_nums[i].u32)
			*(uint32_t *)(void *)((char *)c + bridge_nums[i].offset) = (uint32_t)n;
		else
			*(unsigned *)(void *)((char *)c + bridge_nums[i].offset) = (unsigned)n;
		return;
	}
	if (strcmp(name, "socket") == 0)
		bit = 1u << 0;
	else if (strcmp(name, "state_dir") == 0)
		bit = 1u << 1;
	else if (strcmp(name, "socket_group") == 0)
		bit = 1u << 2;
	else if (strcmp(name, "log_level") == 0)
		bit = 1u << 3;
	else if (strcmp(name, "state_key_file") == 0)
		bit = 1u << 4;
	else if (strcmp(name, "journal") == 0)
		bit = 1u << 5;
	else if (strcmp(name, "metrics_listen") == 0)
		bit = 1u << 6;
	else {
		PERR(p, p->line, "unknown key %s in [bridge]", name);
		return;
	}
	if (p->bridge_seen[1] & bit) {
		PERR(p, p->line, "duplicate key %s", name);
		return;
	}
	p->bridge_seen[1] |= bit;
	if (bit == 1u << 0) {
		if (v[0] != '/' || strlen(v) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
			PERR(p, p->line, "socket: expected an absolute path shorter than %zu bytes",
			     sizeof(((struct sockaddr_un *)0)->sun_path));
			return;
		}
		free(c->socket);
		c->socket = dup_str(p, v);
	} else if (bit == 1u << 1) {
		if (v[0] != '/') {
			PERR(p, p->line, "state_dir: expected an absolute path");
			return;
		}
		free(c->state_dir);
		c->state_dir = dup_str(p, v);
	} else if (bit == 1u << 4) {
		free(c->state_key_file);
		c->state_key_file = resolve_path(p, v, true);
	} else if (bit == 1u << 6) {
		if (!metrics_listen_valid(v, NULL)) {
			PERR(p, p->line, "metrics_listen: expected a loopback address and port "
			     "(127.0.0.1:9464 or [::1]:9464), got \"%s\"", v);
			return;
		}
		free(c->metrics_listen);
		c->metrics_listen = dup_str(p, v);
	} else if (bit == 1u << 5) {
		if (strcmp(v, "on") == 0)
			c->journal = true;
		else if (strcmp(v, "off") == 0)
			c->journal = false;
		else
			PERR(p, p->line, "journal: expected on or off, got \"%s\"", v);
	} else if (bit == 1u << 2) {
		uint64_t n;
		struct group *g;

		if (isdigit((unsigned char)v[0])) {
			if (parse_uint(p, name, v, 0, (gid_t)-2, &n) == 0)
				c->socket_gid = (gid_t)n;
			return;
		}
		g = getgrnam(v);
		if (g == NULL) {
			PERR(p, p->line, "socket_group: no group named \"%s\"", v);
			return;
		}
		c->socket_gid = g->gr_gid;
	} else {
		int lvl = log_level_parse(v);

		if (lvl < 0) {
			PERR(p, p->line, "log_level: expected error, warning, info or debug, got \"%s\"", v);
			return;
		}
		c->log_level = lvl;
	}
}

/* ---- [profile.NAME] ----------------------------------------------------------- */

static bool seen_once(struct parse *p, unsigned *seen, unsigned bit, const char *name)
{
	if (*seen & bit) {
		PERR(p, p->line, "duplicate key %s", name);
		return false;
	}
	*seen |= bit;
	return true;
}

static void profile_key(struct parse *p, const char *name, const char *v)
{
	profile *pr = &p->cfg->profiles[p->index];
	struct profile_src *src = &p->psrc[p->index];

	if (strcmp(name, "base_url") == 0) {
		size_t n = strlen(v);

		if (!seen_once(p, &src->seen, K_BASE_URL, name))
			return;
		if (strncmp(v, "https://", 8) != 0 || n <= 8 || n > CONFIG_VALUE_MAX ||
		    !printable_token(v, CONFIG_VALUE_MAX)) {
			PERR(p, p->line, "base_url: expected https://HOST[:PORT] (TLS is always on), got \"%s\"", v);
			return;
		}
		pr->base_url = dup_str(p, v);
		while (pr->base_url != NULL && n > 8 && pr->base_url[n - 1] == '/')
			pr->base_url[--n] = '\0';
	} else if (strcmp(name, "client_id") == 0) {
		if (!seen_once(p, &src->seen, K_CLIENT_ID, name))
			return;
		if (!printable_token(v, CONFIG_ID_MAX)) {
			PERR(p, p->line, "client_id: expected 1 to %d printable characters without blanks",
			     CONFIG_ID_MAX);
			return;
		}
		pr->client_id = dup_str(p, v);
	} else if (strcmp(name, "channel_id") == 0) {
		if (!seen_once(p, &src->seen, K_CHANNEL, name) || v[0] == '\0')
			return;
		if (!printable_token(v, CONFIG_ID_MAX)) {
			PERR(p, p->line, "channel_id: expected printable characters without blanks");
			return;
		}
		pr->channel_id = dup_str(p, v);
	} else if (strcmp(name, "client_secret_file") == 0) {
		if (!seen_once(p, &src->seen, K_SECRET, name))
			return;
		if (v[0] == '\0') {
			PERR(p, p->line, "client_secret_file: empty");
			return;
		}
		src->secret_file = resolve_path(p, v, true);
		src->secret_line = p->line;
	} else if (strcmp(name, "private_key_file") == 0) {
		if (!seen_once(p, &src->seen, K_KEY, name))
			return;
		if (v[0] == '\0') {
			PERR(p, p->line, "private_key_file: empty");
			return;
		}
		src->key_file = resolve_path(p, v, true);
		src->key_line = p->line;
	} else if (strcmp(name, "ca_file") == 0) {
		if (!seen_once(p, &src->seen, K_CA, name) || v[0] == '\0')
			return;
		pr->ca_file = resolve_path(p, v, false);
		src->ca_line = p->line;
		if (pr->ca_file != NULL && access(pr->ca_file, R_OK) != 0)
			PERR(p, p->line, "ca_file: cannot read %s: %s", pr->ca_file, strerror(errno));
	} else {
		PERR(p, p->line, "unknown key %s in [profile.%s]", name, pr->name);
	}
}

/* ---- [client.NAME] ------------------------------------------------------------ */

static void client_ids(struct parse *p, const char *name, const char *v, bool users)
{
	acl_client *cl = &p->cfg->clients[p->index];
	char buf[CONFIG_VALUE_MAX + 1];
	char *items[CONFIG_LIST_ITEMS_MAX];
	unsigned n;

	snprintf(buf, sizeof(buf), "%s", v);
	n = split_list(buf, items, CONFIG_LIST_ITEMS_MAX);
	if (n == 0)
		PERR(p, p->line, "%s: empty list", name);
	for (unsigned i = 0; i < n; i++) {
		uint64_t id;

		if (isdigit((unsigned char)items[i][0])) {
			if (parse_uint(p, name, items[i], 0, (uid_t)-2, &id) != 0)
				continue;
		} else if (users) {
			struct passwd *pw = getpwnam(items[i]);

			if (pw == NULL) {
				PERR(p, p->line, "uids: no user named \"%s\"", items[i]);
				continue;
			}
			id = pw->pw_uid;
		} else {
			struct group *g = getgrnam(items[i]);

			if (g == NULL) {
				PERR(p, p->line, "gids: no group named \"%s\"", items[i]);
				continue;
			}
			id = g->gr_gid;
		}
		if ((users ? cl->nuids : cl->ngids) >= CONFIG_MAX_IDS) {
			PERR(p, p->line, "%s: more than %d entries", name, CONFIG_MAX_IDS);
			return;
		}
		if (users)
			cl->uids[cl->nuids++] = (uid_t)id;
		else
			cl->gids[cl->ngids++] = (gid_t)id;
	}
}

static void client_methods(struct parse *p, const char *v)
{
	acl_client *cl = &p->cfg->clients[p->index];
	char buf[CONFIG_VALUE_MAX + 1];
	char *items[CONFIG_LIST_ITEMS_MAX];
	unsigned n;

	snprintf(buf, sizeof(buf), "%s", v);
	n = split_list(buf, items, CONFIG_LIST_ITEMS_MAX);
	if (n == 0)
		PERR(p, p->line, "methods: empty list (use * for every method)");
	for (unsigned i = 0; i < n; i++) {
		int m;

		if (strcmp(items[i], "*") == 0) {
			cl->methods = ~(uint64_t)0;
			continue;
		}
		m = methods_index(items[i]);
		if (m < 0) {
			PERR(p, p->line, "methods: no method named \"%s\"", items[i]);
			continue;
		}
		cl->methods |= (uint64_t)1 << m;
	}
}

static void client_key(struct parse *p, const char *name, const char *v)
{
	struct client_src *src = &p->csrc[p->index];

	if (strcmp(name, "uids") == 0) {
		if (seen_once(p, &src->seen, K_UIDS, name))
			client_ids(p, name, v, true);
	} else if (strcmp(name, "gids") == 0) {
		if (seen_once(p, &src->seen, K_GIDS, name))
			client_ids(p, name, v, false);
	} else if (strcmp(name, "methods") == 0) {
		if (seen_once(p, &src->seen, K_METHODS, name))
			client_methods(p, v);
	} else if (strcmp(name, "profiles") == 0) {
		if (seen_once(p, &src->seen, K_PROFILES, name)) {
			src->profiles = dup_str(p, v);
			src->profiles_line = p->line;
		}
	} else {
		PERR(p, p->line, "unknown key %s in [client.%s]", name, p->cfg->clients[p->index].name);
	}
}

/* ---- sections and the line reader ---------------------------------------------- */

/* A section header [name] at the current line: find or create its entity. */
static void section_begin(struct parse *p, const char *name)
{
	config *c = p->cfg;
	const char *sub;

	p->sec_line = p->line;
	p->kind = SEC_BAD;
	if (strcmp(name, "bridge") == 0) {
		p->kind = SEC_BRIDGE;
		return;
	}
	if (strncmp(name, "profile.", 8) == 0) {
		sub = name + 8;
		if (!name_ok(sub)) {
			PERR(p, p->line, "bad profile name \"%s\": expected [A-Za-z0-9._-]{1,%d}", sub,
			     CONFIG_NAME_MAX);
			return;
		}
		for (unsigned i = 0; i < c->nprofiles; i++)
			if (strcmp(c->profiles[i].name, sub) == 0) {
				PERR(p, p->line, "duplicate section [profile.%s] (first at line %d)", sub,
				     p->psrc[i].line);
				return;
			}
		if (c->nprofiles >= CONFIG_MAX_PROFILES) {
			PERR(p, p->line, "more than %d profiles", CONFIG_MAX_PROFILES);
			return;
		}
		p->index = (int)c->nprofiles++;
		c->profiles[p->index].index = (unsigned)p->index;
		c->profiles[p->index].name = dup_str(p, sub);
		p->psrc[p->index].line = p->line;
		p->kind = SEC_PROFILE;
		return;
	}
	if (strncmp(name, "client.", 7) == 0) {
		sub = name + 7;
		if (!name_ok(sub)) {
			PERR(p, p->line, "bad client name \"%s\": expected [A-Za-z0-9._-]{1,%d}", sub,
			     CONFIG_NAME_MAX);
			return;
		}
		for (unsigned i = 0; i < c->nclients; i++)
			if (strcmp(c->clients[i].name, sub) == 0) {
				PERR(p, p->line, "duplicate section [client.%s] (first at line %d)", sub,
				     p->csrc[i].line);
				return;
			}
		if (c->nclients >= CONFIG_MAX_CLIENTS) {
			PERR(p, p->line, "more than %d clients", CONFIG_MAX_CLIENTS);
			return;
		}
		p->index = (int)c->nclients++;
		c->clients[p->index].name = dup_str(p, sub);
		p->csrc[p->index].line = p->line;
		p->kind = SEC_CLIENT;
		return;
	}
	PERR(p, p->line, "unknown section [%s] (expected [bridge], [profile.NAME] or [client.NAME])", name);
}

/* inih's line source: hands inih one line at a time so that every problem can
 * name its line; checks the syntax itself (inih reports only the first
 * error) and gives inih an empty line in place of a bad one. Leading blanks
 * are dropped, so an indented line is never a continuation line. */
static char *reader(char *str, int num, void *stream)
{
	struct parse *p = stream;
	size_t start, end, n;
	const char *l;

	if (p->pos >= p->len || num < 2)
		return NULL;
	start = p->pos;
	end = start;
	while (end < p->len && p->data[end] != '\n')
		end++;
	p->pos = end < p->len ? end + 1 : end;
	p->line++;
	while (start < end && (p->data[start] == ' ' || p->data[start] == '\t'))
		start++;
	n = end - start;
	if (n > 0 && p->data[start + n - 1] == '\r')
		n--;
	l = p->data + start;
	if (memchr(l, '\0', n) != NULL) {
		PERR(p, p->line, "NUL byte in line");
		goto blank;
	}
	if ((size_t)num - 2 < n) {
		PERR(p, p->line, "line longer than %d bytes", num - 2);
		goto blank;
	}
	if (n == 0 || l[0] == ';' || l[0] == '#')
		goto copy;
	if (l[0] == '[') {
		const char *close = memchr(l, ']', n);
		char name[CONFIG_NAME_MAX + 16];
		size_t k;

		if (close == NULL) {
			PERR(p, p->line, "section header without ']'");
			p->kind = SEC_BAD;
			goto blank;
		}
		k = (size_t)(close - l) - 1;
		if (k >= sizeof(name)) {
			PERR(p, p->line, "section name too long");
			p->kind = SEC_BAD;
			goto blank;
		}
		memcpy(name, l + 1, k);
		name[k] = '\0';
		section_begin(p, name);
		goto copy;
	}
	if (memchr(l, '=', n) == NULL && memchr(l, ':', n) == NULL) {
		PERR(p, p->line, "expected \"name = value\"");
		goto blank;
	}
	if (l[0] == '=' || l[0] == ':') {
		PERR(p, p->line, "key name missing before '%c'", l[0]);
		goto blank;
	}
	if (p->kind == SEC_NONE) {
		PERR(p, p->line, "key outside any section");
		goto blank;
	}
copy:
	memcpy(str, l, n);
	str[n] = '\n';
	str[n + 1] = '\0';
	return str;
blank:
	str[0] = '\n';
	str[1] = '\0';
	return str;
}

static int handler(void *user, const char *section, const char *name, const char *value)
{
	struct parse *p = user;

	(void)section; /* the reader tracks the section, with its line */
	if (strlen(value) > CONFIG_VALUE_MAX) {
		PERR(p, p->line, "%s: value longer than %d bytes", name, CONFIG_VALUE_MAX);
		return 1;
	}
	switch (p->kind) {
	case SEC_BRIDGE: bridge_key(p, name, value); break;
	case SEC_PROFILE: profile_key(p, name, value); break;
	case SEC_CLIENT: client_key(p, name, value); break;
	default: break; /* a bad section was reported once, at its header */
	}
	return 1;
}

/* ---- whole-file checks and secrets ------------------------------------------------ */

static void check_profiles(struct parse *p, unsigned flags)
{
	config *c = p->cfg;

	for (unsigned i = 0; i < c->nprofiles; i++) {
		profile *pr = &c->profiles[i];
		struct profile_src *src = &p->psrc[i];
		static const struct { unsigned bit; const char *key; } req[] = {
			{ K_BASE_URL, "base_url" }, { K_CLIENT_ID, "client_id" },
			{ K_SECRET, "client_secret_file" }, { K_KEY, "private_key_file" },
		};
		char err[SECRET_ERR_MAX];
		secret *pem = NULL;
		int rc;

		for (size_t k = 0; k < sizeof(req) / sizeof(req[0]); k++)
			if (!(src->seen & req[k].bit))
				PERR(p, src->line, "[profile.%s]: missing %s", pr->name, req[k].key);
		if (!(flags & CONFIG_LOAD_SECRETS))
			continue;
		if (src->secret_file != NULL) {
			rc = secret_read_file(src->secret_file, SECRET_SECRET_FILE_MAX, true,
					      &pr->client_secret, err);
			if (rc != 0)
				PERR(p, src->secret_line, "client_secret_file: %s", err);
		}
		if (src->key_file != NULL) {
			rc = secret_read_file(src->key_file, SNAP_PEM_MAX, false, &pem, err);
			if (rc != 0) {
				PERR(p, src->key_line, "private_key_file: %s", err);
			} else {
				rc = snap_rsa_load_private_pem((const char *)pem->data, pem->len, &pr->key);
				if (rc != 0)
					PERR(p, src->key_line,
					     "private_key_file: %s is not an RSA private key in PEM (PKCS#8 or PKCS#1): %s",
					     src->key_file, snap_strerror(rc));
			}
			secret_free(pem);
		}
	}
}

static void check_clients(struct parse *p)
{
	config *c = p->cfg;

	for (unsigned i = 0; i < c->nclients; i++) {
		acl_client *cl = &c->clients[i];
		struct client_src *src = &p->csrc[i];
		char buf[CONFIG_VALUE_MAX + 1];
		char *items[CONFIG_LIST_ITEMS_MAX];
		unsigned n;

		if (!(src->seen & (K_UIDS | K_GIDS)))
			PERR(p, src->line, "[client.%s]: needs uids or gids", cl->name);
		if (!(src->seen & K_METHODS))
			PERR(p, src->line, "[client.%s]: missing methods (use * for every method)", cl->name);
		if (!(src->seen & K_PROFILES)) {
			PERR(p, src->line, "[client.%s]: missing profiles (use * for every profile)", cl->name);
			continue;
		}
		if (src->profiles == NULL)
			continue;
		snprintf(buf, sizeof(buf), "%s", src->profiles);
		n = split_list(buf, items, CONFIG_LIST_ITEMS_MAX);
		if (n == 0)
			PERR(p, src->profiles_line, "profiles: empty list (use * for every profile)");
		for (unsigned k = 0; k < n; k++) {
			const profile *pr;

			if (strcmp(items[k], "*") == 0) {
				cl->profiles = ~(uint32_t)0;
				continue;
			}
			pr = config_profile(c, items[k]);
			if (pr == NULL) {
				PERR(p, src->profiles_line, "profiles: no [profile.%s]", items[k]);
				continue;
			}
			cl->profiles |= (uint32_t)1 << pr->index;
		}
	}
}

static void check_bridge(struct parse *p)
{
	config *c = p->cfg;

	if (c->max_timeout_ms < c->default_timeout_ms)
		PERR(p, 0, "[bridge]: max_timeout_ms (%u) is below default_timeout_ms (%u)",
		     c->max_timeout_ms, c->default_timeout_ms);
	if (c->nprofiles == 0)
		PERR(p, 0, "no [profile.NAME] section: at least one credential profile is needed");
}

static void free_src(struct parse *p)
{
	for (unsigned i = 0; i < CONFIG_MAX_PROFILES; i++) {
		free(p->psrc[i].secret_file);
		free(p->psrc[i].key_file);
	}
	for (unsigned i = 0; i < CONFIG_MAX_CLIENTS; i++)
		free(p->csrc[i].profiles);
}

static int read_all(const char *path, char **out, size_t *len)
{
	struct stat st;
	char *buf = NULL;
	size_t got = 0;
	int fd, rc = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) != 0) {
		rc = -errno;
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = -EINVAL;
		goto out;
	}
	if ((uint64_t)st.st_size > CONFIG_FILE_MAX) {
		rc = -EFBIG;
		goto out;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (buf == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = -errno;
			goto out;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	buf[got] = '\0';
	*out = buf;
	*len = got;
	buf = NULL;
out:
	free(buf);
	close(fd);
	return rc;
}

static void set_defaults(config *c)
{
	c->refs = 1;
	c->socket_gid = (gid_t)-1;
	c->max_frame = 4u * 1024u * 1024u;
	c->max_connections = CONFIG_DEFAULT_MAX_CONNECTIONS;
	c->max_calls = CONFIG_DEFAULT_MAX_CALLS;
	c->default_timeout_ms = CONFIG_DEFAULT_TIMEOUT_MS;
	c->max_timeout_ms = CONFIG_DEFAULT_MAX_TIMEOUT_MS;
	c->idle_timeout_ms = CONFIG_DEFAULT_IDLE_TIMEOUT_MS;
	c->io_timeout_ms = CONFIG_DEFAULT_IO_TIMEOUT_MS;
	c->drain_timeout_ms = CONFIG_DEFAULT_DRAIN_TIMEOUT_MS;
	c->max_sessions = CONFIG_DEFAULT_MAX_SESSIONS;
	c->upstream_connections = CONFIG_DEFAULT_UPSTREAM_CONNECTIONS;
	c->log_level = LOG_LVL_INFO;
}

int config_load(const char *path, unsigned flags, config **out, config_diag *diag)
{
	struct parse *p = NULL;
	config *c = NULL;
	char *data = NULL;
	size_t len = 0;
	const char *slash;
	int rc;

	*out = NULL;
	memset(diag, 0, sizeof(*diag));
	rc = read_all(path, &data, &len);
	if (rc != 0) {
		diag_add(diag, path, 0, "cannot read: %s", strerror(-rc));
		return rc;
	}
	c = calloc(1, sizeof(*c));
	p = calloc(1, sizeof(*p));
	if (c == NULL || p == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	set_defaults(c);
	c->path = strdup(path);
	c->socket = strdup(CONFIG_DEFAULT_SOCKET);
	c->state_dir = strdup(CONFIG_DEFAULT_STATE_DIR);
	c->journal = true;
	p->cfg = c;
	p->diag = diag;
	p->file = path;
	p->data = data;
	p->len = len;
	slash = strrchr(path, '/');
	if (slash == NULL)
		snprintf(p->dir, sizeof(p->dir), ".");
	else if (slash == path)
		snprintf(p->dir, sizeof(p->dir), "/");
	else
		snprintf(p->dir, sizeof(p->dir), "%.*s", (int)(slash - path), path);
	rc = ini_parse_stream(reader, p, handler, p);
	if (rc > 0 && diag->n == 0)
		PERR(p, rc, "syntax error");
	if (rc == -2)
		p->oom = true;
	check_bridge(p);
	check_clients(p);
	check_profiles(p, flags);
	if (p->oom || c->path == NULL || c->socket == NULL || c->state_dir == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	rc = diag->n > 0 || diag->truncated ? -EINVAL : 0;
	if (rc == 0) {
		*out = c;
		c = NULL;
	}
out:
	if (p != NULL)
		free_src(p);
	free(p);
	free(data);
	config_unref(c);
	return rc;
}

config *config_ref(config *c)
{
	c->refs++;
	return c;
}

void config_unref(config *c)
{
	if (c == NULL || --c->refs > 0)
		return;
	for (unsigned i = 0; i < c->nprofiles; i++) {
		profile *p = &c->profiles[i];

		free(p->name);
		free(p->base_url);
		free(p->client_id);
		free(p->channel_id);
		free(p->ca_file);
		secret_free(p->client_secret);
		snap_rsa_free(p->key);
	}
	for (unsigned i = 0; i < c->nclients; i++)
		free(c->clients[i].name);
	free(c->path);
	free(c->socket);
	free(c->state_dir);
	free(c->state_key_file);
	free(c->metrics_listen);
	explicit_bzero(c, sizeof(*c));
	free(c);
}

const profile *config_profile(const config *c, const char *name)
{
	if (name == NULL || name[0] == '\0')
		name = CONFIG_DEFAULT_PROFILE;
	for (unsigned i = 0; i < c->nprofiles; i++)
		if (c->profiles[i].name != NULL && strcmp(c->profiles[i].name, name) == 0)
			return &c->profiles[i];
	return NULL;
}

static bool client_matches(const acl_client *cl, const peer *p)
{
	for (unsigned i = 0; i < cl->nuids; i++)
		if (cl->uids[i] == p->uid)
			return true;
	for (unsigned i = 0; i < cl->ngids; i++) {
		if (cl->gids[i] == p->gid)
			return true;
		for (unsigned k = 0; k < p->ngroups; k++)
			if (cl->gids[i] == p->groups[k])
				return true;
	}
	return false;
}

bool config_acl_knows(const config *c, const peer *p)
{
	if (c->nclients == 0)
		return p->uid == 0 || p->uid == geteuid();
	for (unsigned i = 0; i < c->nclients; i++)
		if (client_matches(&c->clients[i], p))
			return true;
	return false;
}

bool config_acl_allows(const config *c, const peer *p, unsigned midx, int prof)
{
	if (c->nclients == 0)
		return p->uid == 0 || p->uid == geteuid();
	if (midx >= 64 || prof >= CONFIG_MAX_PROFILES)
		return false;
	for (unsigned i = 0; i < c->nclients; i++) {
		const acl_client *cl = &c->clients[i];

		if (!client_matches(cl, p) || !(cl->methods & ((uint64_t)1 << midx)))
			continue;
		if (prof < 0 || (cl->profiles & ((uint32_t)1 << prof)))
			return true;
	}
	return false;
}
