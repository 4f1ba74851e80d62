#include "expr/expression.h"

#include <gtest/gtest.h>

TEST(Smoke, Compiles) { SUCCEED(); }
