// What each block of a LUN may hold after ferryd is killed (issue 19, tests/crash/run.sh).
//
// The workload never has two commands in flight on one block, so the writes to a block form
// a sequence and "newer" is well defined. A block's content is named by the write that made
// it: the LBA its bytes were generated for (an EXTENDED COPY moves bytes made for another
// LBA) and a generation; generation 0 is the initial zeroes.
//
// Durability is SBC-4's: a write completed with FUA is durable at its completion; a write
// completed without FUA is durable once a SYNCHRONIZE CACHE issued after that completion has
// completed. After a kill the block must hold its durable content or one that came after it
// (acknowledged, or still in flight, or failed: a command whose outcome the initiator never
// learned may or may not have reached the medium). Anything else is a lost write.
#pragma once

#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace ferry::crash_test {

struct Content {
  uint64_t origin_lba = 0;
  uint64_t gen = 0;  // 0: never written (zeroes)
  bool operator==(const Content&) const = default;
};

// The bytes of `c` for one block of `block_size` bytes (at least 32): a 32-byte header
// (magic, origin LBA, generation, its complement) then a pattern both name. Generation 0 is
// all zeroes.
void FillBlock(Content c, std::span<uint8_t> block);
// The content `block` holds, or nullopt when it is neither zeroes nor a whole block of this
// format (a torn or foreign block).
std::optional<Content> DecodeBlock(std::span<const uint8_t> block);

class Model {
 public:
  explicit Model(uint64_t blocks = 0);

  uint64_t blocks() const { return blocks_.size(); }
  bool busy(uint64_t lba) const { return blocks_[lba].inflight.has_value(); }
  // The content a block holds for certain (no command in flight, and the last one's outcome
  // known), else nullopt. EXTENDED COPY only reads such blocks.
  std::optional<Content> Known(uint64_t lba) const;

  // A write (or a copy into the block) carrying `c` was sent.
  void Issue(uint64_t lba, Content c);
  // It completed GOOD; `fua`: with FUA.
  void Ack(uint64_t lba, bool fua);
  // It failed or its outcome is unknown (the connection went): either content may be there.
  void Fail(uint64_t lba);
  // It was never sent after all (a step before it failed): the block is as it was.
  void Cancel(uint64_t lba) { blocks_[lba].inflight.reset(); }
  // A SYNCHRONIZE CACHE was sent: the returned mark covers every write completed so far.
  uint64_t SyncIssued() const { return acks_; }
  // That SYNCHRONIZE CACHE completed GOOD.
  void SyncDone(uint64_t mark);

  // "" when the block may hold `got` after a crash, else what was expected.
  std::string Check(uint64_t lba, Content got) const;
  // The same without a crash (bench/soak): a read sees the newest acknowledged content, or a
  // write after it whose outcome is unknown; durability does not matter.
  std::string CheckVisible(uint64_t lba, Content got) const;
  // After a restart: the block holds `got` (checked first); that is now its durable state.
  void Observe(uint64_t lba, Content got);

  // Completions counted so far (writes and blocks copied into), over every run.
  uint64_t acked() const { return acks_; }
  // A generation no run of this model has used.
  uint64_t NewGen() { return ++gen_; }

  std::string Save() const;
  // nullopt when `text` is not a saved model.
  static std::optional<Model> Load(const std::string& text);

 private:
  static constexpr uint64_t kUnknown = std::numeric_limits<uint64_t>::max();
  struct Later {
    Content content;
    uint64_t ack = kUnknown;  // the completion's sequence number; kUnknown: failed
  };
  struct Block {
    Content durable;
    std::vector<Later> later;  // after `durable`, oldest first
    std::optional<Content> inflight;
  };
  std::vector<Block> blocks_;
  uint64_t acks_ = 0;
  uint64_t gen_ = 0;
};

}  // namespace ferry::crash_test
