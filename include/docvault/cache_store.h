/*
 * cache_store.h - a store that answers whole-blob reads from the local read
 * cache: the daemon's processing workers read a document just written on
 * this mount from disk instead of downloading it again, and a download
 * they do need lands in the cache, verified, for the next reader.
 *
 * Everything but get_to_fd of a whole blob key goes to the inner store.
 * The cache and the inner store are borrowed and must outlive it.
 */
#ifndef DOCVAULT_CACHE_STORE_H
#define DOCVAULT_CACHE_STORE_H

struct cache;
struct store;

int cache_store_open(struct cache *c, struct store *inner, struct store **out);

#endif
