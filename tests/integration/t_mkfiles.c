/*
 * t_mkfiles.c - creates many empty files in one directory, fast: one
 * open(O_CREAT|O_EXCL) and close per file, no process per file.
 *
 * Usage: t_mkfiles DIR COUNT [PREFIX] makes DIR/PREFIX000000 ... (PREFIX
 * defaults to "f"), prints the rate, and checks that every create and
 * close succeeded; the first few failures are printed with their errno.
 * Ends with check.h's "N passed, N failed". Used by bigdir.sh.
 */
#include "t_common.h"

int main(int argc, char **argv)
{
	if (argc < 3 || argc > 4) {
		fprintf(stderr, "usage: t_mkfiles DIR COUNT [PREFIX]\n");
		return 2;
	}
	const char *dir = argv[1], *prefix = argc == 4 ? argv[3] : "f";
	long count = strtol(argv[2], NULL, 10);
	if (chdir(dir) != 0) {
		fprintf(stderr, "chdir %s: %s\n", dir, strerror(errno));
		return 2;
	}
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	long bad = 0;
	char name[300];
	for (long i = 0; i < count; i++) {
		snprintf(name, sizeof(name), "%s%06ld", prefix, i);
		int fd = open(name, O_CREAT | O_EXCL | O_WRONLY, 0644);
		if (fd < 0 || close(fd) != 0) {
			if (bad++ < 5)
				fprintf(stderr, "create %s/%s: %s\n", dir, name, strerror(errno));
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	printf("created %ld files in %.1f s (%.0f files/s)\n", count - bad, s,
	       s > 0 ? (double)(count - bad) / s : 0.0);
	CHECK_EQ(bad, 0);
	return test_done();
}
