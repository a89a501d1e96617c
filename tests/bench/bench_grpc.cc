// bench_grpc: Health calls per second with 64 in flight on one connection,
// side by side in one run (issue 14):
//
//   - doku-bridged's native protocol (the anchor: frames on one connection),
//   - doku-bridged's gRPC path, with the stock gRPC C++ client (one channel),
//   - a stock gRPC C++ callback server serving the same services on the same
//     kind of socket (a Unix socket), with the same client,
//
// for doku.wallet.v1.Wallet/Health and grpc.health.v1.Health/Check. CPU per
// call for every process: this one (getrusage, every thread: the client)
// and the server's (/proc/PID/stat before and after, every thread). Rounds
// alternate the servers so that the machine's noise hits all alike; the
// table gives each row's median across rounds.
//
//   bench_grpc [--seconds S] [--rounds N] [--inflight K] [--markdown FILE] [--smoke]
//              [--goals] [--only ROW]   (ROW 0-4: one row alone, e.g. under perf)
//   bench_grpc --serve SOCKET      (the stock server; what bench_grpc starts)
//
// Run inside tests/tools/harness.py (DOKU_BRIDGE_SOCKET, DOKU_BRIDGED_PID):
// tests/bench/grpc.sh does, and ctest's bench_grpc_smoke. Bounded: each row
// runs S seconds (the first tenth a warm-up), every wait is bounded; the
// stock server is waited for on its ready line, never on a delay.
// Exit status: 0; 1 when a call failed; with --goals, 3 when a goal is missed.
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "doku/bridge/v1/bridge.pb.h"
#include "doku/wallet/v1/wallet.grpc.pb.h"
#include "grpc/health/v1/health.grpc.pb.h"

namespace {

using Clock = std::chrono::steady_clock;
namespace wallet = doku::wallet::v1;
namespace health = grpc::health::v1;

constexpr const char *kWalletHealth = "/doku.wallet.v1.Wallet/Health";
constexpr int kReadyTimeoutMs = 30000;

struct Options {
	double seconds = 3.0;
	unsigned rounds = 3;
	unsigned inflight = 64;
	std::string markdown;
	bool smoke = false;
	bool goals = false;
	int only = -1; // one row alone (0-4, the table's order), e.g. for perf
};

// ---- CPU time -----------------------------------------------------------------------------

uint64_t self_cpu_us()
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (uint64_t)ru.ru_utime.tv_sec * 1000000u + (uint64_t)ru.ru_utime.tv_usec +
	       (uint64_t)ru.ru_stime.tv_sec * 1000000u + (uint64_t)ru.ru_stime.tv_usec;
}

// utime + stime of pid, every thread, in us (/proc/PID/stat, fields 14 and 15).
uint64_t proc_cpu_us(pid_t pid)
{
	std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
	std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
	size_t p = s.rfind(')');
	unsigned long long ut = 0, st = 0;

	if (p == std::string::npos ||
	    std::sscanf(s.c_str() + p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
			&ut, &st) != 2)
		return 0;
	return (ut + st) * 1000000ull / (uint64_t)sysconf(_SC_CLK_TCK);
}

struct Result {
	uint64_t calls = 0, failed = 0;
	double rate = 0, client_us = 0, server_us = 0;
};

// A measured window: the calls after the warm-up, and the CPU they took.
struct Window {
	pid_t server;
	Clock::time_point t0, warm_end, end;
	uint64_t calls0 = 0, self0 = 0, server0 = 0;
	bool warm = false;

	Window(pid_t pid, double seconds) : server(pid)
	{
		t0 = Clock::now();
		warm_end = t0 + std::chrono::duration_cast<Clock::duration>(
					std::chrono::duration<double>(seconds / 10));
		end = t0 + std::chrono::duration_cast<Clock::duration>(
				   std::chrono::duration<double>(seconds));
	}
	// Called with the calls answered so far; false once the window is over.
	bool tick(uint64_t calls)
	{
		Clock::time_point now = Clock::now();

		if (!warm && now >= warm_end) {
			warm = true;
			t0 = now;
			calls0 = calls;
			self0 = self_cpu_us();
			server0 = proc_cpu_us(server);
		}
		return now < end;
	}
	Result finish(uint64_t calls, uint64_t failed)
	{
		Result r;
		double secs = std::chrono::duration<double>(Clock::now() - t0).count();
		uint64_t n = calls - calls0;

		r.calls = n;
		r.failed = failed;
		r.rate = secs > 0 ? (double)n / secs : 0;
		if (n > 0) {
			r.client_us = (double)(self_cpu_us() - self0) / (double)n;
			r.server_us = (double)(proc_cpu_us(server) - server0) / (double)n;
		}
		return r;
	}
};

