// libFuzzer's entry point for programs that have their own main
// (https://llvm.org/docs/LibFuzzer.html#using-libfuzzer-as-a-library).
// It is defined by the fuzzer runtime that `-sanitize=fuzzer` links.

#ifndef SEG_FUZZER_DRIVER_H
#define SEG_FUZZER_DRIVER_H

#include <stddef.h>
#include <stdint.h>

/// Parses libFuzzer's flags from argc/argv and runs `callback` on every input;
/// returns the process's exit status (it exits by itself on a crash).
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));

#endif
