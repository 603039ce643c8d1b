/*
 * main.c - the docvault command: git-style subcommands (init, mount,
 * status, help). Each subcommand loads the configuration, says what is
 * wrong in one line naming the file, key or server, and exits non-zero on
 * failure. `mount` is the FUSE daemon: it mounts, goes to the background
 * once the mount is ready (unless -f), and serves until unmounted or
 * signalled (SIGTERM/SIGINT/SIGHUP), then finishes pending work.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fuse_lowlevel.h>

#include "docvault/config.h"
#include "docvault/log.h"
#include "docvault/meta.h"
#include "docvault/store.h"
#include "docvault/vfs.h"
#include "cmd_extract.h"
#include "cmd_sync.h"
#include "cmds.h"
#include "ops.h"

struct main_cmd {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
	const char *usage;
};

static int main_help(int argc, char **argv);

static int main_load_config(const char *path, struct dv_config *cfg)
{
	return cmd_load_config(NULL, path, cfg);
}

/* Parses the options every subcommand shares: -c FILE, -h. */
static int main_common_opts(int argc, char **argv, const char **config, const char *cmd)
{
	static const struct option longopts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	int opt;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "+c:h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			*config = optarg;
			break;
		case 'h': {
			char *args[] = {"help", (char *)cmd, NULL};

			main_help(2, args);
			exit(0);
		}
		default:
			return -EINVAL;
		}
	}
	return 0;
}

static int main_init(int argc, char **argv)
{
	struct dv_config cfg = {0};
	struct meta *m = NULL;
	struct store *st = NULL;
	const char *config = NULL;
	char err[1024];
	int ret;

	if (main_common_opts(argc, argv, &config, "init") || optind != argc)
		return 2;
	if (main_load_config(config, &cfg))
		goto fail;
	ret = meta_open(cfg.database.conninfo, 1, &m, err, sizeof(err));
	if (!ret)
		ret = meta_init(m, (uint32_t)getuid(), (uint32_t)getgid(), err, sizeof(err));
	if (ret) {
		fprintf(stderr, "docvault init: %s\n", err);
		goto fail;
	}
	ret = store_open(&cfg, &st, err, sizeof(err));
	if (!ret)
		ret = store_probe(st, err, sizeof(err));
	if (ret) {
		fprintf(stderr, "docvault init: %s\n", err);
		goto fail;
	}
	printf("docvault: vault ready (schema version %d, %s store)\n", META_SCHEMA_VERSION,
	       st->ops->name);
	store_close(st);
	meta_close(m);
	config_free(&cfg);
	return 0;
fail:
	store_close(st);
	meta_close(m);
	config_free(&cfg);
	return 1;
}

static int main_status(int argc, char **argv)
{
	struct dv_config cfg = {0};
	struct meta *m = NULL;
	struct meta_stats s;
	unsigned char secret[CHECKSUM_SECRET_SIZE];
	const char *config = NULL;
	char err[1024];
	int ret;

	if (main_common_opts(argc, argv, &config, "status") || optind != argc)
		return 2;
	if (main_load_config(config, &cfg))
		goto fail;
	ret = meta_open(cfg.database.conninfo, 1, &m, err, sizeof(err));
	if (!ret)
		ret = meta_check(m, secret, err, sizeof(err));
	if (ret) {
		fprintf(stderr, "docvault status: %s\n", err);
		goto fail;
	}
	ret = meta_stats(m, &s);
	if (ret) {
		fprintf(stderr, "docvault status: cannot read the vault's counters: %s\n",
			strerror(-ret));
		goto fail;
	}
	printf("documents:     %llu\n", (unsigned long long)s.files);
	printf("folders:       %llu\n", (unsigned long long)s.dirs);
	printf("other entries: %llu\n", (unsigned long long)s.others);
	printf("bytes:         %llu\n", (unsigned long long)s.bytes);
	printf("bytes stored:  %llu (%llu distinct contents, after dedup)\n",
	       (unsigned long long)s.blob_bytes, (unsigned long long)s.blobs);
	/* stored bytes include contents no file uses any more (until gc) */
	printf("saved by dedup: %llu bytes\n",
	       (unsigned long long)(s.bytes > s.blob_bytes ? s.bytes - s.blob_bytes : 0));
	printf("mounts alive:  %llu\n", (unsigned long long)s.sessions_alive);
	cmd_print_doc_counts(m, stdout);
	cmd_queue_status(&cfg);
	meta_close(m);
	config_free(&cfg);
	return 0;
fail:
	meta_close(m);
	config_free(&cfg);
	return 1;
}

