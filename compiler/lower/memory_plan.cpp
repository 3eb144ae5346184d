// Memory planning: slots whose lifetimes do not overlap share arena space.
// A slot lives from the launch that writes it to the last launch that reads
// it; pinned slots (sources, targets, commit pairs) live throughout, because
// the caller reads or fills them between runs. Offsets are assigned in
// launch order, first fit from a free list, 64-byte aligned. A launch's
// operands are still live while its result and scratch buffers are placed,
// so no kernel ever sees two overlapping buffers (they are noalias).
#include <algorithm>
#include <map>

#include "compiler/lower/lower.h"

namespace nnc {

namespace {

class FreeList {
 public:
  int64_t allocate(int64_t size) {
    for (auto it = free_.begin(); it != free_.end(); ++it)
      if (it->second >= size) {
        const int64_t at = it->first, left = it->second - size;
        free_.erase(it);
        if (left) free_[at + size] = left;
        return at;
      }
    // Extend the arena, absorbing a free block at its end.
    int64_t at = end_;
    if (!free_.empty()) {
      auto last = std::prev(free_.end());
      if (last->first + last->second == end_) {
        at = last->first;
        free_.erase(last);
      }
    }
    end_ = at + size;
    return at;
  }

  void release(int64_t at, int64_t size) {
    auto [it, _] = free_.emplace(at, size);
    if (auto next = std::next(it); next != free_.end() && it->first + it->second == next->first) {
      it->second += next->second;
      free_.erase(next);
    }
    if (it != free_.begin())
      if (auto prev = std::prev(it); prev->first + prev->second == it->first) {
        prev->second += it->second;
        free_.erase(it);
      }
  }

  int64_t end() const { return end_; }

 private:
  std::map<int64_t, int64_t> free_;  // offset -> size
  int64_t end_ = 0;
};

}  // namespace

void planMemory(Program& p, const std::vector<bool>& pinned) {
  const size_t n = p.slots.size();
  std::vector<int> first(n, -1), last(n, -1);
  for (size_t l = 0; l < p.launches.size(); ++l)
    for (int s : p.launches[l].slots) {
      if (first[static_cast<size_t>(s)] < 0) first[static_cast<size_t>(s)] = static_cast<int>(l);
      last[static_cast<size_t>(s)] = static_cast<int>(l);
    }
  FreeList arena;
  for (size_t s = 0; s < n; ++s)
    if (pinned[s] || first[s] < 0) p.slots[s].offset = arena.allocate(alignedFloats(p.slots[s].size));
  std::vector<std::vector<size_t>> born(p.launches.size()), dying(p.launches.size());
  for (size_t s = 0; s < n; ++s)
    if (!pinned[s] && first[s] >= 0) {
      born[static_cast<size_t>(first[s])].push_back(s);
      dying[static_cast<size_t>(last[s])].push_back(s);
    }
  for (size_t l = 0; l < p.launches.size(); ++l) {
    for (size_t s : born[l]) p.slots[s].offset = arena.allocate(alignedFloats(p.slots[s].size));
    for (size_t s : dying[l]) arena.release(p.slots[s].offset, alignedFloats(p.slots[s].size));
  }
  p.arenaFloats = arena.end();
}

}  // namespace nnc