// ---- the stock gRPC C++ callback server ----------------------------------------------------

class StockHealth final : public health::Health::CallbackService {
	grpc::ServerUnaryReactor *Check(grpc::CallbackServerContext *ctx,
					const health::HealthCheckRequest *req,
					health::HealthCheckResponse *resp) override
	{
		grpc::ServerUnaryReactor *r = ctx->DefaultReactor();

		if (!req->service().empty() && req->service() != "doku.wallet.v1.Wallet") {
			r->Finish(grpc::Status(grpc::StatusCode::NOT_FOUND, "unknown service"));
			return r;
		}
		resp->set_status(health::HealthCheckResponse::SERVING);
		r->Finish(grpc::Status::OK);
		return r;
	}
};

// Wallet/Health as the daemon answers it: its figures, one profile.
class StockWallet final : public wallet::Wallet::CallbackService {
public:
	std::atomic<uint64_t> served{0};
	Clock::time_point started = Clock::now();

	grpc::ServerUnaryReactor *Health(grpc::CallbackServerContext *ctx,
					 const wallet::HealthRequest *, wallet::HealthResponse *resp) override
	{
		grpc::ServerUnaryReactor *r = ctx->DefaultReactor();
		wallet::ProfileHealth *p = resp->add_profiles();

		resp->set_version("0.1.0");
		resp->set_uptime_seconds((uint64_t)std::chrono::duration_cast<std::chrono::seconds>(
						 Clock::now() - started).count());
		p->set_name("default");
		resp->set_calls_served(served.fetch_add(1) + 1);
		resp->set_connections(1);
		resp->set_calls_in_flight(0);
		r->Finish(grpc::Status::OK);
		return r;
	}
};

int serve(const char *socket_path)
{
	StockHealth h;
	StockWallet w;
	grpc::ServerBuilder b;
	sigset_t set;
	int sig;

	unlink(socket_path);
	b.AddListeningPort(std::string("unix:") + socket_path, grpc::InsecureServerCredentials());
	b.RegisterService(&h);
	b.RegisterService(&w);
	std::unique_ptr<grpc::Server> server = b.BuildAndStart();
	if (!server) {
		std::fprintf(stderr, "bench_grpc --serve: cannot listen on %s\n", socket_path);
		return 1;
	}
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigprocmask(SIG_BLOCK, &set, nullptr);
	std::printf("ready\n");
	std::fflush(stdout);
	sigwait(&set, &sig);
	server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
	return 0;
}

struct Child {
	pid_t pid = -1;
	std::string socket;
};

// Start the stock server and wait for its ready line (bounded).
Child start_stock(const char *self, const std::string &dir)
{
	Child c;
	int fds[2];
	char line[16] = {0};
	struct pollfd pfd;

	c.socket = dir + "/stock.sock";
	if (pipe(fds) != 0)
		std::exit(1);
	c.pid = fork();
	if (c.pid == 0) {
		dup2(fds[1], 1);
		close(fds[0]);
		close(fds[1]);
		execl(self, self, "--serve", c.socket.c_str(), (char *)nullptr);
		_exit(127);
	}
	close(fds[1]);
	pfd = {fds[0], POLLIN, 0};
	if (poll(&pfd, 1, kReadyTimeoutMs) != 1 || read(fds[0], line, sizeof(line) - 1) <= 0 ||
	    std::strncmp(line, "ready", 5) != 0) {
		std::fprintf(stderr, "bench_grpc: the stock server did not become ready\n");
		kill(c.pid, SIGKILL);
		std::exit(1);
	}
	close(fds[0]);
	return c;
}

