/* Two copies at once with libferry, driven by a poll() loop.
 *
 *   copy SRC1 DST1 [SRC2 DST2]
 *
 * Each SRC is copied whole to the start of its DST (paths or device URIs: file:PATH,
 * ram:SIZE, iscsi://...). While the copies run, the loop waits on the context's fd with a
 * 200 ms timeout and prints their progress; it reaps them as they finish.
 * Build: cc copy.c $(pkg-config --cflags --libs ferry)
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>

#include <ferry/ferry.h>

struct job {
  const char *src_uri;
  const char *dst_uri;
  ferry_dev *src;
  ferry_dev *dst;
  uint64_t cookie;
  int done;
  int result;
};

static int start(ferry_ctx *ctx, struct job *j) {
  int rc = ferry_dev_open(ctx, j->src_uri, FERRY_DEV_RDONLY, &j->src);
  if (rc == 0) rc = ferry_dev_open(ctx, j->dst_uri, 0, &j->dst);
  if (rc < 0) {
    fprintf(stderr, "copy: %s\n", ferry_errmsg());
    return rc;
  }
  struct ferry_range range = {0, 0, (uint64_t)ferry_dev_size(j->src)};
  rc = ferry_copy_submit(ctx, j->src, j->dst, &range, 1, FERRY_COPY_FUA, j, &j->cookie);
  if (rc < 0) fprintf(stderr, "copy: %s -> %s: %s\n", j->src_uri, j->dst_uri, ferry_errmsg());
  return rc;
}

static void print_progress(ferry_ctx *ctx, struct job *jobs, int n) {
  for (int i = 0; i < n; i++) {
    struct ferry_progress p = {.size = sizeof(p)};
    if (jobs[i].done || ferry_copy_progress(ctx, jobs[i].cookie, &p) < 0) continue;
    printf("  %s -> %s: %" PRIu64 "/%" PRIu64 " bytes (%" PRIu64 " offloaded) %s\n",
           jobs[i].src_uri, jobs[i].dst_uri, p.bytes_done, p.bytes_total, p.bytes_offloaded,
           p.mechanism);
  }
}

/* Reaps what has completed; returns how many. */
static int reap(ferry_ctx *ctx) {
  struct ferry_completion c[2];
  c[0].size = sizeof(c[0]);
  int n = ferry_reap(ctx, c, 0, 2, 0);
  for (int i = 0; i < n; i++) {
    struct job *j = c[i].user_data;
    j->done = 1;
    j->result = c[i].result;
    printf("%s -> %s: %s, %" PRIu64 " bytes (%" PRIu64 " offloaded, %" PRIu64
           " emulated, mostly %s)\n",
           j->src_uri, j->dst_uri, c[i].result == 0 ? "done" : "FAILED", c[i].bytes_done,
           c[i].bytes_offloaded, c[i].bytes_emulated, c[i].mechanism);
  }
  return n < 0 ? 0 : n;
}

int main(int argc, char **argv) {
  if (argc != 3 && argc != 5) {
    fprintf(stderr, "usage: %s SRC1 DST1 [SRC2 DST2]\n", argv[0]);
    return 2;
  }
  struct job jobs[2] = {{argv[1], argv[2], NULL, NULL, 0, 0, 0}};
  const int n = argc == 5 ? 2 : 1;
  if (n == 2) jobs[1] = (struct job){argv[3], argv[4], NULL, NULL, 0, 0, 0};

  ferry_ctx *ctx = NULL;
  if (ferry_ctx_new(NULL, &ctx) < 0) {
    fprintf(stderr, "copy: %s\n", ferry_errmsg());
    return 1;
  }
  int failed = 0, left = 0;
  for (int i = 0; i < n; i++) {
    if (start(ctx, &jobs[i]) < 0) {
      jobs[i].done = 1;
      failed = 1;
    } else {
      left++;
    }
  }
  struct pollfd pfd = {.fd = ferry_ctx_fd(ctx), .events = POLLIN};
  while (left > 0) {
    int rc = poll(&pfd, 1, 200);
    if (rc < 0 && errno != EINTR) {
      perror("poll");
      break;
    }
    if (rc == 0) print_progress(ctx, jobs, n);
    if (rc > 0) left -= reap(ctx);
  }
  for (int i = 0; i < n; i++) {
    if (jobs[i].result != 0) failed = 1;
  }
  ferry_ctx_free(ctx); /* closes the devices */
  return failed ? 1 : 0;
}
