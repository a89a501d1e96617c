/* doku-snapsim: an offline HTTPS server that behaves like DOKU's SNAP
 * sandbox for every DOKU Wallet endpoint. See docs/snapsim.md. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "app.h"
#include "config.h"
#include "server.h"
#include "sim.h"
#include "simlog.h"
#include "snap_sign.h"
#include "world.h"

#define PROG "doku-snapsim"
#define VERSION "0.1.0"
#define CONTROL_DEFAULT "127.0.0.1:8444"
#define ERR_MAX 512

struct options {
	const char *listen;
	const char *control;
	const char *tls_cert;
	const char *tls_key;
	const char *client_id;
	const char *secret_file;
	const char *public_key;
	const char *config_file;
	const char *seed;
	const char *clock_skew;
	const char *threads;
	const char *idle_timeout;
	bool verbose;
};

static void usage(FILE *to)
{
	fprintf(to,
		"usage: " PROG " --listen HOST:PORT --tls-cert FILE --tls-key FILE\n"
		"       --client-id ID --client-secret-file FILE --partner-public-key FILE\n"
		"       [--control 127.0.0.1:PORT] [--seed N] [--clock-skew SECONDS]\n"
		"       [--config FILE] [--threads N] [--idle-timeout SECONDS] [--verbose]\n"
		"PORT 0 picks a free port. When both listeners are up, one line is printed:\n"
		"  " PROG " ready https=HOST:PORT control=HOST:PORT\n");
}

static int parse_args(int argc, char **argv, struct options *o)
{
	static const struct option longs[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "control", required_argument, NULL, 'c' },
		{ "tls-cert", required_argument, NULL, 'C' },
		{ "tls-key", required_argument, NULL, 'K' },
		{ "client-id", required_argument, NULL, 'i' },
		{ "client-secret-file", required_argument, NULL, 's' },
		{ "partner-public-key", required_argument, NULL, 'p' },
		{ "config", required_argument, NULL, 'f' },
		{ "seed", required_argument, NULL, 'S' },
		{ "clock-skew", required_argument, NULL, 'k' },
		{ "threads", required_argument, NULL, 't' },
		{ "idle-timeout", required_argument, NULL, 'T' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	memset(o, 0, sizeof(*o));
	o->control = CONTROL_DEFAULT;
	while ((c = getopt_long(argc, argv, "", longs, NULL)) != -1) {
		switch (c) {
		case 'l': o->listen = optarg; break;
		case 'c': o->control = optarg; break;
		case 'C': o->tls_cert = optarg; break;
		case 'K': o->tls_key = optarg; break;
		case 'i': o->client_id = optarg; break;
		case 's': o->secret_file = optarg; break;
		case 'p': o->public_key = optarg; break;
		case 'f': o->config_file = optarg; break;
		case 'S': o->seed = optarg; break;
		case 'k': o->clock_skew = optarg; break;
		case 't': o->threads = optarg; break;
		case 'T': o->idle_timeout = optarg; break;
		case 'v': o->verbose = true; break;
		case 'h': usage(stdout); exit(0);
		case 'V': printf(PROG " " VERSION "\n"); exit(0);
		default: usage(stderr); return SIM_ERR_INVALID;
		}
	}
	if (optind != argc || o->listen == NULL || o->tls_cert == NULL || o->tls_key == NULL) {
		usage(stderr);
		return SIM_ERR_INVALID;
	}
	return SIM_OK;
}

static int parse_number(const char *text, const char *what, unsigned long long max,
			unsigned long long *out)
{
	char *end;

	errno = 0;
	if (text[0] < '0' || text[0] > '9')
		goto bad;
	*out = strtoull(text, &end, 10);
	if (errno != 0 || *end != '\0' || *out > max)
		goto bad;
	return SIM_OK;
bad:
	fprintf(stderr, PROG ": %s: a number up to %llu\n", what, max);
	return SIM_ERR_INVALID;
}

/* A NUL-terminated copy of a PEM file (at most SNAP_PEM_MAX bytes); the
 * caller frees it with free_pem. */
static char *read_pem(const char *path)
{
	char *buf = malloc(SNAP_PEM_MAX + 1);
	size_t got = 0;
	int fd;

	if (buf == NULL)
		return NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, PROG ": %s: %s\n", path, strerror(errno));
		free(buf);
		return NULL;
	}
	for (;;) {
		ssize_t n = read(fd, buf + got, SNAP_PEM_MAX + 1 - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
		if (got > SNAP_PEM_MAX)
			break;
	}
	close(fd);
	if (got == 0 || got > SNAP_PEM_MAX) {
		fprintf(stderr, PROG ": %s: empty or larger than %u bytes\n", path, SNAP_PEM_MAX);
		explicit_bzero(buf, SNAP_PEM_MAX + 1);
		free(buf);
		return NULL;
	}
	buf[got] = '\0';
	return buf;
}

static void free_pem(char *pem)
{
	if (pem == NULL)
		return;
	explicit_bzero(pem, strlen(pem));
	free(pem);
}

static int random_seed(uint64_t *seed)
{
	if (getrandom(seed, sizeof(*seed), 0) != (ssize_t)sizeof(*seed)) {
		fprintf(stderr, PROG ": getrandom: %s\n", strerror(errno));
		return SIM_ERR_IO;
	}
	return SIM_OK;
}

