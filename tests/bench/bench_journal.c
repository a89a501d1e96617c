/* bench_journal: journal writes per second (intent, then outcome, each
 * committed with synchronous=FULL before its callback runs).
 *
 *   bench_journal [--dir PARENT] [--count N] [--inflight K]
 *
 * Runs K chains at once, each "intent -> outcome -> next intent", until N
 * operations are journaled, in a fresh state directory under PARENT (default
 * /tmp; put it on the disk the daemon's state_dir will use). Without
 * --inflight it runs K = 1 (every write waits for its own fsync) and K = 64
 * (writers share commits). Prints one line per run. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <dirent.h>
#include <fcntl.h>
#include <uv.h>

#include "store.h"

#define SHA "9ae74bb7fb2c43ac20b00996322a7cea1741c0492a7559bdefbd17547f0e3936"
#define INFLIGHT_MAX 1024
#define DIR_MAX 512

struct bench;

struct chain {
	struct bench *b;
	int64_t id;
};

struct bench {
	uv_loop_t *loop;
	store *st;
	int next, total, done, failed;
	struct chain chains[INFLIGHT_MAX];
};

static void start(struct chain *c);

static void on_outcome(const store_result *res, void *data)
{
	struct chain *c = data;

	c->b->done++;
	if (res->status != 0)
		c->b->failed++;
	start(c);
}

static void on_intent(const store_result *res, void *data)
{
	static const char response[] = "\x0a\x07" "2005400\x12\x0aSuccessful";
	struct chain *c = data;
	store_outcome o = { .state = STORE_DONE, .http_status = 200,
			    .response_code = "2005400", .response_message = "Successful",
			    .response = response, .response_len = sizeof(response) - 1 };

	if (res->status != 0 ||
	    store_journal_outcome(c->b->st, res->id, &o, on_outcome, c) != 0) {
		c->b->failed++;
		c->b->done++;
		start(c);
	}
}

static void start(struct chain *c)
{
	struct bench *b = c->b;
	store_intent in = { .method = "Purchase", .profile = "default", .customer_ref = "bench",
			    .amount_value = "10000.00", .amount_currency = "IDR",
			    .body_sha256 = SHA, .request_time = "2024-01-01T10:00:00+07:00" };
	char ref[32], ext[32];
	int i;

	if (b->next >= b->total)
		return;
	i = b->next++;
	snprintf(ref, sizeof(ref), "BENCH-%09d", i);
	snprintf(ext, sizeof(ext), "1%09d", i);
	in.partner_reference_no = ref;
	in.external_id = ext;
	if (store_journal_intent(b->st, &in, on_intent, c) != 0) {
		b->failed++;
		b->done++;
	}
}

static void remove_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	while (d != NULL && (e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			unlinkat(dirfd(d), e->d_name, 0);
	if (d != NULL)
		closedir(d);
	rmdir(dir);
}

static void on_closed(void *data)
{
	*(int *)data = 1;
}

static int run(const char *parent, int count, int inflight)
{
	static struct bench b;
	char dir[DIR_MAX], err[STORE_ERR_MAX];
	uv_loop_t loop;
	uint64_t t0, ns;
	int closed = 0, rc;

	if (snprintf(dir, sizeof(dir), "%s/bench-journal-XXXXXX", parent) >= (int)sizeof(dir) ||
	    mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	memset(&b, 0, sizeof(b));
	uv_loop_init(&loop);
	b.loop = &loop;
	b.total = count;
	rc = store_open(&loop, dir, NULL, &b.st, err);
	if (rc != 0) {
		fprintf(stderr, "store_open: %s\n", err);
		remove_dir(dir);
		return 1;
	}
	t0 = uv_hrtime();
	for (int i = 0; i < inflight; i++) {
		b.chains[i].b = &b;
		start(&b.chains[i]);
	}
	while (b.done < b.total)
		uv_run(&loop, UV_RUN_ONCE);
	ns = uv_hrtime() - t0;
	store_close(b.st, on_closed, &closed);
	while (!closed)
		uv_run(&loop, UV_RUN_ONCE);
	uv_loop_close(&loop);
	remove_dir(dir);
	printf("journal, %4d in flight: %d operations (intent + outcome) in %.2f s: "
	       "%.0f operations/s, %.0f durable writes/s%s\n",
	       inflight, count, (double)ns / 1e9, count / ((double)ns / 1e9),
	       2 * count / ((double)ns / 1e9), b.failed != 0 ? " (FAILURES)" : "");
	return b.failed != 0;
}

int main(int argc, char **argv)
{
	const char *parent = "/tmp";
	int count = 0, inflight = 0, rc = 0;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc)
			parent = argv[++i];
		else if (strcmp(argv[i], "--count") == 0 && i + 1 < argc)
			count = atoi(argv[++i]);
		else if (strcmp(argv[i], "--inflight") == 0 && i + 1 < argc)
			inflight = atoi(argv[++i]);
		else {
			fprintf(stderr, "usage: %s [--dir PARENT] [--count N] [--inflight K]\n",
				argv[0]);
			return 2;
		}
	}
	if (inflight < 0 || inflight > INFLIGHT_MAX || count < 0) {
		fprintf(stderr, "--inflight: 1..%d\n", INFLIGHT_MAX);
		return 2;
	}
	if (inflight != 0)
		return run(parent, count != 0 ? count : 2000, inflight);
	rc |= run(parent, count != 0 ? count : 2000, 1);
	rc |= run(parent, count != 0 ? count : 20000, 64);
	return rc;
}
