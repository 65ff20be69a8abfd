#pragma once
// The build's identity, for --version and sip_exporter_build_info: the project version, and the
// git revision of the sources (12 hex digits; "unknown" outside a git checkout). Defined in a
// source CMake generates from exporter/build_info.cpp.in, rewritten only when a value changes,
// so a new commit recompiles that one file.
namespace sipex {

extern const char kVersion[];
extern const char kRevision[];

}  // namespace sipex
