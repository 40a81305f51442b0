/*
 * Guest helper for tests/interop/run.sh scenario x: Debian's busybox has no
 * setfattr/getfattr, so this small static program sets and lists extended
 * attributes with values the host can predict.
 *
 *   xattrs set FILE PREFIX COUNT LEN   sets user.PREFIX.0 .. user.PREFIX.<COUNT-1>,
 *                                      each LEN bytes: byte i of attribute k is
 *                                      (i * 31 + k * 7 + LEN) & 0xff
 *   xattrs sum FILE                    prints one line per attribute:
 *                                      "NAME LEN FNV1A32" (in listxattr's order)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>

static int set(const char *file, const char *prefix, long count, long len)
{
	unsigned char *v = malloc(len ? len : 1);
	char name[256];
	if (!v)
		return 1;
	for (long k = 0; k < count; k++) {
		for (long i = 0; i < len; i++)
			v[i] = (unsigned char)((i * 31 + k * 7 + len) & 0xff);
		snprintf(name, sizeof(name), "user.%s.%ld", prefix, k);
		if (setxattr(file, name, v, len, 0)) {
			perror(name);
			return 1;
		}
	}
	free(v);
	return 0;
}

static int sum(const char *file)
{
	static char names[65536];
	static unsigned char v[65536];
	ssize_t n = listxattr(file, names, sizeof(names));
	if (n < 0) {
		perror(file);
		return 1;
	}
	for (char *p = names; p < names + n; p += strlen(p) + 1) {
		ssize_t len = getxattr(file, p, v, sizeof(v));
		unsigned h = 2166136261u;
		if (len < 0) {
			perror(p);
			return 1;
		}
		for (ssize_t i = 0; i < len; i++)
			h = (h ^ v[i]) * 16777619u;
		printf("%s %zd %08x\n", p, len, h);
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 6 && !strcmp(argv[1], "set"))
		return set(argv[2], argv[3], atol(argv[4]), atol(argv[5]));
	if (argc == 3 && !strcmp(argv[1], "sum"))
		return sum(argv[2]);
	fprintf(stderr, "usage: xattrs set FILE PREFIX COUNT LEN | xattrs sum FILE\n");
	return 2;
}
