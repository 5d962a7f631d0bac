// ATOMIZER_TSAN_ENABLED: defined when compiling under ThreadSanitizer (clang or g++), with the
// TSan annotation interface included. Used by the wrappers that make uninstrumented code
// (Debian's Abseil, moodycamel's block recycling) visible to TSan.
#ifndef ATOMIZER_BASE_SANITIZERS_H_
#define ATOMIZER_BASE_SANITIZERS_H_

#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define ATOMIZER_TSAN_ENABLED 1
#endif
#endif
#if defined(__SANITIZE_THREAD__) && !defined(ATOMIZER_TSAN_ENABLED)
#define ATOMIZER_TSAN_ENABLED 1
#endif

#ifdef ATOMIZER_TSAN_ENABLED
#include <sanitizer/tsan_interface.h>
#endif

#endif  // ATOMIZER_BASE_SANITIZERS_H_
