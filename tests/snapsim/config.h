/* Merchants known to doku-snapsim and its configuration file.
 *
 * A partner is a client id, its client secret (HMAC key) and its RSA public
 * key (token signatures). The command line gives one; a config file (INI)
 * may add more and set the world's settings:
 *
 *   [settings]
 *   b2b_token_ttl = 900
 *   customer_token_ttl = 900
 *   refresh_token_ttl = 1296000
 *   otp_ttl = 300
 *   clock_skew = 900
 *   auto_approve_bindings = false
 *   auto_approve_purchases = false
 *
 *   [partner.second]
 *   client_id = BRN-0002-0000000000002
 *   client_secret_file = /path/to/secret
 *   partner_public_key = /path/to/public.pem
 *
 * Secret files hold the secret's bytes; one trailing newline is dropped. The
 * config owns its partners' secrets and keys and wipes them when freed. */
#ifndef DOKU_SNAPSIM_CONFIG_H
#define DOKU_SNAPSIM_CONFIG_H

#include <pthread.h>
#include <stddef.h>

#include "sim.h"
#include "snap_sign.h"

#define SIM_CONFIG_ERR_MAX 256

typedef struct sim_partner {
	int index;                              /* position in the config, 0.. */
	char client_id[SIM_CLIENT_ID_MAX + 1];
	unsigned char secret[SIM_SECRET_MAX];
	size_t secret_len;
	snap_rsa *key;                          /* verifies token signatures */
	pthread_mutex_t key_lock;               /* a snap_rsa serves one thread at a time */
} sim_partner;

typedef struct sim_config {
	sim_partner partners[SIM_PARTNERS_MAX];
	size_t partner_count;
	sim_settings settings;
} sim_config;

/* An empty config with default settings. */
void sim_config_init(sim_config *c);

/* Add a partner from its files. 0, or SIM_ERR_INVALID / SIM_ERR_IO /
 * SIM_ERR_FULL / SIM_ERR_EXISTS with err[errlen] saying why. */
int sim_config_add_partner(sim_config *c, const char *client_id, const char *secret_file,
			   const char *key_file, char *err, size_t errlen);

/* Read an INI config file (see above). 0 or a negative code with err set. */
int sim_config_load_file(sim_config *c, const char *path, char *err, size_t errlen);

/* Check a settings struct; 0 or SIM_ERR_INVALID with err naming the setting. */
int sim_settings_check(const sim_settings *s, char *err, size_t errlen);

/* The partner whose client id is id[0..len), or NULL. */
sim_partner *sim_config_partner(sim_config *c, const char *id, size_t len);

/* 0 if sig_b64 is the partner's token signature over client_id "|" timestamp,
 * else a negative SNAP_ERR_* code. Thread-safe. */
int sim_partner_verify_token(sim_partner *p, const char *timestamp, const char *sig_b64,
			     size_t sig_len);

/* Wipe the secrets, free the keys. */
void sim_config_free(sim_config *c);

#endif
