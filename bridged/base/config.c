/* INI configuration: parsing with inih, every problem reported with its line. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <ini.h>
#include <limits.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <uv.h>

#include "log.h"
#include "snap_err.h"

/* The RPC layer's name -> row index lookup, for [client.NAME] methods. */
static int (*method_index)(const char *name);

void config_method_lookup(int (*index_of)(const char *name))
{
	method_index = index_of;
}

bool config_loopback_addr(const char *addr, void *sa)
{
	struct sockaddr_storage ss;
	char host[CONFIG_LISTEN_MAX];
	const char *colon = addr != NULL ? strrchr(addr, ':') : NULL;
	char *end;
	unsigned long port;
	size_t n;

	if (colon == NULL || strlen(addr) >= CONFIG_LISTEN_MAX)
		return false;
	port = strtoul(colon + 1, &end, 10);
	if (colon[1] == '\0' || *end != '\0' || port == 0 || port > 65535)
		return false;
	n = (size_t)(colon - addr);
	memset(&ss, 0, sizeof(ss));
	if (n > 2 && addr[0] == '[' && addr[n - 1] == ']') {
		memcpy(host, addr + 1, n - 2);
		host[n - 2] = '\0';
		if (uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)&ss) != 0 ||
		    !IN6_IS_ADDR_LOOPBACK(&((struct sockaddr_in6 *)&ss)->sin6_addr))
			return false;
	} else {
		memcpy(host, addr, n);
		host[n] = '\0';
		if (uv_ip4_addr(host, (int)port, (struct sockaddr_in *)&ss) != 0 ||
		    (ntohl(((struct sockaddr_in *)&ss)->sin_addr.s_addr) >> 24) != 127)
			return false;
	}
	if (sa != NULL)
		memcpy(sa, &ss, sizeof(ss));
	return true;
}

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

/* What the file says of one [profile.NAME] or [client.NAME] section. */
struct section_src {
	int line;            /* of the section header */
	unsigned seen;       /* K_* bits of the keys given */
};

/* A secret's file, read once the whole file is parsed. */
struct secret_src {
	char *file;
	int line;
};

struct profile_src {
	struct section_src sec;
	struct secret_src secret;
	struct secret_src key;
	int ca_line;
};

struct client_src {
	struct section_src sec;
	char *profiles;      /* resolved once every profile is known */
	int profiles_line;
};

struct named_kind;

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
	const struct named_kind *named; /* SEC_PROFILE, SEC_CLIENT: the kind's keys */
	unsigned bridge_seen[2];
	struct profile_src psrc[CONFIG_MAX_PROFILES];
	struct client_src csrc[CONFIG_MAX_CLIENTS];
	struct secret_src pg_password; /* [bridge] state_postgres_password_file */
	char dir[PATH_MAX];  /* directory of the configuration file */
	bool oom;
};

static void secret_path(struct parse *p, const char *name, const char *v, struct secret_src *dst);

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

/* A list value, split on commas and blanks. */
struct list_value {
	char buf[CONFIG_VALUE_MAX + 1];
	char *items[CONFIG_LIST_ITEMS_MAX]; /* pointers into buf */
	unsigned n;
};

/* Split a copy of v, the value of key name (at line), into l. An empty list
 * is reported as "name: empty list" followed by hint. */
static void split_list(struct parse *p, int line, const char *name, const char *hint,
		       const char *v, struct list_value *l)
{
	char *save = NULL;

	l->n = 0;
	snprintf(l->buf, sizeof(l->buf), "%s", v);
	for (char *t = strtok_r(l->buf, ", \t", &save); t != NULL && l->n < CONFIG_LIST_ITEMS_MAX;
	     t = strtok_r(NULL, ", \t", &save))
		l->items[l->n++] = t;
	if (l->n == 0)
		PERR(p, line, "%s: empty list%s", name, hint);
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
	{ "journal_retention_days", offsetof(config, journal_retention_days), 0,
	  CONFIG_RETENTION_LIMIT_DAYS, false },
};

