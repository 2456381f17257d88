/* libferry: the C ABI of Ferry's copy engine (docs/api.md).
 *
 * A program opens a context, opens devices by URI in it, and submits copies of range lists
 * between two devices. Copies run on a reactor thread that the context owns; the program
 * learns about finished copies by reaping them (ferry_reap), typically when the context's
 * file descriptor (ferry_ctx_fd) polls readable. Nothing is ever called back: completions
 * are handed out only by ferry_reap, on the thread that calls it.
 *
 * Conventions
 * - Functions that can fail return 0 (or a count) on success and a negative errno on
 *   failure, and then set a thread-local message that names the cause: ferry_errmsg().
 * - Structures passed in or out start with `size_t size`, which the caller sets to
 *   sizeof(struct ...) as compiled against; later versions append fields and honour the
 *   size an older caller gives.
 * - Threads: every function may be called from any thread, concurrently, except where a
 *   function says otherwise (ferry_ctx_free; a device after ferry_dev_close). Blocking
 *   functions say so; they never block on the context's own reactor thread, which the
 *   program never sees.
 * - Byte offsets and lengths everywhere; each must be a multiple of the block size of the
 *   device it applies to (1 for regular files opened without FERRY_DEV_DIRECT).
 *
 * C99; the library exports only ferry_* symbols. Link with `pkg-config --libs ferry`.
 */
#ifndef FERRY_FERRY_H
#define FERRY_FERRY_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define FERRY_VERSION_MAJOR 1
#define FERRY_VERSION_MINOR 0

typedef struct ferry_ctx ferry_ctx;
typedef struct ferry_dev ferry_dev;

/* ---- Errors ---------------------------------------------------------------------------- */

/* The message of the last failed call on the calling thread ("" when none has failed).
 * Valid until the next libferry call on this thread. Never NULL. */
const char* ferry_errmsg(void);

/* "1.0.0". Any thread. */
const char* ferry_version(void);

/* ---- Contexts -------------------------------------------------------------------------- */

struct ferry_ctx_opts {
  size_t size;                     /* sizeof(struct ferry_ctx_opts) */
  uint64_t chunk_bytes;            /* emulated read/write size, 4 KiB..256 MiB; 0: 1 MiB */
  uint32_t queue_depth;            /* emulated chunks in flight per copy, 1..256; 0: 8 */
  uint64_t throttle_bytes_per_sec; /* shared by the context's copies; 0: unthrottled */
};

/* Creates a context and starts its reactor thread. `opts` may be NULL (defaults).
 * Errors: -EINVAL (bad options, opts->size too small), -ENOMEM, -EMFILE and others from
 * creating the thread, eventfd and io_uring. Any thread. */
int ferry_ctx_new(const struct ferry_ctx_opts* opts, ferry_ctx** ctx_out);

/* Cancels the copies in flight, waits for them to finish (their completions are dropped),
 * closes the devices still open and stops the reactor thread. Blocks. No other call on
 * `ctx` or its devices may run concurrently or follow. NULL is ignored. */
void ferry_ctx_free(ferry_ctx* ctx);

/* An eventfd that polls readable (POLLIN) while completions wait to be reaped, and stops
 * being readable once ferry_reap has taken them all. Do not read, write or close it.
 * Edge and level triggering both work. Any thread. */
int ferry_ctx_fd(ferry_ctx* ctx);

/* ---- Devices --------------------------------------------------------------------------- */

enum {
  FERRY_DEV_RDONLY = 1u << 0, /* open read-only: usable only as a copy source */
  FERRY_DEV_DIRECT = 1u << 1, /* files: O_DIRECT (offsets and lengths in device blocks) */
};

/* Opens a device by URI: a path or "file:PATH" (regular file or block device),
 * "ram:SIZE" (RAM; devices of one context share an arena and copy natively),
 * "iscsi://[USER[%SECRET_FILE]@]HOST[:PORT]/IQN/LUN", "rbd:POOL/IMAGE" where built.
 * URIs other than files may end in "?KEY=VALUE&..." (backend parameters).
 * Blocks while the device opens (a remote login included).
 * Errors: -EINVAL (bad URI or flags), -ENOENT (no such file), -EACCES, -EOPNOTSUPP
 * (backend not built), -EIO and others from the backend. Any thread. */
int ferry_dev_open(ferry_ctx* ctx, const char* uri, uint32_t flags, ferry_dev** dev_out);

/* Closes a device. -EBUSY while a copy that uses it is in flight (the device stays open).
 * Blocks while the device closes. The handle is invalid after success. Any thread, but not
 * concurrently with other calls on the same device. */
int ferry_dev_close(ferry_dev* dev);

/* Size in bytes (it may change while open: a remote LUN resized), or -EINVAL for NULL.
 * Any thread. */
int64_t ferry_dev_size(ferry_dev* dev);

