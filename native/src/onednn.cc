#include "onednn.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

namespace lc {
namespace {

void* gLib = nullptr;
char gName[256] = {0};
const char* const kNames[] = {"libdnnl.so.2", "libdnnl.so", nullptr};

bool tryOpen(const char* soname) {
  // RTLD_LOCAL: oneDNN bundles its own threading runtime; its symbols must not interpose
  void* h = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
  if (!h) return false;
  if (!dlsym(h, "dnnl_version")) {
    dlclose(h);
    return false;
  }
  gLib = h;
  snprintf(gName, sizeof gName, "%s", soname);
  return true;
}

}  // namespace

const char* loadOneDnn(const char* spec, const char** why) {
  if (gLib) return gName;
  *why = nullptr;
  if (spec && strcmp(spec, "none") == 0) {
    *why = "disabled by LIGHTCLIP_ONEDNN";
    return nullptr;
  }
  if (!spec || !*spec || strcmp(spec, "auto") == 0) {
    for (int i = 0; kNames[i]; i++)
      if (tryOpen(kNames[i])) return gName;
    *why = "no oneDNN library found (apt-get install libdnnl2)";
    return nullptr;
  }
  if (tryOpen(spec)) return gName;
  *why = "the oneDNN library named by LIGHTCLIP_ONEDNN could not be loaded";
  return nullptr;
}

const char* oneDnnName() { return gLib ? gName : nullptr; }

void* oneDnnSym(const char* name) { return gLib ? dlsym(gLib, name) : nullptr; }

}  // namespace lc