void stop_stock(const Child &c)
{
	int st;

	kill(c.pid, SIGTERM);
	waitpid(c.pid, &st, 0);
	unlink(c.socket.c_str());
}

// ---- the stock gRPC C++ client: one channel, K calls in flight ---------------------------------

enum class Rpc { WalletHealth, HealthCheck };

class GrpcDriver {
public:
	GrpcDriver(std::shared_ptr<grpc::Channel> ch, Rpc rpc, unsigned inflight)
		: wallet_(wallet::Wallet::NewStub(ch)), health_(health::Health::NewStub(ch)),
		  rpc_(rpc), slots_(inflight)
	{
	}

	Result run(pid_t server, double seconds)
	{
		Window w(server, seconds);

		running_ = true;
		for (auto &s : slots_)
			start(&s);
		{
			std::unique_lock<std::mutex> lk(mu_);
			while (w.tick(done_.load()))
				cv_.wait_for(lk, std::chrono::milliseconds(5));
			running_ = false;
			// every call in flight ends within its deadline
			cv_.wait_for(lk, std::chrono::seconds(30), [this] { return active_ == 0; });
		}
		return w.finish(done_.load(), failed_.load());
	}

private:
	struct Slot {
		std::unique_ptr<grpc::ClientContext> ctx;
		wallet::HealthRequest wreq;
		wallet::HealthResponse wresp;
		health::HealthCheckRequest hreq;
		health::HealthCheckResponse hresp;
	};

	void start(Slot *s)
	{
		{
			std::lock_guard<std::mutex> lk(mu_);
			active_++;
		}
		s->ctx = std::make_unique<grpc::ClientContext>();
		s->ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
		auto done = [this, s](grpc::Status st) { finished(s, st); };
		if (rpc_ == Rpc::WalletHealth)
			wallet_->async()->Health(s->ctx.get(), &s->wreq, &s->wresp, done);
		else
			health_->async()->Check(s->ctx.get(), &s->hreq, &s->hresp, done);
	}

	void finished(Slot *s, const grpc::Status &st)
	{
		if (st.ok())
			done_++;
		else if (failed_++ == 0)
			std::fprintf(stderr, "bench_grpc: a call failed: %d %s\n", (int)st.error_code(),
				     st.error_message().c_str());
		if (running_) {
			{
				std::lock_guard<std::mutex> lk(mu_);
				active_--;
			}
			start(s);
			return;
		}
		std::lock_guard<std::mutex> lk(mu_);
		active_--;
		cv_.notify_all();
	}

	std::unique_ptr<wallet::Wallet::Stub> wallet_;
	std::unique_ptr<health::Health::Stub> health_;
	Rpc rpc_;
	std::vector<Slot> slots_;
	std::atomic<bool> running_{false};
	std::atomic<uint64_t> done_{0}, failed_{0};
	std::mutex mu_;
	std::condition_variable cv_;
	unsigned active_ = 0;
};

Result grpc_run(const std::string &socket, pid_t server, Rpc rpc, const Options &o)
{
	grpc::ChannelArguments args;

	// one channel, its own connection (no sharing of subchannels between rows)
	args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
	std::shared_ptr<grpc::Channel> ch = grpc::CreateCustomChannel(
		"unix:" + socket, grpc::InsecureChannelCredentials(), args);
	if (!ch->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(10))) {
		std::fprintf(stderr, "bench_grpc: cannot connect to %s\n", socket.c_str());
		std::exit(1);
	}
	GrpcDriver d(ch, rpc, o.inflight);
	return d.run(server, o.seconds);
}

// ---- the native protocol: Call frames on one connection, K in flight --------------------------

bool write_all(int fd, const std::string &b)
{
	size_t off = 0;

	while (off < b.size()) {
		ssize_t k = write(fd, b.data() + off, b.size() - off);

		if (k <= 0)
			return false;
		off += (size_t)k;
	}
	return true;
}

