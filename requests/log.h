// log.h - one line per event on stderr, through fmt.
//
// Lines that a client can cause at will (a failed install, a bad pointer)
// go through limited_warn: at most limited_burst of them per minute; the
// rest are counted, and the next line that passes says how many were
// dropped, so no client can flood the log.
// Thread safety: each call writes one line with a single write, so lines
// from different threads never interleave.  A failed write (a closed pipe,
// a full journald socket: sockets are written without waiting) is
// ignored: logging never takes the daemon down.  A full pipe or terminal
// still blocks the thread that logs.
#pragma once

#include <string_view>

#include <fmt/format.h>

namespace synchmess::log {

inline constexpr unsigned limited_burst = 10;

void write_line(std::string_view level, std::string_view text) noexcept;
// Whether a limited line may be written now; *dropped gets the number of
// limited lines dropped since the last one that passed.
bool limited_line_allowed(unsigned long* dropped) noexcept;

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
template <class... A>
void limited_warn(fmt::format_string<A...> f, A&&... a) {
  unsigned long dropped = 0;
  if (!limited_line_allowed(&dropped)) return;
  std::string text = fmt::format(f, std::forward<A>(a)...);
  if (dropped > 0) text += fmt::format(" ({} similar lines dropped)", dropped);
  write_line("warning", text);
}

}  // namespace synchmess::log
