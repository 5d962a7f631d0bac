// The `atomizer` command-line tool (work in progress).
#include <cstdio>

int main() {
  std::puts("atomizer: no commands yet");
  return 0;
}
