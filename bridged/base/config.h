/* The daemon's configuration: the INI file of DESIGN.md (inih), its
 * [profile.NAME] credential profiles with their secrets, and the
 * [client.NAME] access control list.
 *
 * A config is immutable once loaded and reference-counted: the daemon holds
 * one reference to the current one, every call in flight holds one to the
 * config it started with, so SIGHUP can swap in a new one while calls finish
 * with the old. The secrets and keys it holds are wiped when the last
 * reference goes. */
#ifndef DOKU_BASE_CONFIG_H
#define DOKU_BASE_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "secrets.h"
#include "snap_sign.h"

#define CONFIG_MAX_PROFILES 32
#define CONFIG_MAX_CLIENTS 64
#define CONFIG_MAX_IDS 32            /* uids (or gids) of one [client.NAME] */
#define CONFIG_MAX_ERRORS 64         /* problems reported by one load */
#define CONFIG_ERR_MAX 512           /* one problem's text, "file:line: message" */
#define CONFIG_NAME_MAX 64           /* profile and client names */
#define CONFIG_FILE_MAX (1024u * 1024u)
#define CONFIG_PEER_GROUPS_MAX 64    /* supplementary groups of a peer considered */
#define CONFIG_LISTEN_MAX 64         /* metrics_listen: "127.0.0.1:9464", "[::1]:9464" */

/* Defaults and bounds of [bridge] keys (docs/configuration.md). */
#define CONFIG_DEFAULT_SOCKET "/run/doku-bridge/bridge.sock"
#define CONFIG_FRAME_MIN 1024u
#define CONFIG_FRAME_LIMIT (64u * 1024u * 1024u)
#define CONFIG_DEFAULT_MAX_CONNECTIONS 1024u
#define CONFIG_MAX_CONNECTIONS_LIMIT 65536u
#define CONFIG_DEFAULT_MAX_CALLS 64u        /* calls in flight per connection */
#define CONFIG_MAX_CALLS_LIMIT 4096u
#define CONFIG_DEFAULT_TIMEOUT_MS 30000u
#define CONFIG_DEFAULT_MAX_TIMEOUT_MS 120000u
#define CONFIG_TIMEOUT_LIMIT_MS 3600000u
#define CONFIG_DEFAULT_IDLE_TIMEOUT_MS 300000u
#define CONFIG_DEFAULT_IO_TIMEOUT_MS 10000u
#define CONFIG_DEFAULT_DRAIN_TIMEOUT_MS 15000u
#define CONFIG_DEFAULT_MAX_SESSIONS 100000u /* customer sessions per profile */
#define CONFIG_DEFAULT_UPSTREAM_CONNECTIONS 32u
#define CONFIG_DEFAULT_RETENTION_DAYS 180u  /* journal_retention_days */
#define CONFIG_RETENTION_LIMIT_DAYS 3650u   /* its largest value; 0: keep forever */
#define CONFIG_DEFAULT_PROFILE "default"
#define CONFIG_DEFAULT_STATE_DIR "/var/lib/doku-bridge"

typedef struct profile {
	unsigned index;        /* position in config.profiles */
	char *name;
	char *base_url;        /* "https://host[:port]", no trailing '/' */
	char *client_id;
	char *channel_id;      /* NULL: no CHANNEL-ID header */
	char *ca_file;         /* NULL: the system's CA bundle */
	secret *client_secret; /* NULL when loaded without secrets */
	snap_rsa *key;         /* NULL when loaded without secrets */
} profile;

typedef struct acl_client {
	char *name;
	uid_t uids[CONFIG_MAX_IDS];
	unsigned nuids;
	gid_t gids[CONFIG_MAX_IDS];
	unsigned ngids;
	uint64_t methods;      /* bit i: method row index i allowed (config_method_lookup) */
	uint32_t profiles;     /* bit i: profile index i allowed */
} acl_client;

/* [bridge] state_backend: where the durable state lives (docs/fleet.md). */
enum config_state_backend { CONFIG_STATE_SQLITE, CONFIG_STATE_POSTGRES };