static int main_sync(int argc, char **argv)
{
	struct dv_config cfg = {0};
	const char *config = NULL;
	int rc;

	static const struct option longopts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"timeout", required_argument, NULL, 't'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	char *args[3] = {NULL, NULL, NULL};
	int opt, nargs = 0;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "+c:t:h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			config = optarg;
			break;
		case 't':
			args[0] = "--timeout";
			args[1] = optarg;
			nargs = 2;
			break;
		case 'h': {
			char *help[] = {"help", "sync", NULL};

			return main_help(2, help);
		}
		default:
			return 2;
		}
	}
	if (main_load_config(config, &cfg)) {
		config_free(&cfg);
		return 1;
	}
	if (nargs) {
		/* the timeout first, then the paths */
		char **all = calloc((size_t)(argc - optind + nargs + 1), sizeof(*all));

		if (!all) {
			config_free(&cfg);
			return 1;
		}
		all[0] = args[0];
		all[1] = args[1];
		for (int i = optind; i < argc; i++)
			all[nargs + i - optind] = argv[i];
		rc = cmd_sync(argc - optind + nargs, all, config, &cfg);
		free(all);
	} else {
		rc = cmd_sync(argc - optind, argv + optind, config, &cfg);
	}
	config_free(&cfg);
	return rc;
}

/* Refuses a mount point that is missing, not a directory, or already mounted. */
static int main_check_mountpoint(const char *mnt)
{
	char parent[PATH_MAX + 4];
	struct stat sb, pb;

	if (stat(mnt, &sb) < 0) {
		if (errno == ENOTCONN)
			fprintf(stderr,
				"docvault mount: %s: a previous mount died (transport endpoint "
				"is not connected); run `fusermount3 -u %s` first\n",
				mnt, mnt);
		else
			fprintf(stderr, "docvault mount: mount point %s: %s\n", mnt,
				strerror(errno));
		return -1;
	}
	if (!S_ISDIR(sb.st_mode)) {
		fprintf(stderr, "docvault mount: mount point %s is not a directory\n", mnt);
		return -1;
	}
	snprintf(parent, sizeof(parent), "%s/..", mnt);
	if (stat(parent, &pb) == 0 && (pb.st_dev != sb.st_dev || pb.st_ino == sb.st_ino)) {
		fprintf(stderr,
			"docvault mount: mount point %s is busy: something is already mounted "
			"there\n",
			mnt);
		return -1;
	}
	return 0;
}

