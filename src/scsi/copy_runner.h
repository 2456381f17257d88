// Runs the data movement of one copy operation (the segments of an EXTENDED COPY, the
// ranges of a WRITE USING TOKEN) as copy-engine requests, one after another, on the copy
// manager's reactor; then reports to the command's reactor. Internal to the copy manager.
//
// A subclass produces the steps lazily, so that a segment is resolved (CSCDs, capacity,
// write protection) only when the copy reaches it: SPC-4 processes segments in order and
// reports the failing one with the ones before it done.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <variant>

#include "block/splitter.h"
#include "ferry/copy.h"
#include "io/reactor.h"
#include "scsi/logical_unit.h"
#include "scsi/sense.h"

namespace ferry::scsi {

class CopyManager;
struct CopyOp;
struct TokenEntry;

class CopyRunner : public std::enable_shared_from_this<CopyRunner> {
 public:
  struct Copy {  // one engine request; desc.src == nullptr: write zeroes to dsts[0]
    copy::CopyDescriptor desc;
    const LogicalUnit* dst_lu = nullptr;  // its tokens are revoked over the written ranges
  };
  struct Skip {};  // a step that moves no data (verify CSCD, zero-length segment)
  struct End {};
  using Step = std::variant<Copy, Skip, Sense, End>;

  // `task` and `done`: the foreground command, completed when the copy ends; null task
  // (IMMED): the command already completed and only the record learns the result.
  CopyRunner(std::shared_ptr<CopyManager> manager, std::shared_ptr<CopyOp> op, Task* task,
             TaskDone done);
  virtual ~CopyRunner();

  // Called on the command's reactor; the copy starts on the manager's.
  void Start();

 protected:
  // Step `index` (0-based), on the manager's reactor.
  virtual Step Produce(size_t index) = 0;
  // The sense for a failed engine copy of step `index`.
  virtual Sense CopyFailed(size_t index, const copy::CopyResult& r);
  // After the last step: a last check (a token revoked while it was read), or nothing.
  virtual std::optional<Sense> Verify() { return std::nullopt; }
  // A token whose own ranges this copy may overwrite without revoking it.
  const TokenEntry* own_token_ = nullptr;
  CopyManager& manager() { return *manager_; }

 private:
  void Pump();
  // Locks the destination blocks of `c` (range_lock.h) against COMPARE AND WRITE and the
  // other writers, then runs it; Unlock() when its last write is done.
  void RunCopy(Copy c);
  void RunLocked(Copy c);
  void Unlock();
  void Zero(size_t extent);
  void Zeroed(size_t extent, IoStatus st);
  void StepDone(uint64_t bytes);
  void Finish(std::optional<Sense> sense);
  void NoteWrites(const Copy& c);

  std::shared_ptr<CopyManager> manager_;
  std::shared_ptr<CopyOp> op_;
  Task* task_;
  TaskDone done_;
  io::Reactor* origin_;
  size_t index_ = 0;
  Copy written_;  // destinations of the engine copy in flight
  const LogicalUnit* locked_lu_ = nullptr;
  RangeLock::Holder* lock_ = nullptr;  // the step's destination range, while it runs
  Copy zeroing_;
  block::IoRequest zero_req_;
  std::optional<Sense> result_;
};

}  // namespace ferry::scsi
