// CRC32C (Castagnoli): the reflected polynomial 0x82F63B78 (0x1EDC6F41 bit-reversed), initial
// value 0xFFFFFFFF and final XOR 0xFFFFFFFF, as in iSCSI (RFC 3720 B.4), ext4 and LevelDB.
//
// Software only, slicing-by-8: table k holds the CRC of a byte followed by k zero bytes, so eight
// input bytes are folded with eight independent lookups per step. The 8 KiB of tables are computed
// at compile time.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "persistence/codec/codec.h"

namespace atomizer::codec {
namespace {

constexpr uint32_t kCastagnoliReflected = 0x82F63B78u;
constexpr size_t kSliceBytes = 8;

// Plain arrays and raw pointers (not std::array) so that unoptimized sanitizer builds, which do
// not inline operator[], still checksum a 64 MiB payload in well under a second.
struct Crc32cTables {
  uint32_t table[kSliceBytes][256];
};

constexpr Crc32cTables MakeCrc32cTables() {
  Crc32cTables tables{};
  for (uint32_t byte = 0; byte < 256; ++byte) {
    uint32_t crc = byte;
    for (int bit = 0; bit < 8; ++bit) crc = (crc >> 1) ^ ((crc & 1u) ? kCastagnoliReflected : 0u);
    tables.table[0][byte] = crc;
  }
  for (size_t k = 1; k < kSliceBytes; ++k) {
    for (uint32_t byte = 0; byte < 256; ++byte) {
      const uint32_t previous = tables.table[k - 1][byte];
      tables.table[k][byte] = (previous >> 8) ^ tables.table[0][previous & 0xFFu];
    }
  }
  return tables;
}

constexpr Crc32cTables kCrc32cTables = MakeCrc32cTables();
static_assert(kCrc32cTables.table[0][1] == 0xF26B8303u, "CRC32C table entry for byte 0x01");

}  // namespace

uint32_t Crc32c(std::string_view data) {
  const uint32_t* const t0 = kCrc32cTables.table[0];
  const uint32_t* const t1 = kCrc32cTables.table[1];
  const uint32_t* const t2 = kCrc32cTables.table[2];
  const uint32_t* const t3 = kCrc32cTables.table[3];
  const uint32_t* const t4 = kCrc32cTables.table[4];
  const uint32_t* const t5 = kCrc32cTables.table[5];
  const uint32_t* const t6 = kCrc32cTables.table[6];
  const uint32_t* const t7 = kCrc32cTables.table[7];
  const auto* p = reinterpret_cast<const unsigned char*>(data.data());
  const unsigned char* const end = p + data.size();
  uint32_t crc = 0xFFFFFFFFu;
  // The reflected CRC consumes the lowest-addressed byte first, so each 4-byte group is loaded
  // little-endian.
  while (end - p >= static_cast<ptrdiff_t>(kSliceBytes)) {
    const uint32_t low = (uint32_t{p[0]} | (uint32_t{p[1]} << 8) | (uint32_t{p[2]} << 16) |
                          (uint32_t{p[3]} << 24)) ^
                         crc;
    crc = t7[low & 0xFFu] ^ t6[(low >> 8) & 0xFFu] ^ t5[(low >> 16) & 0xFFu] ^ t4[low >> 24] ^
          t3[p[4]] ^ t2[p[5]] ^ t1[p[6]] ^ t0[p[7]];
    p += kSliceBytes;
  }
  for (; p != end; ++p) crc = t0[(crc ^ *p) & 0xFFu] ^ (crc >> 8);
  return crc ^ 0xFFFFFFFFu;
}

}  // namespace atomizer::codec