static int main_mount(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"config", required_argument, NULL, 'c'},  {"foreground", no_argument, NULL, 'f'},
	    {"options", required_argument, NULL, 'o'}, {"log", required_argument, NULL, 'l'},
	    {"help", no_argument, NULL, 'h'},	       {NULL, 0, NULL, 0},
	};
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct dv_config cfg = {0};
	struct ops_ctx oc = {0};
	struct fuse_session *se = NULL;
	struct fuse_loop_config *lc = NULL;
	const char *config = NULL, *logfile = NULL;
	char mnt[PATH_MAX], opts[512], err[1024];
	bool foreground = false, mounted = false;
	int opt, ret = 1;

	fuse_opt_add_arg(&args, "docvault");
	optind = 1;
	while ((opt = getopt_long(argc, argv, "c:fo:l:h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			config = optarg;
			break;
		case 'f':
			foreground = true;
			break;
		case 'o':
			fuse_opt_add_arg(&args, "-o");
			fuse_opt_add_arg(&args, optarg);
			break;
		case 'l':
			logfile = optarg;
			break;
		case 'h': {
			char *hargs[] = {"help", "mount", NULL};

			main_help(2, hargs);
			fuse_opt_free_args(&args);
			return 0;
		}
		default:
			fuse_opt_free_args(&args);
			return 2;
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr, "docvault mount: give exactly one MOUNTPOINT (see docvault help "
				"mount)\n");
		fuse_opt_free_args(&args);
		return 2;
	}
	if (!realpath(argv[optind], mnt)) {
		fprintf(stderr, "docvault mount: mount point %s: %s\n", argv[optind],
			strerror(errno));
		fuse_opt_free_args(&args);
		return 1;
	}
	if (main_load_config(config, &cfg))
		goto out;
	if (main_check_mountpoint(mnt))
		goto out;
	if (logfile) {
		int fd = open(logfile, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);

		if (fd < 0) {
			fprintf(stderr, "docvault mount: log file %s: %s\n", logfile,
				strerror(errno));
			goto out;
		}
		close(fd);
	}
	ret = vfs_open(&cfg, &oc.vfs, err, sizeof(err));
	if (ret) {
		fprintf(stderr, "docvault mount: %s\n", err);
		ret = 1;
		goto out;
	}
	ret = 1;
	oc.attr_timeout = cfg.mount.attr_timeout;
	oc.entry_timeout = cfg.mount.entry_timeout;
	snprintf(opts, sizeof(opts), "fsname=docvault,subtype=docvault,default_permissions%s",
		 cfg.mount.allow_other ? ",allow_other" : "");
	fuse_opt_add_arg(&args, "-o");
	fuse_opt_add_arg(&args, opts);
	se = fuse_session_new(&args, &ops_table, sizeof(ops_table), &oc);
	if (!se) {
		fprintf(stderr, "docvault mount: bad FUSE options (see docvault help mount)\n");
		goto out;
	}
	if (fuse_set_signal_handlers(se) != 0) {
		fprintf(stderr, "docvault mount: cannot install signal handlers\n");
		goto out;
	}
	if (fuse_session_mount(se, mnt) != 0) {
		fprintf(stderr,
			"docvault mount: cannot mount on %s (is /dev/fuse available and "
			"fusermount3 installed?)\n",
			mnt);
		goto out;
	}
	mounted = true;
	if (!foreground) {
		log_use_syslog("docvault");
		if (fuse_daemonize(0) != 0)
			goto out;
	}
	if (logfile) {
		int fd = open(logfile, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);

		if (fd >= 0) {
			dup2(fd, STDERR_FILENO);
			close(fd);
			log_stderr(true);
		}
	}
	if (vfs_start(oc.vfs)) {
		log_error("cannot start background threads");
		goto out;
	}
	log_info("mounted %s (config %s)", mnt, cfg.path);
	lc = fuse_loop_cfg_create();
	fuse_loop_cfg_set_max_threads(lc, (unsigned int)cfg.mount.threads);
	fuse_loop_cfg_set_idle_threads(lc, (unsigned int)cfg.mount.threads);
	ret = fuse_session_loop_mt(se, lc) == 0 ? 0 : 1;
	log_info("unmounting %s", mnt);
out:
	if (mounted)
		fuse_session_unmount(se);
	if (se) {
		fuse_remove_signal_handlers(se);
		fuse_session_destroy(se);
	}
	fuse_loop_cfg_destroy(lc);
	vfs_close(oc.vfs);
	config_free(&cfg);
	fuse_opt_free_args(&args);
	return ret;
}

static int main_version(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	printf("docvault %s (libfuse %d, schema %d)\n", DOCVAULT_VERSION, fuse_version(),
	       META_SCHEMA_VERSION);
	return 0;
}

