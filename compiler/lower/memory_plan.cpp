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

namespace {

// What the plan places: a slot, or a group of slots as one block (members
// in order, each alignedFloats long).
struct Block {
  std::vector<size_t> slots;
  int64_t size = 0;
  int first = -1, last = -1;
  bool pinned = false;
};

std::vector<Block> blocksOf(const Program& p, const std::vector<bool>& pinned) {
  std::vector<int> groupOf(p.slots.size(), -1);
  for (size_t g = 0; g < p.groups.size(); ++g)
    for (int s : p.groups[g]) groupOf[static_cast<size_t>(s)] = static_cast<int>(g);
  std::vector<Block> units;
  std::vector<int> unitOfGroup(p.groups.size(), -1);
  std::vector<int> unitOf(p.slots.size());
  for (size_t s = 0; s < p.slots.size(); ++s) {
    const int g = groupOf[s];
    if (g >= 0 && unitOfGroup[static_cast<size_t>(g)] >= 0) {
      unitOf[s] = unitOfGroup[static_cast<size_t>(g)];
      continue;
    }
    unitOf[s] = static_cast<int>(units.size());
    Block& u = units.emplace_back();
    if (g < 0) {
      u.slots = {s};
    } else {
      unitOfGroup[static_cast<size_t>(g)] = unitOf[s];
      for (int m : p.groups[static_cast<size_t>(g)]) u.slots.push_back(static_cast<size_t>(m));
    }
    for (size_t m : u.slots) {
      u.size += alignedFloats(p.slots[m].size);
      u.pinned = u.pinned || (!pinned.empty() && pinned[m]);
    }
  }
  for (size_t l = 0; l < p.launches.size(); ++l)
    for (int s : p.launches[l].slots) {
      Block& u = units[static_cast<size_t>(unitOf[static_cast<size_t>(s)])];
      if (u.first < 0) u.first = static_cast<int>(l);
      u.last = static_cast<int>(l);
    }
  return units;
}

void place(Program& p, const Block& u, int64_t at) {
  for (size_t m : u.slots) {
    p.slots[m].offset = at;
    at += alignedFloats(p.slots[m].size);
  }
}

}  // namespace

void planMemory(Program& p, const std::vector<bool>& pinned) {
  const std::vector<Block> units = blocksOf(p, pinned);
  FreeList arena;
  for (const Block& u : units)
    if (u.pinned || u.first < 0) place(p, u, arena.allocate(u.size));
  std::vector<std::vector<size_t>> born(p.launches.size()), dying(p.launches.size());
  for (size_t i = 0; i < units.size(); ++i)
    if (!units[i].pinned && units[i].first >= 0) {
      born[static_cast<size_t>(units[i].first)].push_back(i);
      dying[static_cast<size_t>(units[i].last)].push_back(i);
    }
  std::vector<int64_t> at(units.size(), 0);
  for (size_t l = 0; l < p.launches.size(); ++l) {
    for (size_t i : born[l]) {
      at[i] = arena.allocate(units[i].size);
      place(p, units[i], at[i]);
    }
    for (size_t i : dying[l]) arena.release(at[i], units[i].size);
  }
  p.arenaFloats = arena.end();
}

void placeInOrder(Program& p) {
  int64_t at = 0;
  for (const Block& u : blocksOf(p, {})) {
    place(p, u, at);
    at += u.size;
  }
  p.arenaFloats = at;
}

}  // namespace nnc
