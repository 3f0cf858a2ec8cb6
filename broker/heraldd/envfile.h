/*
 * envfile.h — the env files heraldd writes for scripts and clients
 * (dev.env, tenant-NAME.env): mode 0600 (they hold tenant secrets), written
 * to a temporary file, fsync'd and renamed, so a reader never sees half a
 * file.
 */
#ifndef HERALD_HERALDD_ENVFILE_H
#define HERALD_HERALDD_ENVFILE_H

/* Writes text as DIR/NAME atomically. 0, HERALD_EINVAL (path too long),
 * HERALD_EIO (nothing left behind but an existing DIR/NAME). */
int envfile_write(const char *dir, const char *name, const char *text);

#endif
