/* Injected faults. */
#include "faults.h"
#include "sim.h"

#include <string.h>

static const char *const kind_names[SIM_FAULT_KIND_COUNT] = {
	[SIM_FAULT_NONE] = "none",
	[SIM_FAULT_DELAY] = "delay",
	[SIM_FAULT_HTTP500] = "http500",
	[SIM_FAULT_HTTP503] = "http503",
	[SIM_FAULT_HTTP504] = "http504",
	[SIM_FAULT_INPROGRESS] = "inprogress",
	[SIM_FAULT_DROP] = "drop",
	[SIM_FAULT_REVOKE_B2B] = "revoke_b2b",
	[SIM_FAULT_EXPIRE_CUSTOMER] = "expire_customer",
	[SIM_FAULT_REVOKE_CUSTOMER] = "revoke_customer",
};

int sim_faults_init(sim_faults *f)
{
	memset(f, 0, sizeof(*f));
	f->next_id = 1;
	if (pthread_mutex_init(&f->lock, NULL) != 0)
		return SIM_ERR_NOMEM;
	return SIM_OK;
}

void sim_faults_free(sim_faults *f)
{
	pthread_mutex_destroy(&f->lock);
}

enum sim_fault_kind sim_fault_kind_by_name(const char *name)
{
	for (int k = SIM_FAULT_NONE + 1; k < SIM_FAULT_KIND_COUNT; k++)
		if (name != NULL && strcmp(kind_names[k], name) == 0)
			return (enum sim_fault_kind)k;
	return SIM_FAULT_NONE;
}

const char *sim_fault_kind_name(enum sim_fault_kind kind)
{
	if ((int)kind < 0 || kind >= SIM_FAULT_KIND_COUNT)
		return "none";
	return kind_names[kind];
}

int sim_faults_add(sim_faults *f, sim_fault *fault)
{
	int rc = SIM_OK;

	if (fault->kind <= SIM_FAULT_NONE || fault->kind >= SIM_FAULT_KIND_COUNT ||
	    fault->path[0] == '\0' || fault->remaining == 0 || fault->remaining < -1 ||
	    fault->delay_ms < 0 || fault->delay_ms > SIM_DELAY_MAX_MS)
		return SIM_ERR_INVALID;
	pthread_mutex_lock(&f->lock);
	if (f->count == SIM_FAULTS_MAX) {
		rc = SIM_ERR_FULL;
	} else {
		fault->id = f->next_id++;
		fault->fired = 0;
		f->items[f->count++] = *fault;
	}
	pthread_mutex_unlock(&f->lock);
	return rc;
}

static void remove_at(sim_faults *f, size_t i)
{
	memmove(&f->items[i], &f->items[i + 1], (f->count - i - 1) * sizeof(f->items[0]));
	f->count--;
}

bool sim_faults_take(sim_faults *f, const char *path, sim_fault *out)
{
	bool hit = false;

	pthread_mutex_lock(&f->lock);
	for (size_t i = 0; i < f->count; i++) {
		sim_fault *it = &f->items[i];

		if (strcmp(it->path, "*") != 0 && strcmp(it->path, path) != 0)
			continue;
		it->fired++;
		*out = *it;
		hit = true;
		if (it->remaining > 0 && --it->remaining == 0)
			remove_at(f, i);
		break;
	}
	pthread_mutex_unlock(&f->lock);
	return hit;
}

size_t sim_faults_list(sim_faults *f, sim_fault *out, size_t max)
{
	size_t n;

	pthread_mutex_lock(&f->lock);
	n = f->count < max ? f->count : max;
	memcpy(out, f->items, n * sizeof(*out));
	pthread_mutex_unlock(&f->lock);
	return n;
}

int sim_faults_remove(sim_faults *f, uint32_t id)
{
	int rc = SIM_ERR_NOT_FOUND;

	pthread_mutex_lock(&f->lock);
	for (size_t i = 0; i < f->count; i++) {
		if (f->items[i].id == id) {
			remove_at(f, i);
			rc = SIM_OK;
			break;
		}
	}
	pthread_mutex_unlock(&f->lock);
	return rc;
}

void sim_faults_clear(sim_faults *f)
{
	pthread_mutex_lock(&f->lock);
	f->count = 0;
	pthread_mutex_unlock(&f->lock);
}
