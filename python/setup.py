"""Packaging of the attnviz Python package. The package is pure Python over libattnviz.so; when the library
has been built (`make` in the repository, or $ATTNVIZ_LIB), a copy goes into the package, so the installed
package works without the build tree. See docs/PYTHON.md."""
import os
import shutil

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

LIB = "libattnviz.so.0"


def built_library():
    env = os.environ.get("ATTNVIZ_LIB")
    if env:
        return os.path.join(env, LIB) if os.path.isdir(env) else env
    here = os.path.dirname(os.path.abspath(__file__))
    return os.path.join(os.path.dirname(here), "build", LIB)


class BuildPy(build_py):
    """Copies the built libattnviz.so.0 (the file its symlink names) into the package."""

    def run(self):
        super().run()
        src = built_library()
        if os.path.exists(src):
            shutil.copyfile(os.path.realpath(src), os.path.join(self.build_lib, "attnviz", LIB))
        else:
            print("attnviz: %s not found: the package will look for libattnviz.so.0 at run time "
                  "($ATTNVIZ_LIB, the system library path)" % src)


class WithLibrary(Distribution):
    def has_ext_modules(self):  # the wheel carries a native library: tag it for this platform
        return True


setup(cmdclass={"build_py": BuildPy}, distclass=WithLibrary)
