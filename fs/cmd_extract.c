/*
 * cmd_extract.c - `docvault __extract` (see cmd_extract.h): a thin entry
 * into extract_child_main(), which lives with the converters it runs in
 * backend/extract.c. It is a subcommand of the one binary, not a program
 * of its own, so there is nothing else to install and the helper always
 * matches the daemon that starts it.
 */
#include "cmd_extract.h"
#include "docvault/extract.h"

int cmd_extract(int argc, char **argv)
{
	return extract_child_main(argc, argv);
}
