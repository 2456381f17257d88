// The C ABI (include/ferry/ferry.h): argument checks and structure translation over
// api::Context. Every exported symbol is defined here.
#include "ferry/ferry.h"

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <span>
#include <vector>

#include "lib/context.h"
#include "lib/error.h"

struct ferry_ctx {
  std::unique_ptr<ferry::api::Context> impl;
};

namespace {

using ferry::api::Fail;

// The first `size` bytes of a v1 structure that a caller must give at least.
template <typename T>
constexpr size_t kMinSize = sizeof(T);

void CopyName(const std::string& name, char* out, size_t cap) {
  size_t n = std::min(name.size(), cap - 1);
  std::memcpy(out, name.data(), n);
  out[n] = '\0';
}

}  // namespace

extern "C" {

const char* ferry_errmsg(void) { return ferry::api::LastMessage(); }

const char* ferry_version(void) { return "1.0.0"; }

int ferry_ctx_new(const struct ferry_ctx_opts* opts, ferry_ctx** ctx_out) {
  if (ctx_out == nullptr) return Fail(-EINVAL, "ferry_ctx_new: ctx_out is NULL");
  *ctx_out = nullptr;
  ferry::api::ContextOptions o;
  if (opts != nullptr) {
    if (opts->size < kMinSize<ferry_ctx_opts>) {
      return Fail(-EINVAL, "ferry_ctx_new: opts->size " + std::to_string(opts->size) +
                               " is smaller than struct ferry_ctx_opts");
    }
    if (opts->chunk_bytes != 0) {
      if (opts->chunk_bytes < 4096 || opts->chunk_bytes > (256u << 20)) {
        return Fail(-EINVAL, "ferry_ctx_new: chunk_bytes must be between 4 KiB and 256 MiB");
      }
      o.chunk_bytes = opts->chunk_bytes;
    }
    if (opts->queue_depth > 256) {
      return Fail(-EINVAL, "ferry_ctx_new: queue_depth must be between 1 and 256");
    }
    if (opts->queue_depth != 0) o.queue_depth = opts->queue_depth;
    o.throttle_bytes_per_sec = opts->throttle_bytes_per_sec;
  }
  int err = 0;
  auto impl = ferry::api::Context::Create(o, &err);
  if (impl == nullptr) return err;
  *ctx_out = new ferry_ctx{std::move(impl)};
  return 0;
}

void ferry_ctx_free(ferry_ctx* ctx) { delete ctx; }

int ferry_ctx_fd(ferry_ctx* ctx) {
  if (ctx == nullptr) return Fail(-EINVAL, "ferry_ctx_fd: ctx is NULL");
  return ctx->impl->event_fd();
}

int ferry_dev_open(ferry_ctx* ctx, const char* uri, uint32_t flags, ferry_dev** dev_out) {
  if (ctx == nullptr || uri == nullptr || dev_out == nullptr) {
    return Fail(-EINVAL, "ferry_dev_open: ctx, uri and dev_out must not be NULL");
  }
  *dev_out = nullptr;
  return ctx->impl->Open(uri, flags, dev_out);
}

int ferry_dev_close(ferry_dev* dev) {
  if (dev == nullptr) return Fail(-EINVAL, "ferry_dev_close: dev is NULL");
  return dev->ctx->Close(dev);
}

int64_t ferry_dev_size(ferry_dev* dev) {
  if (dev == nullptr) return Fail(-EINVAL, "ferry_dev_size: dev is NULL");
  return static_cast<int64_t>(dev->dev->geometry().size_bytes());
}

int ferry_dev_block_size(ferry_dev* dev) {
  if (dev == nullptr) return Fail(-EINVAL, "ferry_dev_block_size: dev is NULL");
  return static_cast<int>(dev->dev->geometry().block_size);
}

int ferry_dev_flush(ferry_dev* dev) {
  if (dev == nullptr) return Fail(-EINVAL, "ferry_dev_flush: dev is NULL");
  return dev->ctx->Flush(dev);
}

int ferry_copy_submit(ferry_ctx* ctx, ferry_dev* src, ferry_dev* dst,
                      const struct ferry_range* ranges, size_t n, uint32_t flags, void* user_data,
                      uint64_t* cookie_out) {
  if (ctx == nullptr || src == nullptr || dst == nullptr || cookie_out == nullptr) {
    return Fail(-EINVAL, "ferry_copy_submit: ctx, src, dst and cookie_out must not be NULL");
  }
  if (ranges == nullptr || n == 0) return Fail(-EINVAL, "ferry_copy_submit: no ranges");
  return ctx->impl->Submit(src, dst, std::span<const ferry_range>(ranges, n), flags, user_data,
                           cookie_out);
}

int ferry_copy_progress(ferry_ctx* ctx, uint64_t cookie, struct ferry_progress* out) {
  if (ctx == nullptr || out == nullptr) {
    return Fail(-EINVAL, "ferry_copy_progress: ctx and out must not be NULL");
  }
  if (out->size < kMinSize<ferry_progress>) {
    return Fail(-EINVAL, "ferry_copy_progress: out->size is smaller than struct ferry_progress");
  }
  ferry::api::CopyStats s;
  if (int err = ctx->impl->Progress(cookie, &s); err != 0) return err;
  out->bytes_total = s.total;
  out->bytes_done = s.done;
  out->bytes_offloaded = s.offloaded;
  out->bytes_emulated = s.emulated;
  CopyName(s.mechanism, out->mechanism, sizeof(out->mechanism));
  return 0;
}

int ferry_copy_cancel(ferry_ctx* ctx, uint64_t cookie) {
  if (ctx == nullptr) return Fail(-EINVAL, "ferry_copy_cancel: ctx is NULL");
  return ctx->impl->Cancel(cookie);
}

int ferry_reap(ferry_ctx* ctx, struct ferry_completion* out, size_t min, size_t max,
               int timeout_ms) {
  if (ctx == nullptr || out == nullptr) {
    return Fail(-EINVAL, "ferry_reap: ctx and out must not be NULL");
  }
  if (min > max) return Fail(-EINVAL, "ferry_reap: min is larger than max");
  const size_t stride = out[0].size;
  if (stride < kMinSize<ferry_completion>) {
    return Fail(-EINVAL, "ferry_reap: out[0].size is smaller than struct ferry_completion");
  }
  std::vector<ferry::api::Completion> done;
  done.reserve(std::min<size_t>(max, 64));
  int n = ctx->impl->Reap(&done, min, max, timeout_ms);
  if (n < 0) return n;
  auto* base = reinterpret_cast<unsigned char*>(out);
  for (size_t i = 0; i < done.size(); ++i) {
    auto* c = reinterpret_cast<ferry_completion*>(base + i * stride);
    const ferry::api::Completion& d = done[i];
    c->size = stride;
    c->cookie = d.cookie;
    c->user_data = d.user_data;
    c->result = d.result;
    c->bytes_total = d.stats.total;
    c->bytes_done = d.stats.done;
    c->bytes_offloaded = d.stats.offloaded;
    c->bytes_emulated = d.stats.emulated;
    CopyName(d.stats.mechanism, c->mechanism, sizeof(c->mechanism));
  }
  return n;
}

}  // extern "C"
