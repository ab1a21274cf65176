/*
 * training.h
 *		Point-in-time correct training sets (training.c).
 *
 * Dependency direction: training/ is at the top with materialize/: it uses
 * online/'s and catalog/'s checks, keys/, stats/ and util/; only
 * src/fstore.c calls it (its init).
 */
#ifndef FS_TRAINING_H
#define FS_TRAINING_H

/* defines fstore.training_work_mem (from _PG_init) */
extern void fs_training_init(void);

#endif							/* FS_TRAINING_H */
