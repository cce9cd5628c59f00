// The reply handle's duty to answer once is checked through its public
// state; the libfuse calls themselves are exercised by the integration
// suites against real devices.
#include "requests/reply.h"

#include <gtest/gtest.h>

namespace synchmess {

TEST(Reply, EmptyHandleAnswersNothing) {
  Reply r;
  EXPECT_FALSE(r);
  r.error(5);  // no request: a no-op, no crash
  r.ok();
  EXPECT_FALSE(r);
}

TEST(Reply, MovingTransfersTheDuty) {
  Reply a;
  Reply b(std::move(a));
  EXPECT_FALSE(a);
  EXPECT_FALSE(b);
}

}  // namespace synchmess
