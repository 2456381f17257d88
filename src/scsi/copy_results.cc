// What the copy manager reports: SPC-4 6.18 RECEIVE COPY RESULTS (COPY STATUS, FAILURE
// DETAILS, OPERATING PARAMETERS, COPY STATUS(LID4)), SBC-3 RECEIVE ROD TOKEN INFORMATION and
// REPORT ALL ROD TOKENS, and SPC-4 7.8.17 the Third-party Copy VPD page.
#include <algorithm>
#include <bit>

#include "base/endian.h"
#include "scsi/copy_manager.h"
#include "scsi/copy_op.h"
#include "scsi/logical_unit.h"
#include "scsi/opcodes.h"
#include "scsi/token_store.h"

namespace ferry::scsi {
namespace {

// Segment and CSCD descriptor type codes this copy manager implements.
constexpr uint8_t kDescriptorCodes[] = {0x02, 0x07, 0x0a, 0xe4};
// SBC-3 block device ROD token limits (VPD 8Fh 0000h) and WRITE USING TOKEN sizing.
constexpr uint16_t kRangeDescriptorsMax = kMaxRangeDescriptors;
constexpr uint64_t kOptimalTokenTransferBytes = 256ull << 20;
constexpr uint32_t kConcurrentCopies = 255;

uint8_t Log2(uint32_t v) { return static_cast<uint8_t>(std::bit_width(v) - 1); }

// Milliseconds until the copy is worth asking about again: the time it needs to finish at
// the rate it has moved so far, within 1 ms .. 5 s (SPC-4 6.18.3 ESTIMATED STATUS UPDATE
// DELAY). Caller holds op.mu.
uint32_t EstimatedDelayMs(const CopyOp& op) {
  if (!op.running) return 0;
  const double elapsed_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - op.start)
          .count();
  const uint64_t done = op.BytesNowLocked();
  if (done == 0 || op.bytes_total <= done) return 100;
  const double ms =
      elapsed_ms * static_cast<double>(op.bytes_total - done) / static_cast<double>(done);
  return static_cast<uint32_t>(std::clamp(ms, 1.0, 5000.0));
}

void Descriptor(std::vector<uint8_t>* page, uint16_t type, std::span<const uint8_t> body) {
  const size_t at = page->size();
  page->resize(at + 4);
  StoreBe16(&(*page)[at], type);
  page->insert(page->end(), body.begin(), body.end());
  while ((page->size() - at) % 4 != 0) page->push_back(0);  // descriptors end on 4 bytes
  StoreBe16(&(*page)[at + 2], static_cast<uint16_t>(page->size() - at - 4));
}

}  // namespace

// SPC-4 6.18.2 RECEIVE COPY STATUS(LID1).
void CopyManager::ReceiveCopyStatusLid1(Task& t) {
  std::shared_ptr<CopyOp> op = FindOp(t.nexus, t.cdb[2]);
  if (op == nullptr) return t.Fail(InvalidFieldInCdb(2));
  uint8_t d[12] = {};
  StoreBe32(d, 8);
  std::lock_guard l(op->mu);
  d[4] = op->running ? 0x00 : (op->failed || op->cancel ? 0x02 : 0x01);
  StoreBe16(&d[5], static_cast<uint16_t>(std::min<uint32_t>(op->segments_done, 0xffff)));
  uint64_t count = op->BytesNowLocked();
  uint8_t units = 0;  // bytes, then KiB, MiB, ... until the count fits 32 bits
  while (count > UINT32_MAX) {
    count >>= 10;
    ++units;
  }
  d[7] = units;
  StoreBe32(&d[8], static_cast<uint32_t>(count));
  t.Reply(d);
}

// SPC-4 6.18.4 RECEIVE COPY FAILURE DETAILS(LID1): the sense of a failed held copy.
void CopyManager::ReceiveFailureDetails(Task& t) {
  std::shared_ptr<CopyOp> op = FindOp(t.nexus, t.cdb[2]);
  if (op == nullptr) return t.Fail(InvalidFieldInCdb(2));
  std::lock_guard l(op->mu);
  if (op->running || !op->failed) {
    uint8_t d[4] = {};  // no failure to report
    return t.Reply(d);
  }
  std::vector<uint8_t> d(60 + kMaxSenseBytes, 0);
  const size_t n = EncodeSense(op->sense, t.descriptor_sense, {&d[60], kMaxSenseBytes});
  d.resize(60 + n);
  StoreBe32(d.data(), static_cast<uint32_t>(d.size() - 4));
  d[56] = static_cast<uint8_t>(Status::kCheckCondition);
  StoreBe16(&d[58], static_cast<uint16_t>(n));
  t.Reply(d);
}

