/* doku-bridged: start-up, signals, reload, shutdown. */
#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#ifdef DOKU_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "bridge.h"
#include "call.h"
#include "config.h"
#include "doku/bridge/v1/bridge.pb-c.h"
#include "journal.h"
#include "log.h"
#include "methods.h"
#include "metrics_http.h"
#include "reconciler.h"
#include "secrets.h"
#include "server.h"
#include "session.h"
#include "snap_extid.h"
#include "tokens.h"
#include "upstream.h"

#ifndef DOKU_VERSION
#define DOKU_VERSION "0.0.0"
#endif

#define NOTIFY_MAX 256
#define FD_HEADROOM 64 /* descriptors beyond one per connection: curl, logs, signals */

static struct daemon {
	struct bridge b;
	const char *config_path;
	uv_signal_t sighup, sigterm, sigint;
	uv_timer_t drain_timer;
	uv_timer_t db_watch;         /* a fleet's: the database's connection, told in the log */
	bool db_watching, db_up;
	bool stopping, forced, finished;
} d;

/* sd_notify, with libsystemd when built with it. */
static void notify(const char *msg)
{
#ifdef DOKU_HAVE_SYSTEMD
	(void)sd_notify(0, msg);
#else
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa;
	size_t n;
	int fd;

	if (path == NULL || (path[0] != '/' && path[0] != '@'))
		return;
	n = strlen(path);
	if (n >= sizeof(sa.sun_path))
		return;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, path, n);
	if (sa.sun_path[0] == '@')
		sa.sun_path[0] = '\0';
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	(void)sendto(fd, msg, strlen(msg), MSG_NOSIGNAL, (struct sockaddr *)&sa,
		     (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n));
	close(fd);
#endif
}

static void notify_reloading(void)
{
	char msg[NOTIFY_MAX];
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	snprintf(msg, sizeof(msg), "RELOADING=1\nMONOTONIC_USEC=%llu",
		 (unsigned long long)ts.tv_sec * 1000000ull + (unsigned long long)ts.tv_nsec / 1000ull);
	notify(msg);
}

static void print_diag(const config_diag *diag, FILE *f)
{
	for (unsigned i = 0; i < diag->n; i++)
		fprintf(f, "%s\n", diag->msg[i]);
	if (diag->truncated)
		fprintf(f, "(more problems not shown)\n");
}

/* One descriptor per connection, and some. */
static void raise_nofile(const config *cfg)
{
	struct rlimit rl;
	rlim_t want = (rlim_t)cfg->max_connections + cfg->upstream_connections + FD_HEADROOM;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= want)
		return;
	rl.rlim_cur = want < rl.rlim_max ? want : rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur < want)
		log_msg(LOG_LVL_WARNING, "RLIMIT_NOFILE %llu is below max_connections + %u",
			(unsigned long long)rl.rlim_cur, cfg->upstream_connections + FD_HEADROOM);
}

/* ---- shutdown ------------------------------------------------------------------------ */

static void on_handle_closed(uv_handle_t *h)
{
	(void)h;
}

/* Stop reconciling, then close the journal and its store. */
static void close_state(struct bridge *b)
{
	reconciler_close(b->rec);
	b->rec = NULL;
	if (b->tokens != NULL)
		tokens_set_store(b->tokens, NULL);
	journal_close(b->journal);
	b->journal = NULL;
}

static void finish_shutdown(void)
{
	struct bridge *b = &d.b;

	if (d.finished)
		return;
	d.finished = true;
	b->drain_check = NULL;
	uv_timer_stop(&d.drain_timer);
	uv_close((uv_handle_t *)&d.drain_timer, on_handle_closed);
	uv_close((uv_handle_t *)&d.sighup, on_handle_closed);
	uv_close((uv_handle_t *)&d.sigterm, on_handle_closed);
	uv_close((uv_handle_t *)&d.sigint, on_handle_closed);
	if (d.db_watching)
		uv_close((uv_handle_t *)&d.db_watch, on_handle_closed);
	/* abort what is left (only after the drain bound) */
	call_abort_all(b, DOKU__BRIDGE__V1__CODE__UNAVAILABLE, "the daemon is shutting down");
	server_close(b->srv);
	b->srv = NULL;
	metrics_http_stop();
	close_state(b); /* the store finishes what is queued, then closes */
	tokens_free(b->tokens);
	b->tokens = NULL;
	upstream_close(b->up);
	b->up = NULL;
	log_msg(LOG_LVL_INFO, "stopped: %llu calls served, %llu failed",
		(unsigned long long)b->calls_served, (unsigned long long)b->calls_failed);
}