#define BRIDGE_KEYS (sizeof(bridge_nums) / sizeof(bridge_nums[0]))
_Static_assert(BRIDGE_KEYS <= 8 * sizeof(unsigned), "one bit of bridge_seen[0] per key");

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
	else if (strcmp(name, "state_backend") == 0)
		bit = 1u << 7;
	else if (strcmp(name, "state_postgres") == 0)
		bit = 1u << 8;
	else if (strcmp(name, "state_postgres_password_file") == 0)
		bit = 1u << 9;
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
		if (!config_loopback_addr(v, NULL)) {
			PERR(p, p->line, "metrics_listen: expected a loopback address and port "
			     "(127.0.0.1:9464 or [::1]:9464), got \"%s\"", v);
			return;
		}
		free(c->metrics_listen);
		c->metrics_listen = dup_str(p, v);
	} else if (bit == 1u << 7) {
		if (strcmp(v, "sqlite") == 0)
			c->state_backend = CONFIG_STATE_SQLITE;
		else if (strcmp(v, "postgres") == 0)
			c->state_backend = CONFIG_STATE_POSTGRES;
		else
			PERR(p, p->line, "state_backend: expected sqlite or postgres, got \"%s\"", v);
	} else if (bit == 1u << 8) {
		if (v[0] == '\0' || strlen(v) > CONFIG_CONNINFO_MAX) {
			PERR(p, p->line, "state_postgres: expected a libpq connection string of 1 to %u "
			     "bytes", CONFIG_CONNINFO_MAX);
			return;
		}
		if (strstr(v, "password") != NULL) {
			PERR(p, p->line, "state_postgres: the password goes in "
			     "state_postgres_password_file, never in the connection string");
			return;
		}
		free(c->state_postgres);
		c->state_postgres = dup_str(p, v);
	} else if (bit == 1u << 9) {
		secret_path(p, name, v, &p->pg_password);
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

/* ---- [profile.NAME] and [client.NAME]: a table of keys each --------------------- */

/* A key of a [profile.NAME] or [client.NAME] section, parsed at its first
 * occurrence in the section (a second one is reported as a duplicate). */
struct section_key {
	const char *name;
	unsigned bit;        /* in section_src.seen */
	void (*parse)(struct parse *p, const char *name, const char *v);
};

static bool seen_once(struct parse *p, unsigned *seen, unsigned bit, const char *name)
{
	if (*seen & bit) {
		PERR(p, p->line, "duplicate key %s", name);
		return false;
	}
	*seen |= bit;
	return true;
}

/* ---- [profile.NAME] ----------------------------------------------------------- */

static profile *cur_profile(struct parse *p)
{
	return &p->cfg->profiles[p->index];
}

static void profile_base_url(struct parse *p, const char *name, const char *v)
{
	profile *pr = cur_profile(p);
	size_t n = strlen(v);

	(void)name;
	if (strncmp(v, "https://", 8) != 0 || n <= 8 || n > CONFIG_VALUE_MAX ||
	    !printable_token(v, CONFIG_VALUE_MAX)) {
		PERR(p, p->line, "base_url: expected https://HOST[:PORT] (TLS is always on), got \"%s\"", v);
		return;
	}
	pr->base_url = dup_str(p, v);
	while (pr->base_url != NULL && n > 8 && pr->base_url[n - 1] == '/')
		pr->base_url[--n] = '\0';
}

static void profile_client_id(struct parse *p, const char *name, const char *v)
{
	(void)name;
	if (!printable_token(v, CONFIG_ID_MAX)) {
		PERR(p, p->line, "client_id: expected 1 to %d printable characters without blanks",
		     CONFIG_ID_MAX);
		return;
	}
	cur_profile(p)->client_id = dup_str(p, v);
}

static void profile_channel_id(struct parse *p, const char *name, const char *v)
{
	(void)name;
	if (v[0] == '\0')
		return;
	if (!printable_token(v, CONFIG_ID_MAX)) {
		PERR(p, p->line, "channel_id: expected printable characters without blanks");
		return;
	}
	cur_profile(p)->channel_id = dup_str(p, v);
}

/* A *_file key naming a secret: its path, read by check_profiles. */
static void secret_path(struct parse *p, const char *name, const char *v, struct secret_src *dst)
{
	if (v[0] == '\0') {
		PERR(p, p->line, "%s: empty", name);
		return;
	}
	dst->file = resolve_path(p, v, true);
	dst->line = p->line;
}

static void profile_secret_file(struct parse *p, const char *name, const char *v)
{
	secret_path(p, name, v, &p->psrc[p->index].secret);
}

static void profile_key_file(struct parse *p, const char *name, const char *v)
{
	secret_path(p, name, v, &p->psrc[p->index].key);
}

static void profile_ca_file(struct parse *p, const char *name, const char *v)
{
	profile *pr = cur_profile(p);

	(void)name;
	if (v[0] == '\0')
		return;
	pr->ca_file = resolve_path(p, v, false);
	p->psrc[p->index].ca_line = p->line;
	if (pr->ca_file != NULL && access(pr->ca_file, R_OK) != 0)
		PERR(p, p->line, "ca_file: cannot read %s: %s", pr->ca_file, strerror(errno));
}

static const struct section_key profile_keys[] = {
	{ "base_url", K_BASE_URL, profile_base_url },
	{ "client_id", K_CLIENT_ID, profile_client_id },
	{ "channel_id", K_CHANNEL, profile_channel_id },
	{ "client_secret_file", K_SECRET, profile_secret_file },
	{ "private_key_file", K_KEY, profile_key_file },
	{ "ca_file", K_CA, profile_ca_file },
};

/* ---- [client.NAME] ------------------------------------------------------------ */

static void client_ids(struct parse *p, const char *name, const char *v, bool users)
{
	acl_client *cl = &p->cfg->clients[p->index];
	struct list_value l;

	split_list(p, p->line, name, "", v, &l);
	for (unsigned i = 0; i < l.n; i++) {
		const char *item = l.items[i];
		uint64_t id;

		if (isdigit((unsigned char)item[0])) {
			if (parse_uint(p, name, item, 0, (uid_t)-2, &id) != 0)
				continue;
		} else if (users) {
			struct passwd *pw = getpwnam(item);

			if (pw == NULL) {
				PERR(p, p->line, "uids: no user named \"%s\"", item);
				continue;
			}
			id = pw->pw_uid;
		} else {
			struct group *g = getgrnam(item);

			if (g == NULL) {
				PERR(p, p->line, "gids: no group named \"%s\"", item);
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

static void client_uids(struct parse *p, const char *name, const char *v)
{
	client_ids(p, name, v, true);
}

static void client_gids(struct parse *p, const char *name, const char *v)
{
	client_ids(p, name, v, false);
}

static void client_methods(struct parse *p, const char *name, const char *v)
{
	acl_client *cl = &p->cfg->clients[p->index];
	struct list_value l;

	split_list(p, p->line, name, " (use * for every method)", v, &l);
	for (unsigned i = 0; i < l.n; i++) {
		int m;

		if (strcmp(l.items[i], "*") == 0) {
			cl->methods = ~(uint64_t)0;
			continue;
		}
		m = method_index != NULL ? method_index(l.items[i]) : -1;
		if (m < 0) {
			PERR(p, p->line, "methods: no method named \"%s\"", l.items[i]);
			continue;
		}
		cl->methods |= (uint64_t)1 << m;
	}
}

/* The list is kept as written: check_clients resolves it once every profile is known. */
static void client_profiles(struct parse *p, const char *name, const char *v)
{
	struct client_src *src = &p->csrc[p->index];

	(void)name;
	src->profiles = dup_str(p, v);
	src->profiles_line = p->line;
}

static const struct section_key client_keys[] = {
	{ "uids", K_UIDS, client_uids },
	{ "gids", K_GIDS, client_gids },
	{ "methods", K_METHODS, client_methods },
	{ "profiles", K_PROFILES, client_profiles },
};

/* ---- sections and the line reader ---------------------------------------------- */

/* A [WORD.NAME] section kind: the entities it makes and the keys it takes. */
struct named_kind {
	enum section_kind kind;
	const char *word;                /* "profile": [profile.NAME] */
	unsigned max;                    /* sections of the kind */
	const struct section_key *keys;
	size_t nkeys;
};

static const struct named_kind named_kinds[] = {
	{ SEC_PROFILE, "profile", CONFIG_MAX_PROFILES, profile_keys,
	  sizeof(profile_keys) / sizeof(profile_keys[0]) },
	{ SEC_CLIENT, "client", CONFIG_MAX_CLIENTS, client_keys,
	  sizeof(client_keys) / sizeof(client_keys[0]) },
};

/* The count of the sections of kind so far. */
static unsigned *section_count(struct parse *p, enum section_kind kind)
{
	return kind == SEC_PROFILE ? &p->cfg->nprofiles : &p->cfg->nclients;
}

/* The name (in the config) of section i of kind. */
static char **section_name(struct parse *p, enum section_kind kind, unsigned i)
{
	return kind == SEC_PROFILE ? &p->cfg->profiles[i].name : &p->cfg->clients[i].name;
}

static struct section_src *section_src(struct parse *p, enum section_kind kind, unsigned i)
{
	return kind == SEC_PROFILE ? &p->psrc[i].sec : &p->csrc[i].sec;
}

/* A [WORD.sub] header at the current line: a new section of nk's kind. */
static void named_section_begin(struct parse *p, const struct named_kind *nk, const char *sub)
{
	unsigned *count = section_count(p, nk->kind);
	unsigned i;

	if (!name_ok(sub)) {
		PERR(p, p->line, "bad %s name \"%s\": expected [A-Za-z0-9._-]{1,%d}", nk->word, sub,
		     CONFIG_NAME_MAX);
		return;
	}
	for (i = 0; i < *count; i++)
		if (strcmp(*section_name(p, nk->kind, i), sub) == 0) {
			PERR(p, p->line, "duplicate section [%s.%s] (first at line %d)", nk->word, sub,
			     section_src(p, nk->kind, i)->line);
			return;
		}
	if (*count >= nk->max) {
		PERR(p, p->line, "more than %u %ss", nk->max, nk->word);
		return;
	}
	i = (*count)++;
	*section_name(p, nk->kind, i) = dup_str(p, sub);
	section_src(p, nk->kind, i)->line = p->line;
	if (nk->kind == SEC_PROFILE)
		p->cfg->profiles[i].index = i;
	p->index = (int)i;
	p->kind = nk->kind;
	p->named = nk;
}

/* A key of the current [WORD.NAME] section. */
static void named_section_key(struct parse *p, const char *name, const char *v)
{
	const struct named_kind *nk = p->named;
	struct section_src *src = section_src(p, p->kind, (unsigned)p->index);

	for (size_t k = 0; k < nk->nkeys; k++) {
		if (strcmp(name, nk->keys[k].name) != 0)
			continue;
		if (seen_once(p, &src->seen, nk->keys[k].bit, name))
			nk->keys[k].parse(p, name, v);
		return;
	}
	PERR(p, p->line, "unknown key %s in [%s.%s]", name, nk->word,
	     *section_name(p, p->kind, (unsigned)p->index));
}

/* A section header [name] at the current line: find or create its entity. */
static void section_begin(struct parse *p, const char *name)
{
	p->sec_line = p->line;
	p->kind = SEC_BAD;
	if (strcmp(name, "bridge") == 0) {
		p->kind = SEC_BRIDGE;
		return;
	}
	for (size_t k = 0; k < sizeof(named_kinds) / sizeof(named_kinds[0]); k++) {
		const struct named_kind *nk = &named_kinds[k];
		size_t n = strlen(nk->word);

		if (strncmp(name, nk->word, n) == 0 && name[n] == '.') {
			named_section_begin(p, nk, name + n + 1);
			return;
		}
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
	case SEC_PROFILE:
	case SEC_CLIENT: named_section_key(p, name, value); break;
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
			if (!(src->sec.seen & req[k].bit))
				PERR(p, src->sec.line, "[profile.%s]: missing %s", pr->name, req[k].key);
		if (!(flags & CONFIG_LOAD_SECRETS))
			continue;
		if (src->secret.file != NULL) {
			rc = secret_read_file(src->secret.file, SECRET_SECRET_FILE_MAX, true,
					      &pr->client_secret, err);
			if (rc != 0)
				PERR(p, src->secret.line, "client_secret_file: %s", err);
		}
		if (src->key.file != NULL) {
			rc = secret_read_file(src->key.file, SNAP_PEM_MAX, false, &pem, err);
			if (rc != 0) {
				PERR(p, src->key.line, "private_key_file: %s", err);
			} else {
				rc = snap_rsa_load_private_pem((const char *)pem->data, pem->len, &pr->key);
				if (rc != 0)
					PERR(p, src->key.line,
					     "private_key_file: %s is not an RSA private key in PEM (PKCS#8 or PKCS#1): %s",
					     src->key.file, snap_strerror(rc));
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
		struct list_value l;

		if (!(src->sec.seen & (K_UIDS | K_GIDS)))
			PERR(p, src->sec.line, "[client.%s]: needs uids or gids", cl->name);
		if (!(src->sec.seen & K_METHODS))
			PERR(p, src->sec.line, "[client.%s]: missing methods (use * for every method)", cl->name);
		if (!(src->sec.seen & K_PROFILES)) {
			PERR(p, src->sec.line, "[client.%s]: missing profiles (use * for every profile)", cl->name);
			continue;
		}
		if (src->profiles == NULL)
			continue;
		split_list(p, src->profiles_line, "profiles", " (use * for every profile)",
			   src->profiles, &l);
		for (unsigned k = 0; k < l.n; k++) {
			const profile *pr;

			if (strcmp(l.items[k], "*") == 0) {
				cl->profiles = ~(uint32_t)0;
				continue;
			}
			pr = config_profile(c, l.items[k]);
			if (pr == NULL) {
				PERR(p, src->profiles_line, "profiles: no [profile.%s]", l.items[k]);
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
	if (c->state_backend == CONFIG_STATE_POSTGRES) {
		if (c->state_postgres == NULL)
			PERR(p, 0, "[bridge]: state_backend = postgres needs state_postgres "
			     "(a libpq connection string)");
		if (c->state_key_file == NULL)
			PERR(p, 0, "[bridge]: state_backend = postgres needs state_key_file: every "
			     "daemon of a fleet seals with the same key (docs/fleet.md)");
	} else if (c->state_postgres != NULL || p->pg_password.file != NULL) {
		PERR(p, 0, "[bridge]: state_postgres and state_postgres_password_file need "
		     "state_backend = postgres");
	}
}

/* The database's password, read like the profiles' secrets. */
static void read_pg_password(struct parse *p, unsigned flags)
{
	char err[SECRET_ERR_MAX];

	if (!(flags & (CONFIG_LOAD_SECRETS | CONFIG_LOAD_DB_PASSWORD)) || p->pg_password.file == NULL)
		return;
	if (secret_read_file(p->pg_password.file, SECRET_SECRET_FILE_MAX, true,
			     &p->cfg->state_postgres_password, err) != 0)
		PERR(p, p->pg_password.line, "state_postgres_password_file: %s", err);
}

static void free_src(struct parse *p)
{
	for (unsigned i = 0; i < CONFIG_MAX_PROFILES; i++) {
		free(p->psrc[i].secret.file);
		free(p->psrc[i].key.file);
	}
	for (unsigned i = 0; i < CONFIG_MAX_CLIENTS; i++)
		free(p->csrc[i].profiles);
	free(p->pg_password.file);
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
	c->journal_retention_days = CONFIG_DEFAULT_RETENTION_DAYS;
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
	read_pg_password(p, flags);
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
	free(c->state_postgres);
	secret_free(c->state_postgres_password);
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
