// Debian's Abseil is built with ABSL_OPTION_USE_STD_STRING_VIEW 0, so absl::string_view is its
// own type and absl::StrCat/StrSplit/Status do not accept std::string_view. Our APIs use
// std::string_view; these two conversions cross the boundary without copying.
#ifndef ATOMIZER_BASE_STRING_VIEW_H_
#define ATOMIZER_BASE_STRING_VIEW_H_

#include <string_view>

#include "absl/strings/string_view.h"

namespace atomizer {

inline absl::string_view AsAbsl(std::string_view s) { return absl::string_view(s.data(), s.size()); }
inline std::string_view AsStd(absl::string_view s) { return std::string_view(s.data(), s.size()); }

}  // namespace atomizer

#endif  // ATOMIZER_BASE_STRING_VIEW_H_
