#include "crash_model.h"

#include <algorithm>
#include <cstring>
#include <sstream>

namespace ferry::crash_test {
namespace {

constexpr uint64_t kMagic = 0x4645525259435253ull;  // "FERRYCRS"

uint64_t Mix(uint64_t x) {  // splitmix64's finaliser
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

void Put64(uint8_t* p, uint64_t v) { std::memcpy(p, &v, 8); }
uint64_t Get64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

std::string Name(Content c) {
  if (c.gen == 0) return "zeroes";
  return "gen " + std::to_string(c.gen) + " (made for LBA " + std::to_string(c.origin_lba) + ")";
}

}  // namespace

void FillBlock(Content c, std::span<uint8_t> block) {
  if (c.gen == 0) {
    std::fill(block.begin(), block.end(), uint8_t{0});
    return;
  }
  Put64(block.data(), kMagic);
  Put64(block.data() + 8, c.origin_lba);
  Put64(block.data() + 16, c.gen);
  Put64(block.data() + 24, ~c.gen);
  const uint64_t seed = Mix(c.origin_lba * 0x100000001b3ull ^ c.gen);
  for (size_t off = 32; off + 8 <= block.size(); off += 8)
    Put64(block.data() + off, Mix(seed + off));
}

std::optional<Content> DecodeBlock(std::span<const uint8_t> block) {
  if (block.size() < 32) return std::nullopt;
  if (std::all_of(block.begin(), block.end(), [](uint8_t b) { return b == 0; })) {
    return Content{};
  }
  if (Get64(block.data()) != kMagic) return std::nullopt;
  const Content c{.origin_lba = Get64(block.data() + 8), .gen = Get64(block.data() + 16)};
  if (c.gen == 0 || Get64(block.data() + 24) != ~c.gen) return std::nullopt;
  std::vector<uint8_t> want(block.size());
  FillBlock(c, want);
  if (!std::equal(block.begin(), block.end(), want.begin())) return std::nullopt;
  return c;
}

Model::Model(uint64_t blocks) : blocks_(blocks) {}

std::optional<Content> Model::Known(uint64_t lba) const {
  const Block& b = blocks_[lba];
  if (b.inflight) return std::nullopt;
  if (b.later.empty()) return b.durable;
  if (b.later.back().ack == kUnknown) return std::nullopt;
  return b.later.back().content;
}

void Model::Issue(uint64_t lba, Content c) { blocks_[lba].inflight = c; }

void Model::Ack(uint64_t lba, bool fua) {
  Block& b = blocks_[lba];
  const Content c = *b.inflight;
  b.inflight.reset();
  ++acks_;
  if (fua) {
    b.durable = c;
    b.later.clear();
  } else {
    b.later.push_back({c, acks_});
  }
}

void Model::Fail(uint64_t lba) {
  Block& b = blocks_[lba];
  b.later.push_back({*b.inflight, kUnknown});
  b.inflight.reset();
}

void Model::SyncDone(uint64_t mark) {
  for (Block& b : blocks_) {
    // The newest completion the sync covers becomes durable, with everything before it.
    auto it = std::find_if(b.later.rbegin(), b.later.rend(),
                           [mark](const Later& l) { return l.ack != kUnknown && l.ack <= mark; });
    if (it == b.later.rend()) continue;
    b.durable = it->content;
    b.later.erase(b.later.begin(), it.base());
  }
}

std::string Model::Check(uint64_t lba, Content got) const {
  const Block& b = blocks_[lba];
  if (got == b.durable) return "";
  for (const Later& l : b.later) {
    if (got == l.content) return "";
  }
  if (b.inflight && got == *b.inflight) return "";
  std::string want = "durable " + Name(b.durable);
  for (const Later& l : b.later) want += ", or " + Name(l.content);
  if (b.inflight) want += ", or in flight " + Name(*b.inflight);
  return "LBA " + std::to_string(lba) + " holds " + Name(got) + "; expected " + want;
}

std::string Model::CheckVisible(uint64_t lba, Content got) const {
  const Block& b = blocks_[lba];
  Content newest = b.durable;
  size_t after = 0;  // later[after..] came after `newest` and were not acknowledged
  for (size_t i = 0; i < b.later.size(); ++i) {
    if (b.later[i].ack != kUnknown) {
      newest = b.later[i].content;
      after = i + 1;
    }
  }
  if (got == newest) return "";
  std::string want = Name(newest);
  for (size_t i = after; i < b.later.size(); ++i) {
    if (got == b.later[i].content) return "";
    want += ", or unacknowledged " + Name(b.later[i].content);
  }
  if (b.inflight && got == *b.inflight) return "";
  if (b.inflight) want += ", or in flight " + Name(*b.inflight);
  return "LBA " + std::to_string(lba) + " holds " + Name(got) + "; expected " + want;
}

void Model::Observe(uint64_t lba, Content got) {
  Block& b = blocks_[lba];
  b.durable = got;
  b.later.clear();
  b.inflight.reset();
}

std::string Model::Save() const {
  // "ferry-crash-model 1 <blocks> <acks> <last generation>", then one line per block that is not
  // plain zeroes:
  // "<lba> <durable lba> <durable gen> <n> (<lba> <gen> <ack>)*n [<inflight lba> <gen>]".
  std::ostringstream out;
  out << "ferry-crash-model 1 " << blocks_.size() << " " << acks_ << " " << gen_ << "\n";
  for (uint64_t i = 0; i < blocks_.size(); ++i) {
    const Block& b = blocks_[i];
    if (b.durable.gen == 0 && b.later.empty() && !b.inflight) continue;
    out << i << " " << b.durable.origin_lba << " " << b.durable.gen << " " << b.later.size();
    for (const Later& l : b.later)
      out << " " << l.content.origin_lba << " " << l.content.gen << " " << l.ack;
    if (b.inflight) out << " " << b.inflight->origin_lba << " " << b.inflight->gen;
    out << "\n";
  }
  return out.str();
}

std::optional<Model> Model::Load(const std::string& text) {
  std::istringstream in(text);
  std::string magic;
  int version = 0;
  uint64_t blocks = 0, acks = 0, gen = 0;
  if (!(in >> magic >> version >> blocks >> acks >> gen) || magic != "ferry-crash-model" ||
      version != 1 || blocks > (uint64_t{1} << 32)) {
    return std::nullopt;
  }
  Model m(blocks);
  m.acks_ = acks;
  m.gen_ = gen;
  std::string line;
  std::getline(in, line);
  while (std::getline(in, line)) {
    std::istringstream l(line);
    uint64_t lba = 0, n = 0;
    Block b;
    if (!(l >> lba >> b.durable.origin_lba >> b.durable.gen >> n) || lba >= blocks ||
        n > 1'000'000) {
      return std::nullopt;
    }
    for (uint64_t k = 0; k < n; ++k) {
      Later x;
      if (!(l >> x.content.origin_lba >> x.content.gen >> x.ack)) return std::nullopt;
      b.later.push_back(x);
    }
    Content c;
    if (l >> c.origin_lba >> c.gen) b.inflight = c;
    m.blocks_[lba] = std::move(b);
  }
  return m;
}

}  // namespace ferry::crash_test