/* Wait for SIGTERM or SIGINT (blocked in every thread). */
static int wait_for_stop(const sigset_t *set)
{
	int sig = 0;

	while (sigwait(set, &sig) != 0)
		;
	return sig;
}

int main(int argc, char **argv)
{
	struct options o;
	sim_config config;
	sim_server_opts so;
	sim_faults faults;
	sim_log log;
	sim_app app;
	world *w = NULL;
	sim_server *server = NULL;
	char *cert = NULL, *key = NULL;
	char err[ERR_MAX] = "";
	unsigned long long n;
	uint64_t seed = 0;
	sigset_t stop_set;
	bool faults_ok = false, log_ok = false;
	int rc = 1, sig;

	sim_config_init(&config);
	memset(&so, 0, sizeof(so));
	memset(&app, 0, sizeof(app));
	if (parse_args(argc, argv, &o) != 0)
		return 2;
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&stop_set);
	sigaddset(&stop_set, SIGTERM);
	sigaddset(&stop_set, SIGINT);
	/* every thread started from here on inherits the mask; main waits */
	pthread_sigmask(SIG_BLOCK, &stop_set, NULL);

	if (o.config_file != NULL &&
	    sim_config_load_file(&config, o.config_file, err, sizeof(err)) != 0)
		goto out;
	if (o.client_id != NULL || o.secret_file != NULL || o.public_key != NULL) {
		if (sim_config_add_partner(&config, o.client_id, o.secret_file, o.public_key, err,
					   sizeof(err)) != 0)
			goto out;
	}
	if (config.partner_count == 0) {
		snprintf(err, sizeof(err), "no partner: give --client-id, --client-secret-file and "
					   "--partner-public-key (or a --config with partners)");
		goto out;
	}
	if (o.clock_skew != NULL) {
		if (parse_number(o.clock_skew, "--clock-skew", SIM_TTL_MAX, &n) != 0)
			goto out;
		config.settings.clock_skew = (long)n;
	}
	so.threads = SIM_THREADS_DEFAULT;
	if (o.threads != NULL) {
		if (parse_number(o.threads, "--threads", SIM_THREADS_MAX, &n) != 0 || n == 0)
			goto out;
		so.threads = (unsigned)n;
	}
	so.idle_timeout = SIM_IDLE_TIMEOUT_DEFAULT;
	if (o.idle_timeout != NULL) {
		if (parse_number(o.idle_timeout, "--idle-timeout", 3600, &n) != 0 || n == 0)
			goto out;
		so.idle_timeout = (unsigned)n;
	}
	if (o.seed != NULL) {
		if (parse_number(o.seed, "--seed", UINT64_MAX, &n) != 0)
			goto out;
		seed = n;
	} else if (random_seed(&seed) != 0) {
		goto out;
	}
	if (sim_addr_parse(o.listen, &so.https_addr, &so.https_addr_len) != 0) {
		snprintf(err, sizeof(err), "--listen %s: expected HOST:PORT", o.listen);
		goto out;
	}
	if (sim_addr_parse(o.control, &so.control_addr, &so.control_addr_len) != 0 ||
	    !sim_addr_is_loopback(&so.control_addr)) {
		snprintf(err, sizeof(err), "--control %s: expected a loopback HOST:PORT", o.control);
		goto out;
	}
	cert = read_pem(o.tls_cert);
	key = read_pem(o.tls_key);
	if (cert == NULL || key == NULL)
		goto out;
	so.cert_pem = cert;
	so.key_pem = key;
	so.verbose = o.verbose;

	if (sim_faults_init(&faults) != 0) {
		snprintf(err, sizeof(err), "out of memory");
		goto out;
	}
	faults_ok = true;
	if (sim_log_init(&log, SIM_LOG_CAPACITY, o.verbose) != 0) {
		snprintf(err, sizeof(err), "out of memory");
		goto out;
	}
	log_ok = true;
	if (world_new(&config, seed, &w) != 0) {
		snprintf(err, sizeof(err), "cannot create the world");
		goto out;
	}
	app.config = &config;
	app.world = w;
	app.faults = &faults;
	app.log = &log;
	if (sim_server_start(&so, &app, &server, err, sizeof(err)) != 0)
		goto out;
	{
		char base[SIM_URL_MAX];

		snprintf(base, sizeof(base), "https://%s", app.https_addr);
		world_set_base_url(w, base);
	}
	printf(PROG " ready https=%s control=%s\n", app.https_addr, app.control_addr);
	fflush(stdout);
	fprintf(stderr, PROG ": %zu partner(s), seed %llu, clock skew %ld s, %u thread(s)\n",
		config.partner_count, (unsigned long long)seed, config.settings.clock_skew,
		so.threads);

	sig = wait_for_stop(&stop_set);
	fprintf(stderr, PROG ": %s, stopping\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
	sim_server_stop(server);
	server = NULL;
	fprintf(stderr, PROG ": stopped\n");
	rc = 0;
out:
	if (rc != 0 && err[0] != '\0')
		fprintf(stderr, PROG ": %s\n", err);
	sim_server_stop(server);
	world_free(w);
	if (log_ok)
		sim_log_free(&log);
	if (faults_ok)
		sim_faults_free(&faults);
	free_pem(cert);
	free_pem(key);
	sim_config_free(&config);
	return rc;
}
