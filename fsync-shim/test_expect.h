/*
 * test_expect.h - the check macro of fsync-shim's plain-C tests: EXPECT
 * prints "FAIL function:line: message" and counts the failure; a test's
 * main() returns failures != 0.  One copy per test program (static).
 */
#ifndef SYNCHMESS_FSYNC_SHIM_TEST_EXPECT_H
#define SYNCHMESS_FSYNC_SHIM_TEST_EXPECT_H

#include <stdio.h>

static int failures;

#define EXPECT(cond, ...)                                            \
	do {                                                         \
		if (!(cond)) {                                       \
			printf("FAIL %s:%d: ", __func__, __LINE__); \
			printf(__VA_ARGS__);                         \
			printf("\n");                                \
			failures++;                                  \
		}                                                    \
	} while (0)

#endif