static const struct main_cmd main_cmds[] = {
    {"init", main_init, "create or upgrade a vault's schema and check its store",
     "usage: docvault init -c FILE\n"
     "\n"
     "Creates or upgrades the schema in the PostgreSQL database that FILE names\n"
     "(versioned migrations recorded in the database), creates the root directory\n"
     "and the vault's secret hash key, and checks that the store is reachable and\n"
     "writable. Running it twice is harmless. A database holding a newer schema\n"
     "than this docvault knows is refused.\n"},
    {"mount", main_mount, "mount a vault (the FUSE daemon)",
     "usage: docvault mount -c FILE MOUNTPOINT [-f] [-o FUSEOPTS] [--log LOGFILE]\n"
     "\n"
     "Mounts the vault on MOUNTPOINT and goes to the background once the mount is\n"
     "ready. Exits non-zero with a message if it cannot mount (bad config, database\n"
     "down, mount point missing or busy).\n"
     "\n"
     "  -c, --config FILE   the configuration (INI)\n"
     "  -f, --foreground    stay in the foreground, log to stderr\n"
     "  -o, --options OPTS  FUSE mount options (e.g. ro, debug)\n"
     "  -l, --log FILE      append the daemon's log to FILE (default: syslog)\n"
     "\n"
     "Unmount with `fusermount3 -u MOUNTPOINT` (or umount), or SIGTERM/SIGINT to the\n"
     "daemon: both finish pending work first.\n"},
    {"status", main_status, "show what a vault holds",
     "usage: docvault status -c FILE\n"
     "\n"
     "Prints the number of documents and folders, the bytes stored before and after\n"
     "deduplication, the mounts alive, and the files of this cache directory still\n"
     "waiting for upload (how many, their bytes, the oldest one's age, failures).\n"},
    {"sync", main_sync, "wait until closed files are committed",
     "usage: docvault sync -c FILE [--timeout SECONDS] [PATH...]\n"
     "\n"
     "Waits until every file closed on the mount that uses this configuration's\n"
     "cache directory (or every file under the PATHs) is uploaded and committed,\n"
     "then makes PostgreSQL flush its log: afterwards nothing closed before is lost\n"
     "whatever happens to this machine. On a terminal it shows files and bytes\n"
     "left, the rate and the time to go. Exits 0 when done; 1 when it cannot be\n"
     "done (no mount serves the cache directory, the database is unreachable, or\n"
     "--timeout passed; uploads that fail are retried by the mount meanwhile, and\n"
     "their reason is shown).\n"},
    {"worker", cmd_worker, "process documents from the queue (a worker process)", cmd_worker_usage},
    {"duplicates", cmd_duplicates, "list documents that share content", cmd_duplicates_usage},
    {"gc", cmd_gc, "delete contents no document refers to (unmounted)", cmd_gc_usage},
    {"fsck", cmd_fsck, "check a vault's consistency (read-only)", cmd_fsck_usage},
    {"help", main_help, "describe a subcommand", "usage: docvault help [SUBCOMMAND]\n"},
    {"version", main_version, "print the version", "usage: docvault version\n"},
};

#define MAIN_NCMDS (sizeof(main_cmds) / sizeof(main_cmds[0]))

static int main_help(int argc, char **argv)
{
	if (argc >= 2) {
		for (size_t i = 0; i < MAIN_NCMDS; i++)
			if (!strcmp(argv[1], main_cmds[i].name)) {
				fputs(main_cmds[i].usage, stdout);
				return 0;
			}
		fprintf(stderr, "docvault: no such subcommand \"%s\"\n", argv[1]);
		return 2;
	}
	printf("usage: docvault [--version] [--help] SUBCOMMAND [ARGS]\n\n"
	       "docvault is a document vault you mount as a drive.\n\nSubcommands:\n");
	for (size_t i = 0; i < MAIN_NCMDS; i++)
		printf("  %-8s %s\n", main_cmds[i].name, main_cmds[i].summary);
	printf("\nSee `docvault help SUBCOMMAND` for one.\n");
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		main_help(1, argv);
		return 2;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))
		return main_help(1, argv);
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V"))
		return main_version(1, argv);
	/* not for people: the processing workers run it to extract text in a fresh process */
	if (!strcmp(argv[1], "__extract"))
		return cmd_extract(argc - 1, argv + 1);
	for (size_t i = 0; i < MAIN_NCMDS; i++)
		if (!strcmp(argv[1], main_cmds[i].name))
			return main_cmds[i].run(argc - 1, argv + 1);
	fprintf(stderr, "docvault: no such subcommand \"%s\" (see docvault --help)\n", argv[1]);
	return 2;
}