/* Block size in bytes (1: a byte-addressed regular file), or -EINVAL for NULL. */
int ferry_dev_block_size(ferry_dev* dev);

/* Makes every completed write durable. Blocks until the device answers.
 * Errors: -EIO and others from the device. Any thread. */
int ferry_dev_flush(ferry_dev* dev);

/* ---- Copies ---------------------------------------------------------------------------- */

/* `len` bytes from `src_off` on the source to `dst_off` on the destination. */
struct ferry_range {
  uint64_t src_off;
  uint64_t dst_off;
  uint64_t len;
};

enum {
  /* Never emulate: the copy fails with -EOPNOTSUPP rather than move bytes through the
   * host. Refused at submission when the destination cannot copy natively from the source
   * at all; a part it refuses during the copy fails the copy (parts already copied stay). */
  FERRY_COPY_NO_FALLBACK = 1u << 0,
  /* The destination is flushed before the copy completes: success means durable. */
  FERRY_COPY_FUA = 1u << 1,
};

/* Starts copying `ranges` (in order, `n` >= 1) from `src` to `dst` (they may be the same
 * device; overlapping ranges of one device behave like memmove per range) and returns its
 * cookie (> 0, unique in the context) in *cookie_out. Never blocks on I/O and never
 * completes inside the call; the copy completes exactly once, through ferry_reap, with
 * `user_data` handed back.
 * Errors (nothing was started): -EINVAL (n == 0, NULL, unknown flags, a length of 0, an
 * offset or length not a multiple of a block size, a source range past the end of the
 * source), -ENOSPC (a destination range past the end of the destination: too short),
 * -EROFS (destination opened read-only), -EOPNOTSUPP (FERRY_COPY_NO_FALLBACK and no native
 * copy between these devices), -ENOMEM. Any thread. */
int ferry_copy_submit(ferry_ctx* ctx, ferry_dev* src, ferry_dev* dst,
                      const struct ferry_range* ranges, size_t n, uint32_t flags, void* user_data,
                      uint64_t* cookie_out);

/* Byte counts of a copy, over all its ranges. */
struct ferry_progress {
  size_t size;              /* sizeof(struct ferry_progress) */
  uint64_t bytes_total;     /* sum of the range lengths */
  uint64_t bytes_done;      /* copied so far (offloaded + emulated) */
  uint64_t bytes_offloaded; /* moved by the storage (reflink, copy_file_range, XCOPY...) */
  uint64_t bytes_emulated;  /* read and written by Ferry */
  char mechanism[24];       /* how most bytes moved: "emulated", "ram", "reflink",
                             * "copy_file_range", "thin_share", "xcopy", "odx",
                             * "rados_copy", "rbd_gateway", "native"
                             * (a device that did not say); "" before any byte moved */
};

/* A snapshot of a copy's progress, until it is reaped (afterwards -ENOENT).
 * Errors: -EINVAL (NULL, size too small), -ENOENT (unknown cookie). Any thread. */
int ferry_copy_progress(ferry_ctx* ctx, uint64_t cookie, struct ferry_progress* out);

/* Asks a copy to stop; returns at once. The copy completes later with -ECANCELED and the
 * bytes done so far (or with its own result, if it finished first). Destination bytes of
 * the parts in flight are undefined. Errors: -ENOENT (unknown or reaped cookie), -EALREADY
 * (already completed, not yet reaped). Any thread. */
int ferry_copy_cancel(ferry_ctx* ctx, uint64_t cookie);

struct ferry_completion {
  size_t size;     /* set by the caller in out[0] (see ferry_reap) */
  uint64_t cookie; /* as ferry_copy_submit returned it */
  void* user_data; /* as given to ferry_copy_submit */
  int result;      /* 0, or -errno: -ECANCELED, -EIO, -ENOSPC, -EOPNOTSUPP, -EROFS... */
  uint64_t bytes_total;
  uint64_t bytes_done; /* on failure: what reached the destination before the copy stopped */
  uint64_t bytes_offloaded;
  uint64_t bytes_emulated;
  char mechanism[24]; /* as in struct ferry_progress */
};

/* Takes up to `max` completed copies, in completion order, into `out`, waiting until at
 * least `min` have completed or `timeout_ms` has passed (< 0: no limit; 0: do not wait).
 * It stops waiting early when fewer than `min` copies remain in flight. Set out[0].size to
 * sizeof(struct ferry_completion): `out` is an array of elements of that size.
 * Returns the number taken (0..max). Errors: -EINVAL (NULL, min > max, size too small).
 * Blocks up to `timeout_ms`. Any thread; concurrent reapers share the completions. */
int ferry_reap(ferry_ctx* ctx, struct ferry_completion* out, size_t min, size_t max,
               int timeout_ms);

#ifdef __cplusplus
}
#endif

#endif /* FERRY_FERRY_H */
