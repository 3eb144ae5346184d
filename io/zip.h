// The small part of the ZIP format that NPZ archives need: reading stored and
// deflated members of a single-disk, non-ZIP64 archive, and writing stored
// members. Enough for np.savez / np.savez_compressed / np.load, no more.
#pragma once
#include <string>
#include <string_view>
#include <vector>

#include "base/diagnostics.h"

namespace nnc {

struct ZipMember {
  std::string name;
  std::string data;  // uncompressed contents
};

// Members in central-directory order, CRC-checked. `what` names the archive in
// errors. Every length and offset is checked against `bytes`, so hostile
// input yields an error, never an out-of-bounds read or a huge allocation.
// The bytes of a ZIP archive, read only after its end record was found at
// the very end of the file (bytes after it are refused, as is anything but a
// regular file).
Expected<std::string> readZipFile(const std::string& path);

Expected<std::vector<ZipMember>> parseZip(std::string_view bytes, const std::string& what);

// A whole archive of stored (uncompressed) members with a fixed timestamp, so
// the same input gives the same bytes. Fails only past the non-ZIP64 limits
// (65535 members, 4 GiB).
Expected<std::string> buildZip(const std::vector<ZipMember>& members);

}  // namespace nnc
