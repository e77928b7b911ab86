// Python module init for sf2t._C. The ops register themselves with the torch dispatcher (namespace
// "sf2t") when this shared library is loaded; the module itself exposes nothing.
#include <Python.h>

extern "C" {
PyObject* PyInit__C(void) {
  static struct PyModuleDef module_def = {
      PyModuleDef_HEAD_INIT, "_C", "sf2t compiled ops (registered as torch.ops.sf2t.*)", -1, nullptr,
  };
  return PyModule_Create(&module_def);
}
}
