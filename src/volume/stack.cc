#include "volume/stack.h"

namespace ferry::volume {

Stack::CopyPin& Stack::CopyPin::operator=(CopyPin&& o) noexcept {
  if (this != &o) {
    Release();
    stack_ = o.stack_;
    id_ = o.id_;
    generation_ = o.generation_;
    o.stack_ = nullptr;
  }
  return *this;
}

void Stack::CopyPin::Release() {
  if (stack_ == nullptr) return;
  Stack* s = stack_;
  stack_ = nullptr;
  s->Unpin(id_);
}

std::shared_ptr<Table> ActiveTableOf(const block::BlockDevice& dev) {
  const Stack* s = dev.stack();
  return s != nullptr ? s->active_table() : nullptr;
}

}  // namespace ferry::volume
