#ifndef RUNLOG_CLMDB_SHIM_H
#define RUNLOG_CLMDB_SHIM_H
#include <lmdb.h>
#endif
