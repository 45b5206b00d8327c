"""Build hook for the optional native core, ``tbrewrite._native`` (the Rust crate in native/).

Everything else about the package is in pyproject.toml. The extension is *optional*: where
cargo is on the PATH, ``pip install .`` (and ``pip install -e .``) builds it; where it is
not, setuptools-rust prints why and the package installs as pure Python, which
``tbrewrite.engine.select`` then uses. One abi3 build serves every CPython >= 3.10.
"""

from setuptools import setup

try:
    from setuptools_rust import Binding, RustExtension
except ImportError:  # a build frontend without setuptools-rust: pure Python
    rust_extensions = []
else:
    rust_extensions = [
        RustExtension(
            "tbrewrite._native",
            path="native/Cargo.toml",
            binding=Binding.PyO3,
            features=["python"],
            optional=True,
            # Release even for `pip install -e` (setuptools-rust builds in-place
            # extensions in debug otherwise: 14x slower).
            debug=False,
        )
    ]

setup(
    rust_extensions=rust_extensions,
    options={"bdist_wheel": {"py_limited_api": "cp310"}},
)