std::string frame(uint64_t id)
{
	doku::bridge::v1::Call c;
	std::string body, out(5, '\0');

	c.set_id(id);
	c.set_method(kWalletHealth);
	c.SerializeToString(&body);
	out[1] = (char)(body.size() >> 24);
	out[2] = (char)(body.size() >> 16);
	out[3] = (char)(body.size() >> 8);
	out[4] = (char)body.size();
	return out + body;
}

Result native_run(const std::string &socket, pid_t server, const Options &o)
{
	int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un sa;
	std::vector<char> in(1 << 20);
	size_t have = 0;
	uint64_t next = 1, done = 0, failed = 0, outstanding = 0;
	std::string out;

	std::memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	std::snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", socket.c_str());
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		std::fprintf(stderr, "bench_grpc: cannot connect to %s\n", socket.c_str());
		std::exit(1);
	}
	Window w(server, o.seconds);
	for (unsigned i = 0; i < o.inflight; i++, outstanding++)
		out += frame(next++);
	bool more = true;
	while (outstanding > 0) {
		if (!out.empty() && !write_all(fd, out))
			break;
		out.clear();
		ssize_t k = read(fd, in.data() + have, in.size() - have);
		if (k <= 0)
			break;
		have += (size_t)k;
		size_t off = 0;
		while (have - off >= 5) {
			const uint8_t *p = (const uint8_t *)in.data() + off;
			uint32_t len = (uint32_t)p[1] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 8 | p[4];

			if (have - off < 5 + (size_t)len)
				break;
			doku::bridge::v1::Reply r;
			if (!r.ParseFromArray(p + 5, (int)len) || r.code() != doku::bridge::v1::OK) {
				if (failed++ == 0)
					std::fprintf(stderr, "bench_grpc: a native call failed: %s\n",
						     r.status_message().c_str());
			} else {
				done++;
			}
			outstanding--;
			off += 5 + len;
			if (more) {
				out += frame(next++);
				outstanding++;
			}
		}
		std::memmove(in.data(), in.data() + off, have - off);
		have -= off;
		if (more && !w.tick(done))
			more = false;
	}
	close(fd);
	return w.finish(done, failed);
}

// ---- the run --------------------------------------------------------------------------------

struct Row {
	const char *what, *server;
	std::vector<Result> rounds;
};

double median(std::vector<double> v)
{
	std::sort(v.begin(), v.end());
	return v.empty() ? 0 : v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

double med(const Row &r, double Result::*f)
{
	std::vector<double> v;

	for (const Result &x : r.rounds)
		v.push_back(x.*f);
	return median(v);
}

void usage()
{
	std::fprintf(stderr, "usage: bench_grpc [--seconds S] [--rounds N] [--inflight K] "
			     "[--markdown FILE] [--smoke] [--goals] [--only ROW] | --serve SOCKET\n");
	std::exit(2);
}

} // namespace

