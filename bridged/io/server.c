/* The listening socket and the connections' shared timers. */
#include "server.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"

struct server {
	conn_host host;              /* what its connections share (conn.h) */
	uv_pipe_t listener;
	bool listening;
	bool inherited;              /* systemd's socket (LISTEN_FDS): never unlinked */
	char *path;                  /* the socket's path, unlinked at stop */
	uv_timer_t sweep;            /* idle, half-sent and stalled connections */
	uv_idle_t resume;            /* deferred work of connections (conn_resume) */
	uint64_t refused;            /* connections refused at the cap */
	unsigned handles;            /* the server's own uv handles not yet closed */
	bool closing;
};

static void maybe_free(server *s)
{
	if (s->closing && s->handles == 0 && s->host.nconns == 0) {
		free(s->path);
		free(s);
	}
}

static void on_handle_closed(uv_handle_t *h)
{
	server *s = h->data;

	s->handles--;
	maybe_free(s);
}

static void on_refused_closed(uv_handle_t *h)
{
	free(h);
}

/* At max_connections, or draining: accept and close at once. */
static void refuse(server *s)
{
	uv_pipe_t *tmp = malloc(sizeof(*tmp));

	if (tmp == NULL)
		return;
	uv_pipe_init(s->host.loop, tmp, 0);
	(void)uv_accept((uv_stream_t *)&s->listener, (uv_stream_t *)tmp);
	uv_close((uv_handle_t *)tmp, on_refused_closed);
	if (s->refused++ % 1000 == 0)
		log_msg(LOG_LVL_WARNING, "connection refused: %u connections (max_connections)",
			s->host.nconns);
}

static void on_connection(uv_stream_t *listener, int status)
{
	server *s = listener->data;

	if (status < 0) {
		log_msg(LOG_LVL_WARNING, "accept: %s", uv_strerror(status));
		return;
	}
	if (s->host.nconns >= s->host.cfg->max_connections || s->host.draining) {
		refuse(s);
		return;
	}
	(void)conn_accept(&s->host, (uv_stream_t *)&s->listener);
}

static uint64_t sweep_period(const config *cfg)
{
	uint64_t p = cfg->io_timeout_ms < cfg->idle_timeout_ms ? cfg->io_timeout_ms : cfg->idle_timeout_ms;

	p /= 4;
	if (p < SERVER_SWEEP_MIN_MS)
		p = SERVER_SWEEP_MIN_MS;
	if (p > SERVER_SWEEP_MAX_MS)
		p = SERVER_SWEEP_MAX_MS;
	return p;
}

static void on_sweep(uv_timer_t *t)
{
	server *s = t->data;
	uint64_t now = uv_now(s->host.loop);
	struct list_node *n, *next;

	for (n = s->host.conns.next; n != &s->host.conns; n = next) {
		next = n->next;
		conn_sweep(conn_of_node(n), now);
	}
}

static void on_resume(uv_idle_t *h)
{
	server *s = h->data;
	struct list_node local;

	/* conn_resume may queue a connection again: work on the list as it is now */
	list_init(&local);
	if (!list_empty(&s->host.resume)) {
		local.next = s->host.resume.next;
		local.prev = s->host.resume.prev;
		local.next->prev = &local;
		local.prev->next = &local;
		list_init(&s->host.resume);
	}
	while (!list_empty(&local)) {
		struct list_node *n = local.next;

		list_del(n);
		conn_resume(conn_of_resume_node(n));
	}
	if (list_empty(&s->host.resume))
		uv_idle_stop(&s->resume);
}

/* conn_host.wake */
static void wake(conn_host *h)
{
	server *s = list_entry(h, server, host);

	if (!s->closing)
		uv_idle_start(&s->resume, on_resume);
}

/* conn_host.closed: a connection was freed. */
static void conn_freed(conn_host *h)
{
	server *s = list_entry(h, server, host);

	if (h->ops->gone != NULL && !s->closing)
		h->ops->gone(h->ops_data);
	maybe_free(s);
}

/* The socket's own directory: created 0750 if missing; if it exists it must
 * be a directory not writable by others, and is narrowed to 0750 when ours. */
