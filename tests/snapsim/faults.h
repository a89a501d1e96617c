/* Injected faults: per endpoint path (or every path), for the next N requests.
 *
 * A fault is taken when a request has been read completely. Kinds:
 *   delay            hold the answer for delay_ms, then answer normally
 *   http500/503/504  answer that HTTP status with a SNAP error body
 *   inprogress       answer 202 with responseCode 202xx00
 *   drop             close the connection without answering
 *   revoke_b2b       revoke the caller's current B2B token, then process normally
 *   expire_customer  expire the request's customer access token (refresh still works)
 *   revoke_customer  revoke the request's customer session (access and refresh token)
 * For http5xx, inprogress and drop, apply says whether the request is
 * processed first (the operation happened) or not at all (it did not). Any
 * kind may carry a delay_ms before its answer. Thread-safe. */
#ifndef DOKU_SNAPSIM_FAULTS_H
#define DOKU_SNAPSIM_FAULTS_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define SIM_FAULTS_MAX 64      /* faults armed at once */
#define SIM_FAULT_PATH_MAX 96  /* longest path a fault names */

enum sim_fault_kind {
	SIM_FAULT_NONE = 0,
	SIM_FAULT_DELAY,
	SIM_FAULT_HTTP500,
	SIM_FAULT_HTTP503,
	SIM_FAULT_HTTP504,
	SIM_FAULT_INPROGRESS,
	SIM_FAULT_DROP,
	SIM_FAULT_REVOKE_B2B,
	SIM_FAULT_EXPIRE_CUSTOMER,
	SIM_FAULT_REVOKE_CUSTOMER,
	SIM_FAULT_KIND_COUNT
};

typedef struct sim_fault {
	uint32_t id;                          /* assigned when armed, from 1 */
	char path[SIM_FAULT_PATH_MAX + 1];    /* exact path, or "*" for every path */
	enum sim_fault_kind kind;
	long remaining;                       /* requests left; -1: until cleared */
	long delay_ms;                        /* 0..SIM_DELAY_MAX_MS */
	bool apply;                           /* process the request before the fault */
	uint64_t fired;                       /* requests it has hit */
} sim_fault;

typedef struct sim_faults {
	pthread_mutex_t lock;
	sim_fault items[SIM_FAULTS_MAX];
	size_t count;
	uint32_t next_id;
} sim_faults;

int sim_faults_init(sim_faults *f);
void sim_faults_free(sim_faults *f);

/* The kind named name ("http504"), or SIM_FAULT_NONE. */
enum sim_fault_kind sim_fault_kind_by_name(const char *name);
const char *sim_fault_kind_name(enum sim_fault_kind kind);

/* Arm a fault (its id is assigned into *fault). 0, SIM_ERR_INVALID or SIM_ERR_FULL. */
int sim_faults_add(sim_faults *f, sim_fault *fault);

/* Take one hit of the first armed fault matching path into *out (a copy) and
 * return true; false when none matches. A fault whose count runs out is removed. */
bool sim_faults_take(sim_faults *f, const char *path, sim_fault *out);

/* Copy of the armed faults into out[max]; returns how many. */
size_t sim_faults_list(sim_faults *f, sim_fault *out, size_t max);

/* Disarm one fault (0 or SIM_ERR_NOT_FOUND) or all of them. */
int sim_faults_remove(sim_faults *f, uint32_t id);
void sim_faults_clear(sim_faults *f);

#endif
