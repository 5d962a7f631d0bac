// CRC32C (Castagnoli): the reflected polynomial 0x82F63B78 (0x1EDC6F41 bit-reversed), initial
// value 0xFFFFFFFF and final XOR 0xFFFFFFFF, as in iSCSI (RFC 3720 B.4), ext4 and LevelDB.
//
// Two implementations with the same results:
// - Portable, slicing-by-8: table k holds the CRC of a byte followed by k zero bytes, so eight
//   input bytes are folded with eight independent lookups per step. The 8 KiB of tables are
//   computed at compile time.
// - x86-64 with SSE4.2: the CRC32 instruction, whose polynomial is CRC32C's, eight bytes per
//   instruction. Chosen at run time (the CPU is asked once), so the binary still runs on a CPU
//   without SSE4.2. Every record encode and decode checksums its bytes, so this is on every
//   storage operation's path.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

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

#if defined(__x86_64__)
// The raw CRC32 instruction leaves the pre- and post-conditioning to the caller, like the table
// loop below: the same initial value and final XOR are applied by Crc32c.
__attribute__((target("sse4.2"))) uint32_t Crc32cSse42(const unsigned char* p,
                                                       const unsigned char* end, uint32_t crc) {
  uint64_t crc64 = crc;
  while (end - p >= 8) {
    uint64_t word;
    std::memcpy(&word, p, sizeof(word));  // unaligned; the instruction takes it little-endian
    crc64 = _mm_crc32_u64(crc64, word);
    p += 8;
  }
  crc = static_cast<uint32_t>(crc64);
  for (; p != end; ++p) crc = _mm_crc32_u8(crc, *p);
  return crc;
}

bool CpuHasSse42() {
  static const bool has_sse42 = __builtin_cpu_supports("sse4.2");
  return has_sse42;
}
#endif

uint32_t Crc32cTables8(const unsigned char* p, const unsigned char* end, uint32_t crc) {
  const uint32_t* const t0 = kCrc32cTables.table[0];
  const uint32_t* const t1 = kCrc32cTables.table[1];
  const uint32_t* const t2 = kCrc32cTables.table[2];
  const uint32_t* const t3 = kCrc32cTables.table[3];
  const uint32_t* const t4 = kCrc32cTables.table[4];
  const uint32_t* const t5 = kCrc32cTables.table[5];
  const uint32_t* const t6 = kCrc32cTables.table[6];
  const uint32_t* const t7 = kCrc32cTables.table[7];
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
  return crc;
}

}  // namespace

uint32_t Crc32c(std::string_view data) {
  const auto* p = reinterpret_cast<const unsigned char*>(data.data());
#if defined(__x86_64__)
  if (CpuHasSse42()) return Crc32cSse42(p, p + data.size(), 0xFFFFFFFFu) ^ 0xFFFFFFFFu;
#endif
  return Crc32cTables8(p, p + data.size(), 0xFFFFFFFFu) ^ 0xFFFFFFFFu;
}

uint32_t Crc32cPortable(std::string_view data) {
  const auto* p = reinterpret_cast<const unsigned char*>(data.data());
  return Crc32cTables8(p, p + data.size(), 0xFFFFFFFFu) ^ 0xFFFFFFFFu;
}

}  // namespace atomizer::codec
