/* Key files: whether an open file may hold a secret, as ssh judges a private
 * key. Used by secrets.c (client secret, private key) and sealed.c (the state
 * key) alike. No state, no secret memory. */
#ifndef DOKU_BASE_KEYFILE_H
#define DOKU_BASE_KEYFILE_H

#include <sys/stat.h>

#define KEYFILE_ERR_MAX 256 /* size of an error text buffer */

/* Whether the open file fd (named path) may hold a secret: a regular file, no
 * permission for group or others, owned by the daemon's user or root.
 * 0 with its status in *st, or a negative errno with the reason (naming path)
 * in err. */
int keyfile_check(int fd, const char *path, struct stat *st, char err[KEYFILE_ERR_MAX]);

#endif
