/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * pathrace - the path-reuse attack on a file-monitoring daemon, as two
 * local users would play it (used by leaks.sh).
 *
 *   pathrace DIR N BOB_UID ALICE_UID [--made]
 *
 * For each round i, "bob" makes DIR/t<i> mode 0700, creates the file
 * DIR/t<i>/secret<i> in it, removes the file and the directory; the moment
 * the directory is gone, "alice" makes a directory of the same name, mode
 * 0777, and keeps it.  A daemon that judges bob's events by walking the path
 * when it gets to them finds alice's directory there and tells alice bob's
 * names.  The two users are two processes switched to those uids, kept in
 * lock step by pipes so that every round really races; the daemon is never
 * waited for.  With --made, bob's directories DIR/t<i> exist already (made
 * and watched beforehand), and the rounds start with the file.  Exits 0 when
 * every round was played.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

static void die(const char *what)
{
	fprintf(stderr, "pathrace: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void become(uid_t uid)
{
	if (setgroups(0, NULL) < 0 || setresgid(uid, uid, uid) < 0 || setresuid(uid, uid, uid) < 0)
		die("cannot switch user");
}

static void send1(int fd)
{
	if (write(fd, "x", 1) != 1)
		die("write");
}

static int recv1(int fd)
{
	char c;
	return read(fd, &c, 1) == 1;
}

int main(int argc, char **argv)
{
	bool made = argc == 6 && strcmp(argv[5], "--made") == 0;
	if (argc != 5 && !made) {
		fprintf(stderr, "usage: pathrace DIR N BOB_UID ALICE_UID [--made]\n");
		return 2;
	}
	const char *dir = argv[1];
	long n = strtol(argv[2], NULL, 10);
	uid_t bob = (uid_t)strtoul(argv[3], NULL, 10), alice = (uid_t)strtoul(argv[4], NULL, 10);
	int to_alice[2], to_bob[2];

	if (n <= 0 || pipe(to_alice) < 0 || pipe(to_bob) < 0)
		die("setup");
	umask(0);
	pid_t a = fork();
	if (a < 0)
		die("fork");
	if (a == 0) {
		become(alice);
		char path[4096];
		for (long i = 0; i < n && recv1(to_alice[0]); i++) {
			snprintf(path, sizeof(path), "%s/t%ld", dir, i);
			/* the moment bob's is gone; it may take a retry or two */
			while (mkdir(path, 0777) < 0)
				if (errno != EEXIST)
					die("alice: mkdir");
			send1(to_bob[1]);
		}
		_exit(0);
	}
	pid_t b = fork();
	if (b < 0)
		die("fork");
	if (b == 0) {
		become(bob);
		char d[4096], f[4200];
		for (long i = 0; i < n; i++) {
			snprintf(d, sizeof(d), "%s/t%ld", dir, i);
			snprintf(f, sizeof(f), "%s/secret%ld", d, i);
			if (!made && mkdir(d, 0700) < 0)
				die("bob: mkdir");
			int fd = open(f, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
			if (fd < 0)
				die("bob: create");
			if (write(fd, "s", 1) != 1)
				die("bob: write");
			close(fd);
			if (unlink(f) < 0 || rmdir(d) < 0)
				die("bob: remove");
			send1(to_alice[1]);
			if (!recv1(to_bob[0]))
				die("bob: alice went away");
		}
		_exit(0);
	}
	close(to_alice[0]);
	close(to_alice[1]);
	close(to_bob[0]);
	close(to_bob[1]);
	int st, ok = 1;
	while (wait(&st) > 0)
		ok &= WIFEXITED(st) && WEXITSTATUS(st) == 0;
	return ok ? 0 : 1;
}
