// The `atomizer` command-line tool's subcommands. Each returns the process exit code:
// 0 success, 1 failure (reported on stderr), 2 usage error.
#ifndef ATOMIZER_TOOLS_CLI_H_
#define ATOMIZER_TOOLS_CLI_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace atomizer::cli {

// Parsed "--name=value" / "--name value" flags and positional arguments.
struct Arguments {
  std::map<std::string, std::string> flags;
  std::vector<std::string> positional;
  bool Has(const std::string& name) const { return flags.contains(name); }
  std::string Get(const std::string& name, const std::string& fallback) const;
  // InvalidArgument naming the flag if it is not an integer in [low, high].
  absl::StatusOr<long> GetInt(const std::string& name, long fallback, long low, long high) const;
};
// Flags that take no value (e.g. "--help") are given in `switches`.
absl::StatusOr<Arguments> ParseArguments(int argc, char** argv, int first,
                                         const std::vector<std::string>& switches);

int RunExample(const Arguments& arguments);
int RunVerify(const Arguments& arguments);
int RunStats(const Arguments& arguments);
int RunList(const Arguments& arguments);
int RunDemo(const Arguments& arguments);
int RunDemoWorker(const Arguments& arguments);
int RunDemoProducer(const Arguments& arguments);

}  // namespace atomizer::cli

#endif  // ATOMIZER_TOOLS_CLI_H_
