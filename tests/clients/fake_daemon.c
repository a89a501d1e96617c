/* A scripted stand-in for doku-bridged (see fake_daemon.h). */
#include "fake_daemon.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "snap_frame.h"

#define FAKE_FRAME_MAX (1u << 20)

static int read_full(int fd, uint8_t *p, size_t n)
{
	while (n) {
		ssize_t r = read(fd, p, n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

static int write_full(int fd, const uint8_t *p, size_t n)
{
	while (n) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static Doku__Bridge__V1__Call *read_call(struct fake_daemon *f, int fd)
{
	uint8_t hdr[SNAP_FRAME_HEADER], *buf;
	Doku__Bridge__V1__Call *call;
	uint32_t n;

	if (read_full(fd, hdr, sizeof hdr) < 0)
		return NULL;
	if (snap_frame_header_read(hdr, FAKE_FRAME_MAX, &n) != 0) {
		f->error++;
		return NULL;
	}
	buf = malloc(n ? n : 1);
	if (!buf || read_full(fd, buf, n) < 0) {
		free(buf);
		return NULL;
	}
	call = doku__bridge__v1__call__unpack(NULL, n, buf);
	free(buf);
	if (!call)
		f->error++;
	return call;
}

static int send_reply(int fd, const Doku__Bridge__V1__Reply *r)
{
	size_t n = doku__bridge__v1__reply__get_packed_size(r);
	uint8_t *buf = malloc(SNAP_FRAME_HEADER + n);
	int rc;

	if (!buf)
		return -1;
	snap_frame_header_write(buf, (uint32_t)n);
	doku__bridge__v1__reply__pack(r, buf + SNAP_FRAME_HEADER);
	rc = write_full(fd, buf, SNAP_FRAME_HEADER + n);
	free(buf);
	return rc;
}

/* The answer to a Call: GetBalance gets a balance with SNAP facts; anything
 * else gets its request echoed with code OK. */
static int answer(int fd, const Doku__Bridge__V1__Call *call)
{
	Doku__Bridge__V1__Reply r = DOKU__BRIDGE__V1__REPLY__INIT;
	Doku__Wallet__V1__GetBalanceResponse b = DOKU__WALLET__V1__GET_BALANCE_RESPONSE__INIT;
	Doku__Wallet__V1__AccountInfo info = DOKU__WALLET__V1__ACCOUNT_INFO__INIT;
	Doku__Wallet__V1__Amount amt = DOKU__WALLET__V1__AMOUNT__INIT;
	uint8_t *buf = NULL;
	int rc;

	r.id = call->id;
	r.code = DOKU__BRIDGE__V1__CODE__OK;
	r.outcome = DOKU__BRIDGE__V1__OUTCOME__OUTCOME_DONE;
	if (strcmp(call->method, "/doku.wallet.v1.Wallet/GetBalance") == 0) {
		Doku__Wallet__V1__GetBalanceRequest *q = doku__wallet__v1__get_balance_request__unpack(
			NULL, call->message.len, call->message.data);

		amt.value = "10000.00";
		amt.currency = "IDR";
		info.balance_type = "Cash";
		info.amount = &amt;
		b.response_code = "2001100";
		b.response_message = "Successful";
		b.name = "Budi";
		b.partner_reference_no = q ? q->partner_reference_no : "";
		b.account_info = &info;
		r.http_status = 200;
		r.response_code = "2001100";
		r.response_message = "Successful";
		r.external_id = "41807553358950093184";
		r.partner_reference_no = b.partner_reference_no;
		r.message.len = doku__wallet__v1__get_balance_response__get_packed_size(&b);
		buf = malloc(r.message.len ? r.message.len : 1);
		if (buf)
			doku__wallet__v1__get_balance_response__pack(&b, buf);
		r.message.data = buf;
		rc = send_reply(fd, &r);
		if (q)
			doku__wallet__v1__get_balance_request__free_unpacked(q, NULL);
		free(buf);
		return rc;
	}
	if (!dokubridge_method_lookup(call->method)) {
		r.code = DOKU__BRIDGE__V1__CODE__UNIMPLEMENTED;
		r.status_message = "unknown method";
		r.outcome = DOKU__BRIDGE__V1__OUTCOME__OUTCOME_NOT_DONE;
		return send_reply(fd, &r);
	}
	r.message = call->message;
	return send_reply(fd, &r);
}

static void note(struct fake_daemon *f, const Doku__Bridge__V1__Call *call)
{
	pthread_mutex_lock(&f->lock);
	if (call->cancel) {
		if (f->n_cancels < FAKE_MAX_CALLS)
			f->cancel_ids[f->n_cancels] = call->id;
		f->n_cancels++;
	} else {
		f->n_calls++;
		f->last_timeout_ms = call->timeout_ms;
		snprintf(f->last_method, sizeof f->last_method, "%s", call->method);
		snprintf(f->last_profile, sizeof f->last_profile, "%s", call->profile);
		snprintf(f->last_customer_ref, sizeof f->last_customer_ref, "%s", call->customer_ref);
	}
	pthread_mutex_unlock(&f->lock);
}

static void serve(struct fake_daemon *f, int fd)
{
	Doku__Bridge__V1__Call *held[FAKE_MAX_CALLS];
	size_t n_held = 0;
	Doku__Bridge__V1__Call *call;

	while ((call = read_call(f, fd)) != NULL) {
		note(f, call);
		switch (f->mode) {
		case FAKE_ANSWER:
			if (!call->cancel)
				answer(fd, call);
			break;
		case FAKE_REVERSE:
			if (call->cancel || n_held >= FAKE_MAX_CALLS)
				break;
			held[n_held++] = call;
			call = NULL;
			if (n_held == f->batch) {
				while (n_held) {
					n_held--;
					answer(fd, held[n_held]);
					doku__bridge__v1__call__free_unpacked(held[n_held], NULL);
				}
			}
			break;
		case FAKE_SILENT:
			if (call->cancel) {
				Doku__Bridge__V1__Reply r = DOKU__BRIDGE__V1__REPLY__INIT;

				r.id = call->id;
				r.code = DOKU__BRIDGE__V1__CODE__CANCELLED;
				r.status_message = "cancelled by the client";
				r.outcome = DOKU__BRIDGE__V1__OUTCOME__OUTCOME_NOT_DONE;
				send_reply(fd, &r);
			}
			break;
		case FAKE_BAD_FLAGS: {
			uint8_t bad[SNAP_FRAME_HEADER + 2] = {1, 0, 0, 0, 2, 8, 1};

			bad[0] = 1;
			write_full(fd, bad, sizeof bad);
			break;
		}
		case FAKE_HUGE: {
			uint8_t hdr[SNAP_FRAME_HEADER];

			snap_frame_header_write(hdr, 1u << 30);
			write_full(fd, hdr, sizeof hdr);
			break;
		}
		case FAKE_CLOSE:
			doku__bridge__v1__call__free_unpacked(call, NULL);
			goto out;
		case FAKE_LATE:
			if (call->cancel)
				break;
			if (n_held) {
				answer(fd, held[0]);
				doku__bridge__v1__call__free_unpacked(held[0], NULL);
			}
			held[0] = call;
			n_held = 1;
			call = NULL;
			break;
		}
		if (call)
			doku__bridge__v1__call__free_unpacked(call, NULL);
	}
out:
	while (n_held)
		doku__bridge__v1__call__free_unpacked(held[--n_held], NULL);
}

static void *run(void *arg)
{
	struct fake_daemon *f = arg;
	struct timeval tv = {FAKE_IO_TIMEOUT_S, 0};
	int fd;

	do
		fd = accept(f->lfd, NULL, NULL);
	while (fd < 0 && errno == EINTR);
	if (fd < 0)
		return NULL;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	serve(f, fd);
	close(fd);
	return NULL;
}

int fake_start(struct fake_daemon *f, enum fake_mode mode)
{
	struct sockaddr_un sa;
	struct timeval tv = {FAKE_IO_TIMEOUT_S, 0};
	size_t batch = f->batch;

	memset(f, 0, sizeof *f);
	f->batch = batch;
	f->mode = mode;
	pthread_mutex_init(&f->lock, NULL);
	snprintf(f->dir, sizeof f->dir, "/tmp/dokubridge-test-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->path, sizeof f->path, "%s/bridge.sock", f->dir);
	f->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (f->lfd < 0)
		return -1;
	/* accept() gives up too if no client comes */
	setsockopt(f->lfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s", f->path);
	if (bind(f->lfd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(f->lfd, 8) < 0)
		return -1;
	if (pthread_create(&f->thread, NULL, run, f) != 0)
		return -1;
	return 0;
}

void fake_stop(struct fake_daemon *f)
{
	pthread_join(f->thread, NULL);
	close(f->lfd);
	unlink(f->path);
	rmdir(f->dir);
	pthread_mutex_destroy(&f->lock);
}
