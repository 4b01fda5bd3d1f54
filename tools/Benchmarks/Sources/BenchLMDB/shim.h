#ifndef RUNLOG_BENCH_LMDB_SHIM_H
#define RUNLOG_BENCH_LMDB_SHIM_H
#include <lmdb.h>
#endif
