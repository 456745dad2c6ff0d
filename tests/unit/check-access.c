/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * check-access.c - the access checker against the real kernel.
 *
 * Each test builds a small tree in a private directory (as root: the
 * checker takes another user's credentials, which only root can) and asks
 * for verdicts as uid 61001: the rule (read and search on the directory,
 * search on the way down), judging the directory object and not its path
 * (a directory deleted and recreated under the same name is unverifiable),
 * verdicts cached per (credentials, root, directory) and made stale by
 * access_invalidate().  Without root the suite is skipped (exit 77).
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "access.h"

#define UID 61001

static char top[64];
static struct access *acc;
static struct access_cred *cred;

static void rm_tree(void)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", top);
	(void)!system(cmd);
}

static void setup(void)
{
	snprintf(top, sizeof(top), "/tmp/check-access.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(top));
	ck_assert_int_eq(chmod(top, 0755), 0);
	ck_assert_int_eq(access_new(64, &acc), 0);
	ck_assert_int_eq(access_cred_get(acc, UID, UID, NULL, 0, &cred), 0);
}

static void teardown(void)
{
	access_cred_put(acc, cred);
	acc = access_free(acc);
	rm_tree();
}

static void mk(const char *rel, mode_t mode)
{
	char p[256];
	snprintf(p, sizeof(p), "%s/%s", top, rel);
	ck_assert_msg(mkdir(p, mode) == 0, "mkdir %s: %s", p, strerror(errno));
	ck_assert_int_eq(chmod(p, mode), 0);
}

static struct access_root *root_at(const char *rel)
{
	char p[256];
	struct access_root *r;
	snprintf(p, sizeof(p), "%s%s%s", top, rel[0] ? "/" : "", rel);
	int fd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(access_root_new(acc, fd, p, NULL, NULL, &r), 0);
	close(fd);
	return r;
}

/* The kernel's identity of the directory at @rel, as a source would give it. */
struct dirid_buf {
	struct pool_dirid id;
	unsigned char bytes[POOL_HANDLE_MAX];
};

static void dirid_of(const char *rel, bool self, struct dirid_buf *out)
{
	char p[256];
	union {
		struct file_handle fh;
		unsigned char buf[sizeof(struct file_handle) + POOL_HANDLE_MAX];
	} u = { .fh.handle_bytes = POOL_HANDLE_MAX };
	int mnt;
	struct stat st;

	snprintf(p, sizeof(p), "%s/%s", top, rel);
	ck_assert_int_eq(name_to_handle_at(AT_FDCWD, p, &u.fh, &mnt, 0), 0);
	ck_assert_int_eq(stat(p, &st), 0);
	memcpy(out->bytes, u.fh.f_handle, u.fh.handle_bytes);
	out->id = (struct pool_dirid){ .ino = st.st_ino, .type = u.fh.handle_type,
				       .len = (uint8_t)u.fh.handle_bytes, .self = self,
				       .bytes = out->bytes };
}

static int judge(struct access_root *r, const struct dirid_buf *d, const char *rel)
{
	return access_judge(acc, cred, r, &d->id, rel, strlen(rel));
}

START_TEST(test_rule)
{
	struct dirid_buf open_, x711, priv;
	mk("open", 0755);
	mk("x711", 0711);
	mk("priv", 0700);
	struct access_root *r = root_at("");
	dirid_of("open", false, &open_);
	dirid_of("x711", false, &x711);
	dirid_of("priv", false, &priv);
	ck_assert_int_eq(judge(r, &open_, "open"), ACCESS_ALLOWED);
	/* search without read is not listing */
	ck_assert_int_eq(judge(r, &x711, "x711"), ACCESS_DENIED);
	ck_assert_int_eq(judge(r, &priv, "priv"), ACCESS_DENIED);
	access_root_free(r);
}
END_TEST

START_TEST(test_search_on_the_way_down)
{
	struct dirid_buf below;
	mk("mid", 0711);
	mk("mid/below", 0755);
	struct access_root *r = root_at("");
	dirid_of("mid/below", false, &below);
	/* search on mid suffices to reach below, whose own read is there */
	ck_assert_int_eq(judge(r, &below, "mid/below"), ACCESS_ALLOWED);
	char p[256];
	snprintf(p, sizeof(p), "%s/mid", top);
	ck_assert_int_eq(chmod(p, 0700), 0);
	access_invalidate(acc);
	ck_assert_int_eq(judge(r, &below, "mid/below"), ACCESS_DENIED);
	access_root_free(r);
}
END_TEST

START_TEST(test_recreated_directory_is_unverifiable)
{
	struct dirid_buf old, now;
	char p[256];
	mk("t", 0700);
	dirid_of("t", false, &old);
	snprintf(p, sizeof(p), "%s/t", top);
	ck_assert_int_eq(rmdir(p), 0);
	mk("t", 0777); /* another user's directory under the same name */
	dirid_of("t", false, &now);
	struct access_root *r = root_at("");
	ck_assert_int_eq(judge(r, &old, "t"), ACCESS_UNVERIFIABLE);
	ck_assert_int_eq(judge(r, &now, "t"), ACCESS_ALLOWED);
	/* and a path that leads nowhere any more */
	ck_assert_int_eq(judge(r, &old, "gone"), ACCESS_UNVERIFIABLE);
	access_root_free(r);
}
END_TEST

START_TEST(test_self_events_judge_the_parent)
{
	struct dirid_buf d;
	mk("p", 0700);
	mk("p/d", 0755);
	mk("q", 0755);
	mk("q/d", 0700);
	struct access_root *r = root_at("");
	dirid_of("p/d", true, &d);
	ck_assert_int_eq(judge(r, &d, "p/d"), ACCESS_DENIED); /* its name lives in p */
	dirid_of("q/d", true, &d);
	ck_assert_int_eq(judge(r, &d, "q/d"), ACCESS_ALLOWED); /* q may be listed */
	access_root_free(r);
}
END_TEST

START_TEST(test_cache_is_per_root)
{
	struct dirid_buf y;
	char p[256];
	mk("x", 0711);
	mk("x/y", 0777);
	struct access_root *top_root = root_at("");
	struct access_root *low_root = root_at("x/y");
	snprintf(p, sizeof(p), "%s/x", top);
	ck_assert_int_eq(chmod(p, 0700), 0);
	dirid_of("x/y", false, &y);
	/* the same directory: reachable from the low root, not from the top */
	ck_assert_int_eq(access_judge(acc, cred, low_root, &y.id, "", 0), ACCESS_ALLOWED);
	ck_assert_int_eq(judge(top_root, &y, "x/y"), ACCESS_DENIED);
	ck_assert_int_eq(access_judge(acc, cred, low_root, &y.id, "", 0), ACCESS_ALLOWED);
	access_root_free(top_root);
	access_root_free(low_root);
}
END_TEST

START_TEST(test_cache_and_invalidation)
{
	struct dirid_buf d;
	char p[256];
	mk("c", 0755);
	struct access_root *r = root_at("");
	dirid_of("c", false, &d);
	ck_assert_int_eq(judge(r, &d, "c"), ACCESS_ALLOWED);
	snprintf(p, sizeof(p), "%s/c", top);
	ck_assert_int_eq(chmod(p, 0700), 0);
	/* until the change is reported, the verdict reached stands */
	ck_assert_int_eq(judge(r, &d, "c"), ACCESS_ALLOWED);
	access_invalidate(acc);
	ck_assert_int_eq(judge(r, &d, "c"), ACCESS_DENIED);
	/* a verdict reached while the directory existed answers for it after */
	ck_assert_int_eq(chmod(p, 0755), 0);
	access_invalidate(acc);
	ck_assert_int_eq(judge(r, &d, "c"), ACCESS_ALLOWED);
	ck_assert_int_eq(rmdir(p), 0);
	ck_assert_int_eq(judge(r, &d, "c"), ACCESS_ALLOWED);
	access_invalidate(acc);
	ck_assert_int_eq(judge(r, &d, "c"), ACCESS_UNVERIFIABLE);
	access_root_free(r);
}
END_TEST

START_TEST(test_replaced_root)
{
	struct dirid_buf d;
	char p[256], q[256];
	mk("r", 0755);
	mk("r/d", 0755);
	struct access_root *r = root_at("r");
	dirid_of("r/d", false, &d);
	ck_assert_int_eq(access_judge(acc, cred, r, &d.id, "d", 1), ACCESS_ALLOWED);
	snprintf(p, sizeof(p), "%s/r", top);
	snprintf(q, sizeof(q), "%s/r-old", top);
	ck_assert_int_eq(rename(p, q), 0);
	mk("r", 0777);
	mk("r/d", 0777);
	access_invalidate(acc);
	/* the root's path now leads to another directory: nothing is judged there */
	ck_assert_int_eq(access_judge(acc, cred, r, &d.id, "d", 1), ACCESS_UNVERIFIABLE);
	access_root_free(r);
}
END_TEST

int main(void)
{
	if (geteuid() != 0) {
		fprintf(stderr, "SKIP: taking another user's credentials needs root\n");
		return 77;
	}
	Suite *s = suite_create("access");
	TCase *tc = tcase_create("kernel");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_rule);
	tcase_add_test(tc, test_search_on_the_way_down);
	tcase_add_test(tc, test_recreated_directory_is_unverifiable);
	tcase_add_test(tc, test_self_events_judge_the_parent);
	tcase_add_test(tc, test_cache_is_per_root);
	tcase_add_test(tc, test_cache_and_invalidation);
	tcase_add_test(tc, test_replaced_root);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