static int prepare_dir(const config *cfg, const char *path)
{
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
	const char *slash = strrchr(path, '/');
	struct stat st;

	if (slash == NULL || slash == path) {
		log_msg(LOG_LVL_ERROR, "socket %s: must be in a directory of its own", path);
		return -EINVAL;
	}
	snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
	if (mkdir(dir, SERVER_DIR_MODE) != 0 && errno != EEXIST) {
		int e = errno;

		log_msg(LOG_LVL_ERROR, "cannot create %s: %s", dir, strerror(e));
		return -e;
	}
	if (lstat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
		log_msg(LOG_LVL_ERROR, "%s is not a directory", dir);
		return -ENOTDIR;
	}
	if (st.st_uid != geteuid()) {
		if (st.st_mode & 0002) {
			log_msg(LOG_LVL_ERROR, "%s is writable by others: the socket needs a directory of its own",
				dir);
			return -EPERM;
		}
		return 0;
	}
	if (cfg->socket_gid != (gid_t)-1 && chown(dir, (uid_t)-1, cfg->socket_gid) != 0) {
		int e = errno;

		log_msg(LOG_LVL_ERROR, "cannot give %s to group %lu: %s", dir,
			(unsigned long)cfg->socket_gid, strerror(e));
		return -e;
	}
	if (chmod(dir, SERVER_DIR_MODE) != 0) {
		int e = errno;

		log_msg(LOG_LVL_ERROR, "cannot chmod %s: %s", dir, strerror(e));
		return -e;
	}
	return 0;
}

/* A socket file left by a daemon that died: remove it; one that answers: refuse. */
static int clear_stale(const char *path)
{
	struct sockaddr_un sa;
	struct stat st;
	int fd, rc;

	if (lstat(path, &st) != 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode)) {
		log_msg(LOG_LVL_ERROR, "%s exists and is not a socket", path);
		return -EEXIST;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	close(fd);
	if (rc == 0) {
		log_msg(LOG_LVL_ERROR, "%s: another daemon is listening there", path);
		return -EADDRINUSE;
	}
	if (unlink(path) != 0 && errno != ENOENT)
		return -errno;
	return 0;
}

static void init_handles(server *s)
{
	uv_loop_t *loop = s->host.loop;

	uv_pipe_init(loop, &s->listener, 0);
	uv_timer_init(loop, &s->sweep);
	uv_idle_init(loop, &s->resume);
	s->listener.data = s->sweep.data = s->resume.data = s;
	s->handles = 3;
}

static void close_handles(server *s)
{
	s->closing = true;
	uv_close((uv_handle_t *)&s->listener, on_handle_closed);
	uv_close((uv_handle_t *)&s->sweep, on_handle_closed);
	uv_close((uv_handle_t *)&s->resume, on_handle_closed);
}

/* Listen on the socket systemd holds: its path, owner and mode are systemd's. */
static int start_inherited(server *s, int fd, server **out)
{
	int rc;

	init_handles(s);
	s->inherited = true;
	rc = uv_pipe_open(&s->listener, fd);
	if (rc == 0)
		rc = uv_listen((uv_stream_t *)&s->listener, SERVER_BACKLOG, on_connection);
	if (rc != 0) {
		log_msg(LOG_LVL_ERROR, "cannot listen on the socket passed by systemd: %s", uv_strerror(rc));
		close_handles(s);
		return rc;
	}
	log_msg(LOG_LVL_INFO, "listening on the socket passed by systemd (fd %d); [bridge] socket is not used",
		fd);
	s->listening = true;
	uv_timer_start(&s->sweep, on_sweep, sweep_period(s->host.cfg), sweep_period(s->host.cfg));
	*out = s;
	return 0;
}

/* systemd socket activation: the listening socket handed over as fd 3
 * (LISTEN_PID is us, LISTEN_FDS >= 1); -1 when there is none. */
static int inherited_listener(void)
{
	const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
	struct sockaddr_un sa;
	socklen_t len = sizeof(sa);
	int type = 0, listening = 0;
	socklen_t tl = sizeof(type), ll = sizeof(listening);
	long n;

	if (pid == NULL || fds == NULL || strtol(pid, NULL, 10) != (long)getpid())
		return -1;
	n = strtol(fds, NULL, 10);
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	if (n < 1)
		return -1;
	if (n > 1)
		log_msg(LOG_LVL_WARNING, "LISTEN_FDS=%ld: using the first socket only", n);
	if (getsockopt(SERVER_LISTEN_FD, SOL_SOCKET, SO_TYPE, &type, &tl) != 0 ||
	    getsockopt(SERVER_LISTEN_FD, SOL_SOCKET, SO_ACCEPTCONN, &listening, &ll) != 0 ||
	    getsockname(SERVER_LISTEN_FD, (struct sockaddr *)&sa, &len) != 0 ||
	    sa.sun_family != AF_UNIX || type != SOCK_STREAM || !listening) {
		log_msg(LOG_LVL_ERROR, "fd %d passed by systemd is not a listening Unix stream socket",
			SERVER_LISTEN_FD);
		return -2;
	}
	(void)fcntl(SERVER_LISTEN_FD, F_SETFD, FD_CLOEXEC);
	return SERVER_LISTEN_FD;
}

