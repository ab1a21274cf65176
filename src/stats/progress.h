/*
 * progress.h
 *		What long-running fstore work is doing now (fstore.progress).
 *
 * Each backend owns one slot of a shared array and updates it with plain
 * stores; readers copy slots without locks (progress.c).  Every function
 * is a no-op when fstore is not preloaded.
 *
 * Dependency direction: stats/ depends on util/ only; the parts that
 * report progress (apply/, ingest/, materialize/, training/) use it.
 */
#ifndef FS_PROGRESS_H
#define FS_PROGRESS_H

typedef enum FsProgressKind
{
	FS_PROGRESS_NONE = 0,
	FS_PROGRESS_MATERIALIZE,
	FS_PROGRESS_TRAINING_SET,
	FS_PROGRESS_STREAM_BATCH
} FsProgressKind;

/* Starts reporting (replacing whatever this backend reported before). */
extern void fs_progress_begin(FsProgressKind kind, int64 view_id, const char *view,
							  const char *phase);
extern void fs_progress_phase(const char *phase);
/* rows done so far; total < 0 when unknown (kept as it was when -2) */
extern void fs_progress_rows(int64 done, int64 total);
extern void fs_progress_end(void);

extern Size fs_progress_shmem_size(void);
extern void fs_progress_shmem_startup(void);

#endif							/* FS_PROGRESS_H */
