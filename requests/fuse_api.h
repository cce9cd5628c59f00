// fuse_api.h - the one place that pins the libfuse API version.
#pragma once

#define FUSE_USE_VERSION 314
#include <fuse3/fuse_lowlevel.h>
