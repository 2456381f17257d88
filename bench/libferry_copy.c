/* One whole-device copy through libferry, timed: the library's side of
 * bench/libferry_vs_ferryctl. Prints "SECONDS BYTES MECHANISM".
 * Usage: libferry_copy SRC_URI DST_URI */
#include <ferry/ferry.h>
#include <stdio.h>
#include <time.h>

static double Now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(int argc, char** argv) {
  ferry_ctx* ctx;
  ferry_dev *src, *dst;
  uint64_t cookie;
  struct ferry_completion c = {.size = sizeof(c)};
  if (argc != 3) return fprintf(stderr, "usage: libferry_copy SRC DST\n"), 2;
  if (ferry_ctx_new(NULL, &ctx) < 0 || ferry_dev_open(ctx, argv[1], FERRY_DEV_RDONLY, &src) < 0 ||
      ferry_dev_open(ctx, argv[2], 0, &dst) < 0) {
    return fprintf(stderr, "libferry_copy: %s\n", ferry_errmsg()), 1;
  }
  struct ferry_range r = {0, 0, (uint64_t)ferry_dev_size(src)};
  const double t0 = Now();
  /* FUA: durable on completion, as ferryctl copy --fsync. */
  if (ferry_copy_submit(ctx, src, dst, &r, 1, FERRY_COPY_FUA, NULL, &cookie) < 0 ||
      ferry_reap(ctx, &c, 1, 1, -1) != 1 || c.result < 0) {
    return fprintf(stderr, "libferry_copy: failed (%d): %s\n", c.result, ferry_errmsg()), 1;
  }
  printf("%.6f %llu %s\n", Now() - t0, (unsigned long long)c.bytes_done, c.mechanism);
  ferry_ctx_free(ctx);
  return 0;
}
