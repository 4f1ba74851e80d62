// Everything a plugin needs, in one include.
#pragma once

#include "sluice/crash_point.h"
#include "sluice/options.h"
#include "sluice/plugin.h"
#include "sluice/record_batch.h"
#include "sluice/schema.h"
#include "sluice/sink.h"
#include "sluice/source.h"
#include "sluice/state_store.h"
#include "sluice/status.h"
#include "sluice/value_format.h"
#include "sluice/version.h"
