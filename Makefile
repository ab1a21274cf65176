# fstore: PGXS build.  `make`, `make install`, `make installcheck` (needs a
# running server with fstore preloaded; scripts/test.sh sets one up).

EXTENSION = fstore
MODULE_big = fstore
DATA = $(wildcard fstore--*.sql)

OBJS = \
	src/fstore.o \
	src/cache/cache.o \
	src/cache/coherence.o \
	src/catalog/acl.o \
	src/catalog/guard.o \
	src/catalog/metadata.o \
	src/ingest/queue.o \
	src/ingest/worker.o \
	src/materialize/materialize.o \
	src/training/training.o \
	src/catalog/parse.o \
	src/online/decide.o \
	src/online/keys.o \
	src/online/output.o \
	src/online/packed.o \
	src/online/read.o \
	src/online/write.o \
	src/stats/stats.o

PG_CONFIG ?= pg_config
PG_CPPFLAGS = -I$(srcdir)/src -I$(srcdir)/include
PG_CFLAGS = -Wall -Wextra -Werror -Wno-unused-parameter \
	-Wno-missing-field-initializers -Wno-sign-compare

# the client-side decoder of fs_get_many_packed answers
HEADERS = include/fstore_packed.h

REGRESS = $(patsubst sql/%.sql,%,$(sort $(wildcard sql/*.sql)))
REGRESS_OPTS = --load-extension=fstore

# rebuild an object when a header it includes changes
PG_CFLAGS += -MMD -MP
EXTRA_CLEAN = $(OBJS:.o=.d)

PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

-include $(OBJS:.o=.d)