int server_start(uv_loop_t *loop, const config *cfg, const conn_ops *ops, void *ops_data,
		 server **out)
{
	server *s;
	mode_t old;
	int rc, fd;

	*out = NULL;
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return -ENOMEM;
	s->host.loop = loop;
	s->host.cfg = cfg;
	s->host.ops = ops;
	s->host.ops_data = ops_data;
	s->host.wake = wake;
	s->host.closed = conn_freed;
	list_init(&s->host.conns);
	list_init(&s->host.resume);
	s->path = strdup(cfg->socket);
	if (s->path == NULL) {
		free(s);
		return -ENOMEM;
	}
	fd = inherited_listener();
	if (fd == -2) {
		free(s->path);
		free(s);
		return -EBADF;
	}
	if (fd >= 0)
		return start_inherited(s, fd, out);
	rc = prepare_dir(cfg, s->path);
	if (rc == 0)
		rc = clear_stale(s->path);
	if (rc != 0) {
		free(s->path);
		free(s);
		return rc;
	}
	init_handles(s);
	old = umask(0177); /* the socket is born 0600, then opened to its group */
	rc = uv_pipe_bind(&s->listener, s->path);
	umask(old);
	if (rc == 0 && cfg->socket_gid != (gid_t)-1 && chown(s->path, (uid_t)-1, cfg->socket_gid) != 0)
		rc = -errno;
	if (rc == 0 && chmod(s->path, SERVER_SOCKET_MODE) != 0)
		rc = -errno;
	if (rc == 0)
		rc = uv_listen((uv_stream_t *)&s->listener, SERVER_BACKLOG, on_connection);
	if (rc != 0) {
		log_msg(LOG_LVL_ERROR, "cannot listen on %s: %s", s->path, uv_strerror(rc));
		(void)unlink(s->path);
		close_handles(s);
		return rc;
	}
	s->listening = true;
	uv_timer_start(&s->sweep, on_sweep, sweep_period(cfg), sweep_period(cfg));
	log_msg(LOG_LVL_INFO, "listening on %s", s->path);
	*out = s;
	return 0;
}

void server_stop_accepting(server *s)
{
	if (!s->listening)
		return;
	s->listening = false;
	if (!s->inherited) /* systemd's socket stays, for the next start */
		(void)unlink(s->path);
	uv_close((uv_handle_t *)&s->listener, on_handle_closed);
}

static void update_all(server *s)
{
	struct list_node *n, *next;

	for (n = s->host.conns.next; n != &s->host.conns; n = next) {
		next = n->next;
		conn_update(conn_of_node(n));
	}
}

void server_reconfigure(server *s, const config *cfg)
{
	uint64_t p = sweep_period(cfg);

	s->host.cfg = cfg;
	uv_timer_start(&s->sweep, on_sweep, p, p);
	update_all(s);
}

void server_drain(server *s)
{
	s->host.draining = true;
	update_all(s);
}

void server_close(server *s)
{
	if (s == NULL || s->closing)
		return;
	server_stop_accepting(s);
	while (!list_empty(&s->host.conns))
		conn_close(conn_of_node(s->host.conns.next), "shutdown");
	s->closing = true;
	uv_timer_stop(&s->sweep);
	uv_idle_stop(&s->resume);
	uv_close((uv_handle_t *)&s->sweep, on_handle_closed);
	uv_close((uv_handle_t *)&s->resume, on_handle_closed);
}

unsigned server_connections(const server *s)
{
	return s != NULL ? s->host.nconns : 0;
}

void server_counts(const server *s, uint64_t *accepted, uint64_t *refused)
{
	*accepted = s != NULL ? s->host.accepted : 0;
	*refused = s != NULL ? s->refused : 0;
}