static void drain_check(struct bridge *b)
{
	if (b->calls_in_flight == 0 && b->internal_in_flight == 0 && server_connections(b->srv) == 0)
		finish_shutdown();
}

static void on_drain_timeout(uv_timer_t *t)
{
	struct bridge *b = &d.b;

	(void)t;
	if (d.forced) {
		log_msg(LOG_LVL_WARNING, "connections still open after the drain: closing them");
		finish_shutdown();
		return;
	}
	d.forced = true;
	if (b->calls_in_flight > 0)
		log_msg(LOG_LVL_WARNING, "drain_timeout_ms passed: aborting %u calls in flight",
			b->calls_in_flight);
	call_abort_all(b, DOKU__BRIDGE__V1__CODE__UNAVAILABLE, "the daemon is shutting down");
	/* replies are being written; give them the I/O bound, then close regardless */
	uv_timer_start(&d.drain_timer, on_drain_timeout, b->cfg->io_timeout_ms, 0);
	drain_check(b);
}

static void on_stop(uv_signal_t *h, int signum)
{
	struct bridge *b = &d.b;

	(void)h;
	if (d.stopping) {
		log_msg(LOG_LVL_WARNING, "signal %d again: stopping now", signum);
		d.forced = true;
		finish_shutdown();
		return;
	}
	d.stopping = true;
	notify("STOPPING=1");
	log_msg(LOG_LVL_INFO, "signal %d: draining %u calls in flight", signum, b->calls_in_flight);
	b->draining = true;
	b->drain_check = drain_check;
	if (b->journal != NULL)
		journal_quiesce(b->journal);
	server_stop_accepting(b->srv);
	server_drain(b->srv);
	uv_timer_start(&d.drain_timer, on_drain_timeout, b->cfg->drain_timeout_ms, 0);
	drain_check(b);
}

/* ---- reload ---------------------------------------------------------------------------- */

static void on_reload(uv_signal_t *h, int signum)
{
	struct bridge *b = &d.b;
	config_diag *diag = calloc(1, sizeof(*diag));
	config *ncfg = NULL, *old;
	int rc;

	(void)h;
	(void)signum;
	if (d.stopping || diag == NULL) {
		free(diag);
		return;
	}
	notify_reloading();
	rc = config_load(d.config_path, CONFIG_LOAD_SECRETS, &ncfg, diag);
	if (rc != 0) {
		for (unsigned i = 0; i < diag->n; i++)
			log_msg(LOG_LVL_ERROR, "reload: %s", diag->msg[i]);
		log_msg(LOG_LVL_ERROR, "reload failed: keeping the running configuration");
		notify("READY=1\nSTATUS=reload failed; running the previous configuration");
		free(diag);
		return;
	}
	free(diag);
	if (strcmp(ncfg->socket, b->cfg->socket) != 0)
		log_msg(LOG_LVL_WARNING, "reload: socket %s: a new socket path needs a restart", ncfg->socket);
	if (tokens_reconfigure(b->tokens, ncfg) != 0) {
		log_msg(LOG_LVL_ERROR, "reload failed: out of memory");
		config_unref(ncfg);
		notify("READY=1\nSTATUS=reload failed");
		return;
	}
	old = b->cfg;
	b->cfg = ncfg;
	config_unref(old);
	log_set_level(ncfg->log_level);
	raise_nofile(ncfg);
	upstream_set_max_host_connections(b->up, ncfg->upstream_connections);
	server_reconfigure(b->srv, ncfg);
	journal_retention(b->journal, ncfg->journal_retention_days);
	log_msg(LOG_LVL_INFO, "configuration reloaded: %u profiles, %u clients", ncfg->nprofiles,
		ncfg->nclients);
	notify("READY=1\nSTATUS=running");
}

/* ---- a fleet's database, watched -------------------------------------------------------- */

#define DB_WATCH_MS 1000u

/* The log says when the fleet's database connection goes and comes back
 * (the store reconnects alone, with backoff; the metrics count it). */
