"""The one compiled module: ``hub.cap._build``, the CAP model builder in C (Cython, against
lxml's public C API). It is optional: without a C compiler, Cython or lxml's headers the
package installs without it and ``hub.cap.parse`` uses its Python builder (same results,
slower). Everything else is in pyproject.toml."""

from __future__ import annotations

from setuptools import Extension, setup


def extensions() -> list[Extension]:
    try:
        import lxml
        from Cython.Build import cythonize
    except ImportError:  # a build without Cython or lxml: the Python builder is used
        return []
    module = Extension("hub.cap._build", ["hub/cap/_build.pyx"], include_dirs=lxml.get_include(),
                       optional=True)
    return list(cythonize([module], quiet=True, compiler_directives={"language_level": 3}))


setup(ext_modules=extensions())