// SPC-4 6.18.5 RECEIVE COPY OPERATING PARAMETERS: the limits the decoders enforce.
void CopyManager::ReceiveOperatingParameters(LogicalUnit& lu, Task& t) {
  const uint8_t gran = Log2(lu.device().geometry().block_size);
  std::vector<uint8_t> d(44, 0);
  d[4] = 0x01;  // SNLID: LIST ID USAGE 11b is supported
  StoreBe16(&d[8], kMaxCscdDescriptors);
  StoreBe16(&d[10], kMaxSegmentDescriptors);
  StoreBe32(&d[12], kMaxDescriptorListBytes);
  StoreBe32(&d[16], kMaxSegmentBytes);
  // 20-31: no inline data, no held data, no stream devices.
  StoreBe16(&d[34], kConcurrentCopies);
  d[36] = kConcurrentCopies;
  d[37] = gran;  // DATA SEGMENT GRANULARITY: segments move whole blocks
  d[38] = gran;
  d[39] = gran;
  d[43] = sizeof(kDescriptorCodes);
  d.insert(d.end(), std::begin(kDescriptorCodes), std::end(kDescriptorCodes));
  StoreBe32(d.data(), static_cast<uint32_t>(d.size() - 4));
  t.Reply(d);
}

// SPC-4 6.18.3 RECEIVE COPY STATUS(LID4) and SBC-3 RECEIVE ROD TOKEN INFORMATION: the same
// 32-byte header; the latter adds the ROD token a POPULATE TOKEN made.
void CopyManager::ReceiveCopyStatusLid4(Task& t, bool rod_token_info) {
  std::shared_ptr<CopyOp> op = FindOp(t.nexus, LoadBe32(&t.cdb[2]));
  if (op == nullptr) return t.Fail(InvalidFieldInCdb(2));
  std::vector<uint8_t> d(32, 0);
  std::lock_guard l(op->mu);
  d[4] = op->service_action;
  d[5] = static_cast<uint8_t>(op->status);
  StoreBe32(&d[8], EstimatedDelayMs(*op));
  if (!op->running && op->failed) {
    uint8_t sense[kMaxSenseBytes];
    const size_t n = EncodeSense(op->sense, t.descriptor_sense, sense);
    d[12] = static_cast<uint8_t>(Status::kCheckCondition);
    d[13] = static_cast<uint8_t>(n);
    d[14] = static_cast<uint8_t>(n);
    d.insert(d.end(), sense, sense + n);
  }
  const uint64_t bytes = op->BytesNowLocked();
  d[15] = op->count_blocks ? 0xf1 : 0x00;  // logical blocks, or bytes
  StoreBe64(&d[16], op->count_blocks ? bytes / op->block_size : bytes);
  StoreBe16(&d[24], static_cast<uint16_t>(std::min<uint32_t>(op->segments_done, 0xffff)));
  if (rod_token_info) {
    const size_t at = d.size();
    d.resize(at + 6);
    if (op->has_token && !op->running) {
      StoreBe32(&d[at], 2 + kRodTokenBytes);
      d.insert(d.end(), op->token.begin(), op->token.end());
    }
  }
  StoreBe32(d.data(), static_cast<uint32_t>(d.size() - 4));
  t.Reply(d);
}

// SBC-3 REPORT ALL ROD TOKENS: the management part (first 96 bytes) of each live token
// made from this LU.
void CopyManager::ReportAllRodTokens(LogicalUnit& lu, Task& t) {
  std::vector<uint8_t> d(8, 0);
  for (const auto& m : tokens_->ManagementTokens(&lu)) d.insert(d.end(), m.begin(), m.end());
  StoreBe32(d.data(), static_cast<uint32_t>(d.size() - 4));
  t.Reply(d);
}

