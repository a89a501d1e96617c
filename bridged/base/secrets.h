/* Secret bytes: the client secret, the private key's PEM, access and
 * refresh tokens.
 *
 * A secret lives in memory of its own: mmap'd pages excluded from core dumps
 * (MADV_DONTDUMP) and from children (MADV_DONTFORK), locked in RAM (mlock)
 * where RLIMIT_MEMLOCK allows, and wiped with explicit_bzero when freed.
 * Small secrets share pages through size classes; large ones get their own
 * mapping. Single-threaded (the loop's thread). */
#ifndef DOKU_BASE_SECRETS_H
#define DOKU_BASE_SECRETS_H

#include <stdbool.h>
#include <stddef.h>

#define SECRET_MAX (64u * 1024u)       /* largest secret (a PEM key is at most 64 KiB) */
#define SECRET_SECRET_FILE_MAX 4096u   /* largest client-secret file */
#define SECRET_ERR_MAX 256             /* size of an error text buffer */

typedef struct secret {
	size_t len;          /* bytes of data, without the NUL */
	unsigned char *data; /* len bytes + a NUL, in protected memory */
} secret;

/* Make the process undumpable (PR_SET_DUMPABLE 0) and without core files
 * (RLIMIT_CORE 0), and make jansson wipe every block it frees (DOKU's answers,
 * tokens included, are parsed in its heap). 0 or a negative errno. Call first
 * thing in main, before any JSON is parsed. */
int secrets_harden(void);

/* A secret holding a copy of p[0..len) (NUL-terminated). *out is the
 * caller's: free with secret_free. 0, -EINVAL (len > SECRET_MAX) or -ENOMEM. */
int secret_new(const void *p, size_t len, secret **out);

/* Wipe and release s; NULL is a no-op. */
void secret_free(secret *s);

/* Read the secret file path (at most max bytes) into a new secret, refusing
 * what ssh refuses for a private key: not a regular file, any permission for
 * group or others, an owner other than the daemon's user or root. With
 * strip_newline a single trailing "\n" or "\r\n" is dropped. On error err
 * holds the reason (no secret byte in it). 0 or a negative errno. */
int secret_read_file(const char *path, size_t max, bool strip_newline, secret **out,
		     char err[SECRET_ERR_MAX]);

/* Whether secrets are locked in RAM (false when mlock was refused). */
bool secrets_locked(void);

#endif
