# fstore: PGXS build.  `make`, `make install`, `make installcheck`.
#
# `make installcheck` runs, as for a contrib module, the pg_regress suite
# (REGRESS: sql/, expected/) and the isolation specs (ISOLATION:
# test/isolation) against the running server PGHOST/PGPORT point at, which
# must have fstore preloaded (test/fstore.conf), then the TAP tests
# (TAP_TESTS: test/t/*.pl), which start their own clusters.  Pick parts
# with empty variables, e.g. `make installcheck ISOLATION= TAP_TESTS=`, and
# TAP files with PROVE_TESTS='test/t/001_x.pl'.  scripts/test.sh sets up
# a throwaway cluster and calls these targets.  `make unitcheck` runs the
# cmocka unit tests (test/unit), which need no server.

EXTENSION = fstore
MODULE_big = fstore
DATA = $(wildcard fstore--*.sql)

OBJS = \
	src/fstore.o \
	src/aggregate/aggregate.o \
	src/aggregate/hll.o \
	src/apply/apply.o \
	src/apply/decide.o \
	src/cache/cache.o \
	src/cache/coherence.o \
	src/cache/generation.o \
	src/cache/wal.o \
	src/catalog/acl.o \
	src/catalog/guard.o \
	src/catalog/metadata.o \
	src/catalog/parse.o \
	src/catalog/query.o \
	src/ingest/queue.o \
	src/ingest/worker.o \
	src/keys/keys.o \
	src/materialize/materialize.o \
	src/materialize/runlog.o \
	src/online/output.o \
	src/online/read.o \
	src/online/service.o \
	src/online/write.o \
	src/shard/shard.o \
	src/stats/freshness.o \
	src/stats/progress.o \
	src/stats/stats.o \
	src/training/training.o \
	src/util/packed.o \
	src/util/util.o \
	src/util/viewtable.o

PG_CONFIG ?= pg_config
PG_CPPFLAGS = -I$(srcdir)/src -I$(srcdir)/include
PG_CFLAGS = -Wall -Wextra -Werror -Wno-unused-parameter \
	-Wno-missing-field-initializers -Wno-sign-compare

# the client-side decoder of fs_get_many_packed answers
HEADERS = include/fstore_packed.h

REGRESS = $(patsubst sql/%.sql,%,$(sort $(wildcard sql/*.sql)))
REGRESS_OPTS = --load-extension=fstore

# the specs and their expected output live in test/isolation (this
# --inputdir comes after PGXS's own and wins)
ISOLATION = $(patsubst test/isolation/specs/%.spec,%,$(sort $(wildcard test/isolation/specs/*.spec)))
ISOLATION_OPTS = --inputdir=test/isolation --load-extension=fstore

# prove_installcheck runs t/*.pl unless PROVE_TESTS names files
TAP_TESTS = 1
ifeq ($(strip $(PROVE_TESTS)),)
PROVE_TESTS = test/t/*.pl
endif

# rebuild an object when a header it includes changes
PG_CFLAGS += -MMD -MP
EXTRA_CLEAN = $(OBJS:.o=.d)

PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

-include $(OBJS:.o=.d)

# test/t holds the tests' shared Perl modules (FsModel.pm)
PG_PROVE_FLAGS += -I $(srcdir)/test/t

unitcheck:
	$(MAKE) -C $(srcdir)/test/unit run

clean: clean-unit
clean-unit:
	$(MAKE) -C $(srcdir)/test/unit clean

.PHONY: unitcheck clean-unit