static void on_db_watch(uv_timer_t *t)
{
	store_stats st;

	(void)t;
	if (d.b.journal == NULL)
		return;
	store_get_stats(journal_store(d.b.journal), &st);
	if (st.connected == d.db_up)
		return;
	d.db_up = st.connected;
	if (st.connected)
		log_msg(LOG_LVL_INFO, "state database: connected again (%llu reconnects so far)",
			(unsigned long long)st.reconnects);
	else
		log_msg(LOG_LVL_WARNING, "state database: connection lost; reconnecting with backoff. "
			"Money-moving calls are refused (NOT_DONE, never sent) until it is back; reads "
			"use the tokens held (%llu database errors so far)",
			(unsigned long long)st.errors);
}

static void db_watch_start(uv_loop_t *loop)
{
	if (d.b.journal == NULL || !store_shared(journal_store(d.b.journal)))
		return;
	d.db_up = true;
	uv_timer_init(loop, &d.db_watch);
	uv_timer_start(&d.db_watch, on_db_watch, DB_WATCH_MS, DB_WATCH_MS);
	uv_unref((uv_handle_t *)&d.db_watch);
	d.db_watching = true;
	log_msg(LOG_LVL_INFO, "state: PostgreSQL (a fleet's), this daemon is %s",
		journal_holder(d.b.journal));
}

/* ---- the command line's state tools ---------------------------------------------------- */

/* --verify-state, --export-journal (read-only, synchronous; they work while
 * daemons run: docs/state.md) and --import-state DIR (the SQLite state of DIR
 * copied into the configured PostgreSQL: docs/fleet.md). The exit status. */
static int state_tool(const config *cfg, bool verify, const char *import)
{
	char err[JOURNAL_ERR_MAX];
	sealed_key *key = NULL;
	store_where w;
	int rc;

	journal_where(cfg, NULL, &w);
	if (import != NULL) {
		if (w.kind != STORE_POSTGRES) {
			fprintf(stderr, "doku-bridged: --import-state copies into PostgreSQL: set "
				"state_backend = postgres in %s\n", cfg->path);
			return 1;
		}
		if (journal_key(cfg, true, &key, err) != 0) {
			fprintf(stderr, "doku-bridged: %s\n", err);
			return 1;
		}
		rc = store_import_sqlite(&w, import, key, stdout);
		sealed_key_free(key);
		if (rc != 0)
			fprintf(stderr, "doku-bridged: --import-state %s: %s\n", import, store_strerror(rc));
		return rc == 0 ? 0 : 1;
	}
	rc = verify ? store_verify_at(&w, stdout) : store_export_journal_at(&w, stdout);
	if (rc != 0)
		fprintf(stderr, "doku-bridged: %s: %s\n",
			w.kind == STORE_POSTGRES ? "state_postgres" : cfg->state_dir, store_strerror(rc));
	return rc == 0 ? 0 : 1;
}

/* ---- main ------------------------------------------------------------------------------ */

