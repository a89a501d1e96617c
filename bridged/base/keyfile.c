/* Key files: see keyfile.h. */
#include "keyfile.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int keyfile_check(int fd, const char *path, struct stat *st, char err[KEYFILE_ERR_MAX])
{
	int rc;

	if (fstat(fd, st) != 0) {
		rc = -errno;
		snprintf(err, KEYFILE_ERR_MAX, "cannot stat %s: %s", path, strerror(errno));
		return rc;
	}
	if (!S_ISREG(st->st_mode)) {
		snprintf(err, KEYFILE_ERR_MAX, "%s is not a regular file", path);
		return -EINVAL;
	}
	if ((st->st_mode & 077) != 0) {
		snprintf(err, KEYFILE_ERR_MAX,
			 "permissions 0%03o for %s are too open: it must not be accessible by "
			 "group or others (chmod 600)",
			 (unsigned)(st->st_mode & 0777), path);
		return -EPERM;
	}
	if (st->st_uid != geteuid() && st->st_uid != 0) {
		snprintf(err, KEYFILE_ERR_MAX, "%s is owned by uid %lu, not by the daemon's user or root",
			 path, (unsigned long)st->st_uid);
		return -EPERM;
	}
	return 0;
}