// SPC-4 7.8.17 Third-party Copy VPD page.
std::vector<uint8_t> CopyManager::ThirdPartyCopyVpd(const LogicalUnit& lu) const {
  const uint32_t bs = const_cast<LogicalUnit&>(lu).device().geometry().block_size;
  std::vector<uint8_t> p = {0x00, 0x8f, 0, 0};
  {  // 0000h Block Device ROD Token Limits (SBC-3): what Windows ODX sizes requests by
    uint8_t b[32] = {};
    StoreBe16(&b[6], kRangeDescriptorsMax);
    StoreBe32(&b[8], options_.max_token_timeout_s);
    StoreBe32(&b[12], options_.default_token_timeout_s);
    StoreBe64(&b[16], kMaxTokenTransferBytes / bs);
    StoreBe64(&b[24], kOptimalTokenTransferBytes / bs);
    Descriptor(&p, 0x0000, b);
  }
  {  // 0001h Supported Commands: each third-party copy opcode with its service actions
    std::vector<uint8_t> b(1, 0);
    for (uint8_t op : {kThirdPartyCopyOut, kThirdPartyCopyIn}) {
      std::vector<uint8_t> sas;
      for (const CommandInfo& ci : SupportedCommands()) {
        if (ci.opcode == op) sas.push_back(ci.sa);
      }
      b.push_back(op);
      b.push_back(static_cast<uint8_t>(sas.size()));
      b.insert(b.end(), sas.begin(), sas.end());
    }
    b[0] = static_cast<uint8_t>(b.size() - 1);
    Descriptor(&p, 0x0001, b);
  }
  {  // 0004h Parameter Data
    uint8_t b[28] = {};
    StoreBe16(&b[4], kMaxCscdDescriptors);
    StoreBe16(&b[6], kMaxSegmentDescriptors);
    StoreBe32(&b[8], kMaxDescriptorListBytes);
    Descriptor(&p, 0x0004, b);  // MAXIMUM INLINE DATA LENGTH 0
  }
  {  // 0008h Supported Descriptors
    std::vector<uint8_t> b = {static_cast<uint8_t>(sizeof(kDescriptorCodes))};
    b.insert(b.end(), std::begin(kDescriptorCodes), std::end(kDescriptorCodes));
    Descriptor(&p, 0x0008, b);
  }
  {  // 000Ch Supported CSCD Descriptor IDs: FFFFh, the LU that receives the command
    uint8_t b[4] = {0, 2, 0xff, 0xff};
    Descriptor(&p, 0x000c, b);
  }
  {  // 0106h ROD Token Features: local tokens only; inactivity-bound lifetimes
    uint8_t b[92] = {};
    StoreBe32(&b[12], 1);                             // MINIMUM TOKEN LIFETIME (s)
    StoreBe32(&b[16], options_.max_token_timeout_s);  // MAXIMUM TOKEN LIFETIME without use
    StoreBe32(&b[20], options_.max_token_timeout_s);  // MAXIMUM TOKEN INACTIVITY TIMEOUT
    StoreBe16(&b[42], 48);                            // one block device ROD descriptor
    uint8_t* r = &b[44];
    r[0] = 0x00;  // direct access block device
    StoreBe16(&r[2], 44);
    StoreBe16(&r[6], 1);  // OPTIMAL BLOCK ROD LENGTH GRANULARITY (blocks)
    StoreBe64(&r[8], kMaxTokenTransferBytes);
    StoreBe64(&r[16], kOptimalTokenTransferBytes);
    StoreBe64(&r[24], kOptimalTokenTransferBytes);
    StoreBe64(&r[32], kOptimalTokenTransferBytes);
    Descriptor(&p, 0x0106, b);
  }
  {  // 0108h Supported ROD Token and ROD Types: our PIT tokens in and out; the zero token in
    uint8_t b[4 + 2 * 64] = {};
    StoreBe16(&b[2], 2 * 64);
    StoreBe32(&b[4], kRodTypePitChangeVulnerable);
    b[8] = 0x03;  // TOKEN IN, TOKEN OUT
    StoreBe32(&b[4 + 64], kRodTypeBlockDeviceZero);
    b[8 + 64] = 0x02;  // TOKEN IN
    Descriptor(&p, 0x0108, b);
  }
  {  // 8001h General Copy Operations
    uint8_t b[32] = {};
    StoreBe32(&b[0], kConcurrentCopies);
    StoreBe32(&b[4], kConcurrentCopies);
    StoreBe32(&b[8], kMaxSegmentBytes);
    b[12] = Log2(bs);
    b[13] = Log2(bs);
    Descriptor(&p, 0x8001, b);
  }
  StoreBe16(&p[2], static_cast<uint16_t>(p.size() - 4));
  return p;
}

}  // namespace ferry::scsi
