#include "scsi/sense.h"

#include <algorithm>

#include "base/endian.h"

namespace ferry::scsi {

Sense InvalidFieldInCdb(uint16_t byte, std::optional<uint8_t> bit) {
  return Sense{.key = SenseKey::kIllegalRequest,
               .asc = Asc::kInvalidFieldInCdb,
               .has_field_pointer = true,
               .in_cdb = true,
               .field_byte = byte,
               .field_bit = bit};
}

Sense InvalidFieldInParameterList(uint16_t byte, std::optional<uint8_t> bit) {
  return Sense{.key = SenseKey::kIllegalRequest,
               .asc = Asc::kInvalidFieldInParameterList,
               .has_field_pointer = true,
               .in_cdb = false,
               .field_byte = byte,
               .field_bit = bit};
}

Sense ParameterListError(Asc asc, uint16_t byte, std::optional<uint8_t> bit) {
  Sense s = InvalidFieldInParameterList(byte, bit);
  s.asc = asc;
  return s;
}

namespace {

// SPC-4 4.5.2.4.2 sense-key specific bytes for a field pointer: SKSV, C/D, BPV, bit, byte.
void FieldPointer(const Sense& s, uint8_t* p) {
  p[0] = static_cast<uint8_t>(0x80 | (s.in_cdb ? 0x40 : 0) |
                              (s.field_bit ? 0x08 | (*s.field_bit & 7) : 0));
  StoreBe16(p + 1, s.field_byte);
}

}  // namespace

size_t EncodeSense(const Sense& s, bool descriptor_format, std::span<uint8_t> out) {
  const uint8_t asc = static_cast<uint8_t>(static_cast<uint16_t>(s.asc) >> 8);
  const uint8_t ascq = static_cast<uint8_t>(static_cast<uint16_t>(s.asc));
  if (!descriptor_format) {  // SPC-4 4.5.3
    if (out.size() < 18) return 0;
    std::fill(out.begin(), out.begin() + 18, 0);
    out[0] = 0x70 | (s.information && *s.information <= UINT32_MAX ? 0x80 : 0);
    out[2] = static_cast<uint8_t>(s.key);
    if (s.information && *s.information <= UINT32_MAX) {
      StoreBe32(&out[3], static_cast<uint32_t>(*s.information));
    }
    out[7] = 10;  // additional sense length
    if (s.command_specific) StoreBe32(&out[8], *s.command_specific);
    out[12] = asc;
    out[13] = ascq;
    if (s.has_field_pointer) {
      FieldPointer(s, &out[15]);
    } else if (s.progress) {
      out[15] = 0x80;  // SKSV
      StoreBe16(&out[16], *s.progress);
    }
    return 18;
  }
  // SPC-4 4.5.2: header, then an information descriptor (00h) and a sense-key specific
  // descriptor (02h) when there is something to put in them.
  if (out.size() < kMaxSenseBytes) return 0;
  std::fill(out.begin(), out.begin() + kMaxSenseBytes, 0);
  out[0] = 0x72;
  out[1] = static_cast<uint8_t>(s.key);
  out[2] = asc;
  out[3] = ascq;
  size_t n = 8;
  if (s.information) {
    out[n] = 0x00;
    out[n + 1] = 0x0a;
    out[n + 2] = 0x80;  // VALID
    StoreBe64(&out[n + 4], *s.information);
    n += 12;
  }
  if (s.command_specific) {  // 4.5.2.3 command-specific information descriptor
    out[n] = 0x01;
    out[n + 1] = 0x0a;
    StoreBe64(&out[n + 4], *s.command_specific);
    n += 12;
  }
  if (s.has_field_pointer || s.progress) {
    out[n] = 0x02;
    out[n + 1] = 0x06;
    if (s.has_field_pointer) {
      FieldPointer(s, &out[n + 4]);
    } else {
      out[n + 4] = 0x80;  // SKSV
      StoreBe16(&out[n + 5], *s.progress);
    }
    n += 8;
  }
  out[7] = static_cast<uint8_t>(n - 8);
  return n;
}

Status StatusForIoStatus(IoStatus st) {
  switch (st) {
    case IoStatus::kOk: return Status::kGood;
    case IoStatus::kNoResources: return Status::kTaskSetFull;
    default: return Status::kCheckCondition;
  }
}

Sense SenseForIoStatus(IoStatus st, bool is_write) {
  switch (st) {
    case IoStatus::kOk: return {};
    case IoStatus::kIoError:
      return MakeSense(SenseKey::kMediumError,
                       is_write ? Asc::kWriteError : Asc::kUnrecoveredReadError);
    case IoStatus::kNoSpace:
      return MakeSense(SenseKey::kDataProtect, Asc::kSpaceAllocationFailedWriteProtect);
    case IoStatus::kNoResources:
      return MakeSense(SenseKey::kAbortedCommand, Asc::kInsufficientResources);
    case IoStatus::kInvalid: return MakeSense(SenseKey::kIllegalRequest, Asc::kLbaOutOfRange);
    case IoStatus::kNotSupported:
      return MakeSense(SenseKey::kIllegalRequest, Asc::kInvalidCommandOperationCode);
    case IoStatus::kAborted: return MakeSense(SenseKey::kAbortedCommand, Asc::kNoAdditionalSense);
    case IoStatus::kReadOnly: return MakeSense(SenseKey::kDataProtect, Asc::kWriteProtected);
    case IoStatus::kTimeout:
      return MakeSense(SenseKey::kAbortedCommand, Asc::kCommandTimeoutDuringProcessing);
    case IoStatus::kMiscompare:
      return MakeSense(SenseKey::kMiscompare, Asc::kMiscompareDuringVerify);
  }
  return MakeSense(SenseKey::kHardwareError, Asc::kInternalTargetFailure);
}

}  // namespace ferry::scsi
