// log.h - one line per event on stderr, through fmt.
//
// Thread safety: each call writes one line with a single write, so lines
// from different threads never interleave.
#pragma once

#include <string_view>

#include <fmt/format.h>

namespace synchmess::log {

void write_line(std::string_view level, std::string_view text) noexcept;

template <class... A>
void info(fmt::format_string<A...> f, A&&... a) {
  write_line("info", fmt::format(f, std::forward<A>(a)...));
}
template <class... A>
void warn(fmt::format_string<A...> f, A&&... a) {
  write_line("warning", fmt::format(f, std::forward<A>(a)...));
}
template <class... A>
void error(fmt::format_string<A...> f, A&&... a) {
  write_line("error", fmt::format(f, std::forward<A>(a)...));
}

}  // namespace synchmess::log
