// libarchive: reads zip (PyTorch checkpoints) and writes tar.gz (model.tar.gz).
#include <archive.h>
#include <archive_entry.h>
