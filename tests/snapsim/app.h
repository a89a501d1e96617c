/* What the HTTPS and control handlers of doku-snapsim share. main.c owns
 * every part and outlives both listeners. */
#ifndef DOKU_SNAPSIM_APP_H
#define DOKU_SNAPSIM_APP_H

#include "config.h"
#include "faults.h"
#include "simlog.h"
#include "world.h"

typedef struct sim_app {
	sim_config *config;
	world *world;
	sim_faults *faults;
	sim_log *log;
	char https_addr[SIM_ADDR_MAX];   /* bound address, "127.0.0.1:PORT" */
	char control_addr[SIM_ADDR_MAX];
} sim_app;

#endif
