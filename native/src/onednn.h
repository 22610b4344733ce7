// oneDNN (Debian's libdnnl2) found at run time with dlopen, like the BLAS in blas.h: the addon
// builds without its headers and a machine without it keeps the built-in kernels. Callers look
// up the C-API entry points they need with oneDnnSym and declare the prototypes themselves.
#pragma once

namespace lc {

/**
 * Load libdnnl. `spec`: "" or "auto" (libdnnl.so.2, then libdnnl.so), "none" to leave it
 * unloaded, or a path/soname. Returns the loaded library's name, or nullptr with `why` set.
 * Loading twice returns the first result.
 */
const char* loadOneDnn(const char* spec, const char** why);
/** The loaded library's name, or nullptr. */
const char* oneDnnName();
/** A symbol of the loaded library (e.g. "dnnl_sgemm"), or nullptr if not loaded or absent. */
void* oneDnnSym(const char* name);

}  // namespace lc
