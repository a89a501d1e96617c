/* The control API of doku-snapsim: plain HTTP on a loopback address, JSON
 * in and out, for tests and demos (see docs/snapsim.md for every call). */
#ifndef DOKU_SNAPSIM_CONTROL_H
#define DOKU_SNAPSIM_CONTROL_H

#include <microhttpd.h>

#include "app.h"

/* The MHD access handler of the control listener; cls is the sim_app. */
enum MHD_Result sim_control_access(void *cls, struct MHD_Connection *conn, const char *url,
				   const char *method, const char *version,
				   const char *upload_data, size_t *upload_data_size,
				   void **con_cls);

/* Its MHD_OPTION_NOTIFY_COMPLETED callback: frees the request state. */
void sim_control_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			   enum MHD_RequestTerminationCode toe);

#endif