static void usage(FILE *f)
{
	fprintf(f, "usage: doku-bridged --config FILE [--check-config]\n"
		   "       doku-bridged --config FILE --verify-state | --export-journal\n"
		   "       doku-bridged --config FILE --import-state SQLITE_STATE_DIR\n"
		   "       doku-bridged --version\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check-config", no_argument, NULL, 'k' },
		{ "verify-state", no_argument, NULL, 's' },
		{ "export-journal", no_argument, NULL, 'e' },
		{ "import-state", required_argument, NULL, 'i' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct bridge *b = &d.b;
	config_diag *diag = NULL;
	uv_loop_t loop;
	char jerr[JOURNAL_ERR_MAX];
	bool check = false, verify = false, export = false;
	const char *import = NULL;
	int opt, rc, status = 1;

	rc = secrets_harden();
	if (rc != 0)
		fprintf(stderr, "doku-bridged: cannot set PR_SET_DUMPABLE 0 / RLIMIT_CORE 0: %s\n",
			strerror(-rc));
	signal(SIGPIPE, SIG_IGN);
	while ((opt = getopt_long(argc, argv, "c:", opts, NULL)) != -1) {
		switch (opt) {
		case 'c': d.config_path = optarg; break;
		case 'k': check = true; break;
		case 's': verify = true; break;
		case 'e': export = true; break;
		case 'i': import = optarg; break;
		case 'V': printf("doku-bridged %s\n", DOKU_VERSION); return 0;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (d.config_path == NULL || optind != argc || (int)check + (int)verify + (int)export + (int)(import != NULL) > 1) {
		usage(stderr);
		return 2;
	}
	log_setup(LOG_LVL_INFO);
	if (methods_init() != 0 || curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK ||
	    snap_extid_init() != 0) {
		log_msg(LOG_LVL_ERROR, "start-up failed");
		return 1;
	}
	diag = calloc(1, sizeof(*diag));
	if (diag == NULL)
		return 1;
	rc = config_load(d.config_path, verify || export || import ? CONFIG_LOAD_DB_PASSWORD :
			 CONFIG_LOAD_SECRETS, &b->cfg, diag);
	if (rc != 0) {
		print_diag(diag, check ? stdout : stderr);
		free(diag);
		curl_global_cleanup();
		return 1;
	}
	free(diag);
	if (check) {
		printf("%s: ok (%u profiles, %u clients)\n", d.config_path, b->cfg->nprofiles,
		       b->cfg->nclients);
		config_unref(b->cfg);
		curl_global_cleanup();
		return 0;
	}
	if (verify || export || import) {
		rc = state_tool(b->cfg, verify, import);
		config_unref(b->cfg);
		curl_global_cleanup();
		return rc;
	}
	log_set_level(b->cfg->log_level);
	raise_nofile(b->cfg);
	if (uv_loop_init(&loop) != 0)
		return 1;
	b->loop = &loop;
	list_init(&b->calls);
	b->started_ms = uv_now(&loop);
	if (upstream_new(&loop, b->cfg->upstream_connections, &b->up) != 0 ||
	    tokens_new(&loop, b->up, methods_b2b_token_endpoint(), methods_b2b2c_token_endpoint(),
		       &b->tokens) != 0 ||
	    tokens_reconfigure(b->tokens, b->cfg) != 0) {
		log_msg(LOG_LVL_ERROR, "start-up failed: out of memory");
		goto out;
	}
	if (journal_open(&loop, b->cfg, &b->journal, jerr) != 0) {
		log_msg(LOG_LVL_ERROR, "refusing to start: %s. Check it with: doku-bridged --config %s "
			"--verify-state", jerr, d.config_path);
		goto out;
	}
	tokens_restore(b->tokens, journal_store(b->journal), b->cfg);
	if (reconciler_new(b, &b->rec) != 0) {
		log_msg(LOG_LVL_ERROR, "start-up failed: out of memory");
		goto out;
	}
	rc = server_start(&loop, b->cfg, &session_conn_ops, b, &b->srv);
	if (rc != 0)
		goto out;
	if (b->cfg->metrics_listen != NULL && metrics_http_start(b, b->cfg->metrics_listen) != 0)
		goto out;
	uv_signal_init(&loop, &d.sighup);
	uv_signal_init(&loop, &d.sigterm);
	uv_signal_init(&loop, &d.sigint);
	uv_timer_init(&loop, &d.drain_timer);
	uv_signal_start(&d.sighup, on_reload, SIGHUP);
	uv_signal_start(&d.sigterm, on_stop, SIGTERM);
	uv_signal_start(&d.sigint, on_stop, SIGINT);
	log_msg(LOG_LVL_INFO, "doku-bridged %s ready (%u profiles, %u clients%s)", DOKU_VERSION,
		b->cfg->nprofiles, b->cfg->nclients,
		secrets_locked() ? "" : "; secrets not locked in RAM: raise RLIMIT_MEMLOCK");
	notify("READY=1\nSTATUS=running");
	reconciler_start(b->rec);
	db_watch_start(&loop);
	journal_retention(b->journal, b->cfg->journal_retention_days);
	uv_run(&loop, UV_RUN_DEFAULT);
	status = 0;
out:
	if (!d.finished) {
		/* start-up failed half-way: release what exists */
		server_close(b->srv);
		metrics_http_stop();
		close_state(b);
		tokens_free(b->tokens);
		upstream_close(b->up);
		uv_run(&loop, UV_RUN_DEFAULT);
	}
	if (uv_loop_close(&loop) != 0)
		log_msg(LOG_LVL_WARNING, "handles left open at exit");
	config_unref(b->cfg);
	curl_global_cleanup();
	return status;
}
