// notify.h - readiness for systemd (Type=notify) without libsystemd.
//
// Contract: notify_ready() sends "READY=1" to $NOTIFY_SOCKET if it is set
// (a path or an abstract socket name starting with '@'); otherwise it does
// nothing.  Errors are logged, never fatal.
#pragma once

namespace synchmess {

void notify_ready() noexcept;

}  // namespace synchmess
