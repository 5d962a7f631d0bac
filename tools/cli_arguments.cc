#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "tools/cli.h"

namespace atomizer::cli {

std::string Arguments::Get(const std::string& name, const std::string& fallback) const {
  const auto flag = flags.find(name);
  return flag == flags.end() ? fallback : flag->second;
}

absl::StatusOr<long> Arguments::GetInt(const std::string& name, long fallback, long low,
                                       long high) const {
  const auto flag = flags.find(name);
  if (flag == flags.end()) return fallback;
  long value = 0;
  if (!absl::SimpleAtoi(flag->second, &value) || value < low || value > high) {
    return absl::InvalidArgumentError(absl::StrCat("--", name, ": expected an integer in [", low,
                                                   ", ", high, "], got \"", flag->second, "\""));
  }
  return value;
}

absl::StatusOr<Arguments> ParseArguments(int argc, char** argv, int first,
                                         const std::vector<std::string>& switches) {
  Arguments arguments;
  for (int i = first; i < argc; ++i) {
    const std::string word = argv[i];
    if (word.rfind("--", 0) != 0) {
      arguments.positional.push_back(word);
      continue;
    }
    const size_t equals = word.find('=');
    std::string name = word.substr(2, equals == std::string::npos ? std::string::npos : equals - 2);
    if (equals != std::string::npos) {
      arguments.flags[name] = word.substr(equals + 1);
    } else if (std::find(switches.begin(), switches.end(), name) != switches.end()) {
      arguments.flags[name] = "true";
    } else if (i + 1 < argc) {
      arguments.flags[name] = argv[++i];
    } else {
      return absl::InvalidArgumentError(absl::StrCat("--", name, ": missing value"));
    }
  }
  return arguments;
}

}  // namespace atomizer::cli
