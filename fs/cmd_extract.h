/*
 * cmd_extract.h - `docvault __extract`, the hidden subcommand that is the
 * text extraction helper (fs/cmd_extract.c). The processing workers start
 * it with posix_spawn once each, as a server (`__extract --serve`), or for
 * one document; people do not run it (but may, to see what docvault
 * extracts from a file). The protocol - arguments, limits, the framed
 * output, exit statuses - is in docvault/extract.h.
 */
#ifndef DOCVAULT_CMD_EXTRACT_H
#define DOCVAULT_CMD_EXTRACT_H

/* argv[0] is the subcommand's name. Returns the exit status (or exits). */
int cmd_extract(int argc, char **argv);

#endif
