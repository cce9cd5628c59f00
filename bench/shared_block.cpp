// shared_block.cpp - names of the operation types (JSON keys and table rows).
#include "shared_block.h"

namespace synchmess::bench {

const char* op_name(Op op) {
  switch (op) {
    case kInstall: return "install";
    case kOpen: return "open";
    case kWrite1: return "write_p1";
    case kReadHit1: return "read_hit_p1";
    case kReadEmpty1: return "read_empty_p1";
    case kWrite2: return "write_p2";
    case kReadHit2: return "read_hit_p2";
    case kReadEmpty2: return "read_empty_p2";
    case kFlush: return "flush";
    case kSetDelay: return "set_delay";
    case kSleep: return "sleep";
    case kHandoff: return "handoff";
    case kAwake: return "awake";
    case kRevoke: return "revoke";
    case kDrainRead: return "drain_read";
    case kDeliver1: return "deliver_p1";
    case kDeliver2: return "deliver_p2";
    case kOpCount: break;
  }
  return "?";
}

}  // namespace synchmess::bench