#define CONFIG_CONNINFO_MAX 1024    /* bytes of state_postgres */
#define CONFIG_PASSWORD_FILE_MAX 1024 /* bytes of state_postgres_password_file */

typedef struct config {
	int refs;
	char *path;
	/* [bridge] */
	char *socket;
	char *state_dir;        /* the durable state (docs/state.md) */
	char *state_key_file;   /* the sealing key's file; NULL: <state_dir>/state.key */
	bool journal;           /* journal money-moving calls (off: only to measure its cost) */
	int state_backend;      /* CONFIG_STATE_SQLITE (default) or CONFIG_STATE_POSTGRES */
	char *state_postgres;   /* POSTGRES: the libpq connection string (no password in it) */
	secret *state_postgres_password; /* from state_postgres_password_file; NULL: none */
	gid_t socket_gid;       /* (gid_t)-1: the daemon's group */
	uint32_t max_frame;
	unsigned max_connections;
	unsigned max_calls;     /* per connection */
	uint32_t default_timeout_ms;
	uint32_t max_timeout_ms;
	uint32_t idle_timeout_ms;
	uint32_t io_timeout_ms;
	uint32_t drain_timeout_ms;
	unsigned max_sessions;
	unsigned upstream_connections;
	unsigned journal_retention_days; /* settled journal rows are deleted after it; 0: never */
	int log_level;
	char *metrics_listen;   /* loopback HOST:PORT of the metrics HTTP endpoint; NULL: none */
	/* [profile.NAME] */
	profile profiles[CONFIG_MAX_PROFILES];
	unsigned nprofiles;
	/* [client.NAME]; none: only root and the daemon's own user may call */
	acl_client clients[CONFIG_MAX_CLIENTS];
	unsigned nclients;
} config;

/* Problems found by a load, each "file:line: message" (line 0: the file). */
typedef struct config_diag {
	char msg[CONFIG_MAX_ERRORS][CONFIG_ERR_MAX];
	unsigned n;
	bool truncated;         /* more problems than CONFIG_MAX_ERRORS */
} config_diag;

enum config_flags {
	CONFIG_LOAD_SECRETS = 1u << 0, /* read the secret files and parse the keys */
	CONFIG_LOAD_DB_PASSWORD = 1u << 1, /* only state_postgres_password_file (the command line's state tools) */
};

/* The lookup of [client.NAME] methods: a method's name -> its row index
 * (0..63), -1 when unknown. Handed in once by the RPC layer (methods_init)
 * before any load; without it every method name is refused. */
void config_method_lookup(int (*index_of)(const char *name));

/* Whether addr is "IPv4-loopback:PORT" or "[::1]:PORT" (PORT 1..65535);
 * fills *sa (a struct sockaddr_storage) when not NULL. */
bool config_loopback_addr(const char *addr, void *sa);

/* Parse path. Every problem goes to diag (all of them, not only the first).
 * 0 with *out (one reference, the caller's), or -EINVAL when there were
 * problems (*out NULL), -ENOMEM, or -errno when the file cannot be read.
 * A relative *_file value is taken from $CREDENTIALS_DIRECTORY when that is
 * set, else from the directory of the configuration file. diag is required. */
int config_load(const char *path, unsigned flags, config **out, config_diag *diag);

config *config_ref(config *c);
void config_unref(config *c); /* NULL is a no-op */

/* The profile named name (NULL or "": "default"); NULL when there is none. */
const profile *config_profile(const config *c, const char *name);

/* The peer of a connection, from SO_PEERCRED and SO_PEERGROUPS. */
typedef struct peer {
	pid_t pid;
	uid_t uid;
	gid_t gid;
	gid_t groups[CONFIG_PEER_GROUPS_MAX];
	unsigned ngroups;
} peer;

/* Whether the ACL lets peer call the method of row index midx with
 * profile index prof (-1: a method that uses no profile). With no
 * [client.NAME] section only root and the daemon's own uid may call. */
bool config_acl_allows(const config *c, const peer *p, unsigned midx, int prof);

/* Whether any [client.NAME] section (or the no-ACL rule) matches peer at all. */
bool config_acl_knows(const config *c, const peer *p);

#endif