int main(int argc, char **argv)
{
	Options o;
	const char *sock = std::getenv("DOKU_BRIDGE_SOCKET");
	const char *pid_s = std::getenv("DOKU_BRIDGED_PID");
	const char *dir = std::getenv("DOKU_TEST_DIR");

	for (int i = 1; i < argc; i++) {
		std::string a = argv[i];
		bool has = i + 1 < argc;

		if (a == "--serve" && has)
			return serve(argv[i + 1]);
		else if (a == "--seconds" && has)
			o.seconds = std::atof(argv[++i]);
		else if (a == "--rounds" && has)
			o.rounds = (unsigned)std::atoi(argv[++i]);
		else if (a == "--inflight" && has)
			o.inflight = (unsigned)std::atoi(argv[++i]);
		else if (a == "--markdown" && has)
			o.markdown = argv[++i];
		else if (a == "--smoke")
			o.smoke = true;
		else if (a == "--goals")
			o.goals = true;
		else if (a == "--only" && has)
			o.only = std::atoi(argv[++i]);
		else
			usage();
	}
	if (o.smoke) {
		o.seconds = 0.5;
		o.rounds = 1;
	}
	if (sock == nullptr || pid_s == nullptr || dir == nullptr || o.seconds <= 0 ||
	    o.rounds == 0 || o.inflight == 0) {
		std::fprintf(stderr, "bench_grpc: run inside tests/tools/harness.py "
				     "(DOKU_BRIDGE_SOCKET, DOKU_BRIDGED_PID, DOKU_TEST_DIR)\n");
		return 2;
	}
	pid_t daemon = (pid_t)std::atol(pid_s);
	Child stock = start_stock(argv[0], dir);

	Row rows[] = {
		{"native Health (frames, 1 connection)", "doku-bridged", {}},
		{"gRPC Wallet/Health (1 channel)", "doku-bridged", {}},
		{"gRPC Wallet/Health (1 channel)", "stock gRPC C++ callback server", {}},
		{"gRPC grpc.health.v1.Health/Check (1 channel)", "doku-bridged", {}},
		{"gRPC grpc.health.v1.Health/Check (1 channel)", "stock gRPC C++ callback server", {}},
	};
	uint64_t failed = 0;

	for (unsigned k = 0; k < o.rounds; k++) {
		Result r[5];
		auto on = [&o](int i) { return o.only < 0 || o.only == i; };

		if (on(0))
			r[0] = native_run(sock, daemon, o);
		if (on(1))
			r[1] = grpc_run(sock, daemon, Rpc::WalletHealth, o);
		if (on(2))
			r[2] = grpc_run(stock.socket, stock.pid, Rpc::WalletHealth, o);
		if (on(3))
			r[3] = grpc_run(sock, daemon, Rpc::HealthCheck, o);
		if (on(4))
			r[4] = grpc_run(stock.socket, stock.pid, Rpc::HealthCheck, o);
		for (int i = 0; i < 5; i++) {
			rows[i].rounds.push_back(r[i]);
			failed += r[i].failed;
			std::fprintf(stderr, "round %u: %s, %s: %.0f calls/s, client %.2f us/call, "
					     "server %.2f us/call\n", k + 1, rows[i].what, rows[i].server,
				     r[i].rate, r[i].client_us, r[i].server_us);
		}
	}
	stop_stock(stock);

	char buf[8192];
	std::string table;
	std::snprintf(buf, sizeof(buf),
		      "%u in flight on one connection, %.1f s a row (a tenth of it warm-up), %u "
		      "round(s), servers alternating; medians across rounds. CPU per call: the "
		      "client (this process, every thread, getrusage) and the server "
		      "(/proc/PID/stat, every thread).\n\n"
		      "| run | server | calls/s | client CPU us/call | server CPU us/call |\n"
		      "|---|---|---:|---:|---:|\n", o.inflight, o.seconds, o.rounds);
	table += buf;
	for (const Row &r : rows) {
		std::snprintf(buf, sizeof(buf), "| %s | %s | %.0f | %.2f | %.2f |\n", r.what, r.server,
			      med(r, &Result::rate), med(r, &Result::client_us), med(r, &Result::server_us));
		table += buf;
	}
	double rate_ratio = med(rows[1], &Result::rate) / std::max(1.0, med(rows[2], &Result::rate));
	double cpu_ratio = med(rows[1], &Result::server_us) /
			   std::max(0.001, med(rows[0], &Result::server_us));
	bool g1 = rate_ratio >= 1.5, g2 = cpu_ratio <= 2.0;
	std::snprintf(buf, sizeof(buf),
		      "\n| goal | target | measured | met |\n|---|---|---|---|\n"
		      "| daemon's gRPC Wallet/Health rate vs the stock server's | >= 1.5x | %.2fx "
		      "(%.0f vs %.0f calls/s) | %s |\n"
		      "| daemon's CPU per gRPC call vs per native call | <= 2x | %.2fx (%.2f vs "
		      "%.2f us) | %s |\n",
		      rate_ratio, med(rows[1], &Result::rate), med(rows[2], &Result::rate),
		      g1 ? "yes" : "**no**", cpu_ratio, med(rows[1], &Result::server_us),
		      med(rows[0], &Result::server_us), g2 ? "yes" : "**no**");
	table += buf;
	std::fputs(table.c_str(), stdout);
	if (!o.markdown.empty()) {
		std::ofstream f(o.markdown);
		f << table;
	}
	if (failed > 0)
		return 1;
	return o.goals && !(g1 && g2) ? 3 : 0;
}
